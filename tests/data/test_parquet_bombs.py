"""A Parquet upload whose text unpacks to far more than its bytes (one long value repeated: Parquet stores it once,
a dictionary, and packs the pages) is refused from the sizes of its values before any text is unpacked; an
ordinary file, and one that stores a column as a dictionary itself (categorical), read as before."""

import io
import resource

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data import leads
from engine.data.leads import LeadDataError, read_table


def _parquet(rows: int, width: int, store_schema: bool = False) -> bytes:
    notes = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["budget " * (width // 7)]))
    table = pa.table({"Visits": pa.array(range(rows)), "Notes": notes, "Converted": [i % 2 for i in range(rows)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", store_schema=store_schema)
    return buf.getvalue()


def test_repeated_text_that_unpacks_past_the_limit_is_refused_unpacked(monkeypatch):
    monkeypatch.setattr(leads.reading, "MAX_PARQUET_TEXT", 50_000_000)
    raw = _parquet(20_000, 7_000)  # 140 MB of text in about 100 KB of file
    assert len(raw) < 500_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(LeadDataError, match=r"bomb\.parquet holds more than 50,000,000 bytes of text.*Fix:"):
        read_table(raw, filename="bomb.parquet")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"the process grew {grown_mb:.0f} MB: the text was unpacked"


@pytest.mark.parametrize("store_schema", [False, True])
def test_ordinary_parquet_reads_as_before(store_schema):
    frame = read_table(_parquet(300, 70, store_schema), filename="fine.parquet")
    assert frame.shape == (300, 3) and frame["Notes"].astype(str).str.startswith("budget").all()
    expected = pd.CategoricalDtype if store_schema else object
    assert isinstance(frame["Notes"].dtype, expected) or frame["Notes"].dtype == expected
