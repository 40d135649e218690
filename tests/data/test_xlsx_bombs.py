"""Excel uploads built to exhaust the server: a workbook whose parts unpack to far more than their bytes (a zip
bomb: shared strings or a sheet of repeated text) is refused from the zip's own directory before openpyxl parses
a byte of it, and a sheet that records fewer rows than it holds (a lying ``<dimension>``) is read no further than
the row limit and refused by name."""

import io
import re
import zipfile

import pandas as pd
import pytest

from engine.data import leads
from engine.data.leads import LeadDataError, read_table


def _workbook(rows: int = 3) -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"Visits": range(rows), "Converted": [i % 2 for i in range(rows)]}).to_excel(buf, index=False)
    return buf.getvalue()


def _replace_part(book: bytes, name: str, write) -> bytes:
    """``book`` with its part ``name`` written again by ``write(file)`` (streamed: a bomb is never in memory)."""
    src, out = zipfile.ZipFile(io.BytesIO(book)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename != name:
                dst.writestr(item, src.read(item.filename))
        with dst.open(name, "w") as f:
            write(f)
    return out.getvalue()


@pytest.fixture
def opened(monkeypatch):
    """Counts workbooks openpyxl is asked to open."""
    import openpyxl

    calls = []
    original = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_a_shared_strings_bomb_is_refused_before_it_is_parsed(opened):
    def bomb(f):
        f.write(b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
        chunk = b"<si><t>" + b"A" * 65536 + b"</t></si>"
        for _ in range(1200):  # ~79 MB unpacked from well under 1 MB
            f.write(chunk)
        f.write(b"</sst>")

    book = _replace_part(_workbook(), "xl/sharedStrings.xml", bomb)
    assert len(book) < 1_000_000
    with pytest.raises(LeadDataError, match=r"bomb\.xlsx .*unpack.*Fix:"):
        read_table(book, filename="bomb.xlsx")
    assert opened == []


def test_a_workbook_whose_parts_unpack_past_the_cap_is_refused(monkeypatch, opened):
    monkeypatch.setattr(leads.reading, "MAX_XLSX_UNPACKED", 10_000)
    with pytest.raises(LeadDataError, match=r"big\.xlsx unpacks to .* more than the limit of 10,000"):
        read_table(_workbook(2000), filename="big.xlsx")
    assert opened == []


def test_a_sheet_holding_more_rows_than_its_dimension_says_is_refused_at_the_limit(monkeypatch):
    monkeypatch.setattr(leads.reading, "MAX_ROWS", 50)
    book = _workbook(400)
    sheet = zipfile.ZipFile(io.BytesIO(book)).read("xl/worksheets/sheet1.xml")
    assert b"<dimension " in sheet
    lying = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B3"', sheet)
    book = _replace_part(book, "xl/worksheets/sheet1.xml", lambda f: f.write(lying))
    with pytest.raises(LeadDataError, match=r"liar\.xlsx has more than 50 rows"):
        read_table(book, filename="liar.xlsx")


def test_an_ordinary_workbook_is_still_read():
    frame = read_table(_workbook(40), filename="fine.xlsx")
    assert len(frame) == 40 and list(frame.columns) == ["Visits", "Converted"]
