"""Hostile and awkward data files: limits that hold before memory is spent, other text encodings,
transcripts that are not text, and the same bytes uploaded as another kind."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

import engine.data.leads as leads
import engine.data.transcripts as transcripts
from engine.data.leads import LeadDataError, load_leads, read_table
from engine.data.transcripts import TranscriptDataError, load_transcripts
from engine.datasets import DatasetStore, check_upload


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
    monkeypatch.setattr(leads, "MAX_ROWS", 1000)
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
    monkeypatch.setattr(leads, "MAX_CELLS", 3000)  # 3 columns: at most 1,000 rows
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
    monkeypatch.setattr(leads, "MAX_ROWS", 200)
    buf = io.BytesIO()
    pd.read_csv(io.BytesIO(lead_rows(201))).to_excel(buf, index=False)  # counted once, by this setup
    with pytest.raises(LeadDataError, match="book.xlsx has 201 rows, more than the limit of 200"):
        read_table(buf.getvalue(), filename="book.xlsx")
    assert parses["read_excel"] == 0


def test_rejected_upload_stores_nothing_and_names_the_users_file(tmp_path, monkeypatch, parses):
    monkeypatch.setattr(leads, "MAX_ROWS", 1000)
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
