"""Lead CSVs with every kind of line end (old Mac ``\\r`` alone, Windows ``\\r\\n``, mixed) and byte-order marks
read as the same table; ``\\r`` alone used to stop the header check with the csv module's own error, a traceback
on the command line and the pages."""

import pytest

from engine.data.leads import check_table, read_header, read_table

ROWS = [("Visits", "City", "Converted"), ("1", "Pune", "1"), ("2", "Delhi", "0"), ("3", "Agra", "1")]


@pytest.mark.parametrize(
    "eol, prefix",
    [("\r", b""), ("\r\n", b""), ("\n", b"\xef\xbb\xbf"), ("\r", b"\xef\xbb\xbf"), ("mixed", b"")],
)
def test_every_line_end_reads_the_same_table(eol, prefix):
    if eol == "mixed":
        text = "Visits,City,Converted\r\n1,Pune,1\r2,Delhi,0\n3,Agra,1\r\n"
    else:
        text = eol.join(",".join(row) for row in ROWS) + eol
    raw = prefix + text.encode("utf-8")
    check_table(raw, filename="leads.csv")
    assert read_header(raw, filename="leads.csv") == (["Visits", "City", "Converted"], True)
    frame = read_table(raw, filename="leads.csv")
    assert list(frame.columns) == ["Visits", "City", "Converted"]
    assert frame["City"].tolist() == ["Pune", "Delhi", "Agra"] and frame["Visits"].tolist() == [1, 2, 3]
