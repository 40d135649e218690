"""Scoring a lead CSV in chunks (engine.scoring_chunks, `score --chunk-rows/--ray`): the same ranked list as the
in-memory path on a file that spans several chunks, the same list on Ray, and clear errors for what it cannot do."""

import threading

import numpy as np
import pandas as pd
import pytest
from support import copy_run, store_with

from engine.cli import main
from engine.data.demo import demo_leads
from engine.data.missing_values import LeadDataError
from engine.scored_lists import ScoredStore
from engine.scoring import read_rows, score_frame
from engine.scoring_chunks import MEMORY_ENV, memory_budget, score_file

ROWS, CHUNK = 1_300, 250  # six chunks, the last one short


@pytest.fixture(scope="module")
def stack_run(small_stack_run, tmp_path_factory):
    run, _ = small_stack_run
    return store_with(run, tmp_path_factory.mktemp("chunks") / "runs").get(run.id)


@pytest.fixture(scope="module")
def leads_file(tmp_path_factory):
    """1,300 demo leads with their outcomes, blanks in a numeric column and junk in a late chunk only."""
    leads = demo_leads(n=ROWS, seed=21)
    leads["TotalVisits"] = leads["TotalVisits"].astype(object)
    leads.loc[3::97, "TotalVisits"] = None  # blanks across the chunks
    leads.loc[1_100:1_104, "TotalVisits"] = "lots"  # text in one chunk only: numbers elsewhere
    leads.loc[1_200, "Lead Source"] = "=HYPERLINK(1)"  # a formula cell: neutralised in both outputs
    path = tmp_path_factory.mktemp("chunk_data") / "leads.csv"
    leads.to_csv(path, index=False)
    return path


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_chunked_scoring_equals_in_memory_scoring(stack_run, leads_file, tmp_path):
    raw = read_rows(stack_run, leads_file, filename="leads.csv")
    whole = score_frame(stack_run, raw, explain=300)  # reasons across two of the rank buckets
    whole.to_csv(tmp_path / "whole.csv")
    chunked = score_file(stack_run, leads_file, tmp_path / "chunked.csv", explain=300, chunk_rows=CHUNK)
    assert chunked.chunks == 6 and chunked.rows == ROWS
    a, b = _read(tmp_path / "whole.csv"), _read(tmp_path / "chunked.csv")
    assert list(a.columns) == list(b.columns)
    for column in ["Prospect ID", "rank", "probability", "score", "tier", "reasons_for", "reasons_against"]:
        assert a[column].tolist() == b[column].tolist(), column
    assert (b["has_reasons"] == "True").sum() == 300 == chunked.explained_rows
    assert b.loc[b["Prospect ID"] == raw.loc[1_200, "Prospect ID"], "Lead Source"].item() == "'=HYPERLINK(1)"
    assert chunked.tiers == whole.summary["tiers"]
    assert chunked.report.to_dict() == whole.report.to_dict()  # counts over the whole file, junk included
    assert chunked.report.unparsed == {"TotalVisits": 5}
    assert chunked.metrics == whole.metrics and chunked.outcome_rows == ROWS  # the outcome column is in the file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no pieces, buckets or partial files left


def test_a_yes_no_column_is_read_one_way_in_every_chunk(stack_run, tmp_path):
    """Whether a 0/1 column is numbers or text is decided over the whole file, as when it is read whole."""
    binary = [c for c, k in stack_run.settings.kinds.items() if k == "binary" and c in stack_run.settings.columns]
    if not binary:
        pytest.skip("the small stack has no yes/no column")
    leads = demo_leads(n=600, seed=4)
    leads[binary[0]] = leads[binary[0]].astype(object)
    leads.loc[550, binary[0]] = "maybe"  # text in the last chunk only
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    whole = score_frame(stack_run, read_rows(stack_run, path), explain=0)
    score_file(stack_run, path, tmp_path / "out.csv", explain=0, chunk_rows=200)
    assert _read(tmp_path / "out.csv")["probability"].tolist() == whole.table["probability"].astype(str).tolist()


def test_the_ray_path_writes_the_local_output_row_for_row(stack_run, leads_file, tmp_path, ray_cluster_addresses):
    local = score_file(stack_run, leads_file, tmp_path / "local.csv", explain=100, chunk_rows=CHUNK)
    remote = score_file(
        stack_run,
        leads_file,
        tmp_path / "ray.csv",
        explain=100,
        chunk_rows=CHUNK,
        ray_address=ray_cluster_addresses["gcs"],
    )
    assert remote.ray and (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert remote.report.to_dict() == local.report.to_dict() and remote.tiers == local.tiers


def test_cli_scores_in_chunks_and_stores_the_top_of_the_list(stack_run, leads_file, workspace, tmp_path, capsys):
    copy_run(stack_run.path, workspace / "runs")
    out = tmp_path / "ranked.csv"
    assert (
        main(["score", "--run", stack_run.id, "--data", str(leads_file), "--out", str(out), "--chunk-rows", "400"]) == 0
    )
    err = capsys.readouterr().err
    assert "read in 4 chunks of 400 rows" in err and "the top 1,300 of 1,300 rows" in err
    whole = tmp_path / "whole.csv"
    assert main(["score", "--run", stack_run.id, "--data", str(leads_file), "--out", str(whole), "--no-store"]) == 0
    assert _read(out)["probability"].tolist() == _read(whole)["probability"].tolist()
    (meta,) = ScoredStore().list()
    assert meta["rows"] == 1_300 and meta["rows_scored"] == 1_300 and meta["chunked"]["chunks"] == 4
    assert _read(ScoredStore().path(meta["sha256"])).equals(_read(out))


def test_a_file_over_the_memory_budget_is_read_in_chunks(stack_run, workspace, tmp_path, monkeypatch, capsys):
    copy_run(stack_run.path, workspace / "runs")
    path = tmp_path / "big.csv"
    demo_leads(n=25_000, seed=2).to_csv(path, index=False)  # ~6.7 MB: over 64 MB of memory once read whole
    monkeypatch.setenv(MEMORY_ENV, "64")
    out = tmp_path / "ranked.csv"
    assert main(["score", "--run", stack_run.id, "--data", str(path), "--out", str(out), "--no-store"]) == 0
    assert "chunks of" in capsys.readouterr().err
    assert len(_read(out)) == 25_000
    assert main(["score", "--run", stack_run.id, "--data", str(path), "--no-store"]) == 2  # nowhere to write
    assert "Fix: give --out" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-3", "many", "1e9x"])
def test_chunk_rows_must_be_a_positive_whole_number(value, stack_run, leads_file, workspace, tmp_path, capsys):
    copy_run(stack_run.path, workspace / "runs")
    with pytest.raises(SystemExit):
        main(
            [
                "score",
                "--run",
                stack_run.id,
                "--data",
                str(leads_file),
                "--out",
                str(tmp_path / "o.csv"),
                "--chunk-rows",
                value,
            ]
        )
    assert "--chunk-rows takes a whole number of rows, 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("value", ["lots", "12", "-1", "2.5"])
def test_a_memory_budget_that_is_not_one_is_refused(value, monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, value)
    with pytest.raises(ValueError, match=f"{MEMORY_ENV}=.*Fix: set it to a whole number of MB"):
        memory_budget()


def test_cli_refuses_what_the_chunked_path_cannot_do(stack_run, leads_file, workspace, tmp_path, monkeypatch, capsys):
    copy_run(stack_run.path, workspace / "runs")
    base = ["score", "--run", stack_run.id, "--data", str(leads_file), "--out", str(tmp_path / "o.csv")]
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main([*base, "--ray"]) == 2
    assert "RAY_ADDRESS is not set. Fix:" in capsys.readouterr().err
    assert main([*base, "--chunk-rows", "100", "--shadow", stack_run.id]) == 2
    assert "--shadow is not offered for a file scored in chunks" in capsys.readouterr().err
    sheet = tmp_path / "leads.xlsx"
    demo_leads(n=20, seed=1).to_excel(sheet, index=False)
    assert (
        main(
            [
                "score",
                "--run",
                stack_run.id,
                "--data",
                str(sheet),
                "--out",
                str(tmp_path / "o.csv"),
                "--chunk-rows",
                "5",
            ]
        )
        == 2
    )
    assert "is not a CSV file: only CSV is read in chunks" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"Prospect ID,TotalVisits\n", "no rows to score"),
        (b"\x00\x01\x02\x03" * 5000, "binary data"),
        (b"a,a\n1,2\n", "duplicate column names"),
    ],
)
def test_hostile_files_are_refused_with_the_fix(content, problem, stack_run, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises((LeadDataError, ValueError), match=problem):
        score_file(stack_run, path, tmp_path / "out.csv", chunk_rows=10)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]  # nothing written, nothing left behind


def test_a_malformed_row_deep_in_the_file_names_where_and_writes_nothing(stack_run, tmp_path):
    path = tmp_path / "ragged.csv"
    demo_leads(n=500, seed=3).to_csv(path, index=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write("x," * 80 + "\n")  # a row with far too many fields after 500 good ones
    (tmp_path / "out.csv").write_text("kept")
    with pytest.raises(LeadDataError, match=r"could not be read after row 400.*same number of fields"):
        score_file(stack_run, path, tmp_path / "out.csv", chunk_rows=200)
    assert (tmp_path / "out.csv").read_text() == "kept"  # the earlier list is not half overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "ragged.csv"]


def test_files_scored_at_once_in_one_folder_do_not_mix(stack_run, leads_file, tmp_path):
    results, errors = {}, []

    def one(name):
        try:
            results[name] = score_file(stack_run, leads_file, tmp_path / name, explain=20, chunk_rows=300)
        except Exception as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(f"out{i}.csv",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    first = (tmp_path / "out0.csv").read_bytes()
    assert all((tmp_path / f"out{i}.csv").read_bytes() == first for i in (1, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0.csv", "out1.csv", "out2.csv"]
    assert np.all([r.rows == ROWS for r in results.values()])


def test_a_csv_over_the_in_memory_row_limit_is_read_in_chunks(tmp_path):
    from engine.data.leads.reading import MAX_ROWS
    from engine.scoring_chunks import over_row_limit

    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * (MAX_ROWS + 1))  # 4 MB: under any memory budget
    assert over_row_limit(path)
    path.write_bytes(b"a,b\n" + b"1,2\n" * MAX_ROWS)
    assert not over_row_limit(path)


@pytest.mark.parametrize(
    "text, encoding, read_as",
    [
        ("City,Converted\nMalmö,1\n", "utf-8", "utf-8"),
        ("City,Converted\n“Malmö”,1\n", "cp1252", "cp1252"),
        ("City,Converted\nMalmö\x81,1\n", "latin-1", "latin-1"),  # 0x81: no character in cp1252
        ("City,Converted\nMalmö,1\n", "utf-16", "utf-16"),  # a byte-order mark names it
    ],
)
def test_the_chunked_reader_picks_the_encoding_the_in_memory_reader_picks(text, encoding, read_as, tmp_path):
    """One order (engine.data.sources.TEXT_ENCODINGS) for both readers: a file scored in chunks is read as the
    same file read whole, so its cells are the same text."""
    from engine.data.sources import decode_text
    from engine.scoring_chunks import open_csv

    path = tmp_path / "leads.csv"
    path.write_bytes(text.encode(encoding))
    decoded, picked = decode_text(path.read_bytes())
    assert picked == read_as and decoded.lstrip("\ufeff") == text
    assert open_csv(path).encoding == picked
