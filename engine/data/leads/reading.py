"""Reading a lead table (CSV, Excel, Parquet) with the size limits checked before it is parsed."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from engine.data.missing_values import (
    LeadDataError,
)
from engine.data.sources import csv_rows_over, decode_text, raw_bytes

MAX_ROWS = 1_000_000


MAX_COLS = 500


#: million leads of 50 columns, or 100,000 of 500. Memory grows with cells, not rows (a 500-column x
#: 1,000,000-row Parquet file of 1.9 MB would need about 9 GB once read).
MAX_CELLS = 50_000_000


_FORMATS_HINT = "Export the table as CSV (UTF-8), Excel .xlsx or Parquet and upload that file."

#: Most bytes the parts of an Excel workbook (its XML, which openpyxl parses whole) may unpack to, and the most
#: a part over :data:`_XLSX_RATIO_FROM` bytes may unpack to per byte it takes in the zip: a sheet's XML packs
#: 5 to 50 times, a zip bomb (repeated text) a thousand times. Read from the zip's directory, before any parse.
MAX_XLSX_UNPACKED = 1 << 30
MAX_XLSX_RATIO = 200
_XLSX_RATIO_FROM = 16 << 20


_MAGIC = {
    b"PK\x03\x04": "xlsx",
    b"PAR1": "parquet",
    b"\xd0\xcf\x11\xe0": "xls",
    b"\x89PNG": "png image",
    b"%PDF": "pdf document",
    b"\xff\xd8\xff": "jpeg image",
    b"GIF8": "gif image",
    b"\x1f\x8b": "gzip archive",
    b"7z\xbc\xaf": "7z archive",
    b"Rar!": "rar archive",
}


def _raw_bytes(source: Any, filename: str | None) -> tuple[bytes, str | None]:
    """Bytes and a display name from a path, bytes or a file-like object."""
    data, name = raw_bytes(source, filename, LeadDataError, "the CSV, Excel or Parquet file")
    if data is not None:
        return data, name
    raise LeadDataError(
        f"cannot read a lead table from a {type(source).__name__}; pass a file path, bytes, "
        "a file-like object or a pandas DataFrame."
    )


def _detect_format(raw: bytes, name: str | None) -> tuple[str, str | None]:
    """``(format, text)``: ``xlsx`` or ``parquet`` (text ``None``) or ``csv`` with the decoded text."""
    ext = Path(name).suffix.lower() if name else ""
    label = name or "the upload"
    for magic, kind in _MAGIC.items():
        if raw.startswith(magic):
            if kind in ("xlsx", "parquet"):
                return kind, None
            if kind == "xls":
                raise LeadDataError(
                    f"{label} is an old Excel .xls workbook, which is not supported. "
                    "Open it in Excel and save it as .xlsx or CSV."
                )
            raise LeadDataError(f"{label} is not a table: it looks like a {kind}. {_FORMATS_HINT}")
    if ext in (".xlsx", ".xlsm"):
        raise LeadDataError(
            f"{label} has the extension {ext} but is not a valid Excel workbook "
            f"(it may be damaged or renamed). {_FORMATS_HINT}"
        )
    if ext in (".parquet", ".pq"):
        raise LeadDataError(
            f"{label} has the extension {ext} but is not a Parquet file (it may be damaged or renamed). {_FORMATS_HINT}"
        )
    text, encoding = decode_text(raw)
    head = text[:65536]
    ctrl = sum(1 for c in head if c < "\t" or "\r" < c < " ")
    if "\x00" in head or ctrl > max(2, len(head) // 100):
        raise LeadDataError(
            f"{label} is not readable as a table: it contains binary data (read as {encoding}). {_FORMATS_HINT}"
        )
    return "csv", text


def _too_big(label: str, rows: int | None, cols: int, max_rows: int, max_cols: int, lines: int | None = None) -> None:
    if rows is not None and rows > max_rows:
        raise LeadDataError(
            f"{label} has {rows:,} rows, more than the limit of {max_rows:,}. Load a sample "
            "or a shorter period, or raise max_rows."
        )
    if cols > max_cols:
        raise LeadDataError(
            f"{label} has {cols:,} columns, more than the limit of {max_cols:,}. Remove "
            "columns that are not lead attributes, or raise max_cols."
        )
    if lines is not None:
        limit = _row_limit(cols, max_rows)
        fix = (
            f" for its {cols:,} columns ({MAX_CELLS:,} cells at most). Load fewer rows, or only the columns that "
            "are lead attributes."
            if limit < max_rows
            else ". Load a sample or a shorter period, or raise max_rows."
        )
        raise LeadDataError(
            f"{label} has more than {limit:,} rows ({lines:,} lines), more than the limit of {limit:,}{fix}"
        )
    if rows is not None and rows * cols > MAX_CELLS:
        raise LeadDataError(
            f"{label} has {rows:,} rows x {cols:,} columns = {rows * cols:,} cells, more than the limit of "
            f"{MAX_CELLS:,} cells. Load fewer rows (a sample or a shorter period), or only the columns that "
            "are lead attributes."
        )


def _row_limit(cols: int, max_rows: int) -> int:
    """The most data rows a table of ``cols`` columns may have: ``max_rows``, or fewer when the cells would
    pass :data:`MAX_CELLS`."""
    return min(max_rows, MAX_CELLS // max(cols, 1))


def _check_size(raw: bytes, fmt: str, text: str | None, label: str, max_rows: int, max_cols: int) -> None:
    """Refuse a table over the limits from what costs no parse: Parquet metadata, the first Excel sheet's
    dimensions (streamed rows when the workbook records none), the CSV's header and lines."""
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(io.BytesIO(raw)).metadata
        except Exception as exc:
            raise LeadDataError(
                f"{label} could not be read as Parquet ({type(exc).__name__}: {exc}). {_FORMATS_HINT}"
            ) from exc
        _too_big(label, meta.num_rows, meta.num_columns, max_rows, max_cols)
    elif fmt == "xlsx":
        _check_unpacked(raw, label)
        try:
            import openpyxl

            book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        except Exception as exc:
            raise LeadDataError(
                f"{label} could not be read as an Excel workbook ({type(exc).__name__}: {exc}). {_FORMATS_HINT}"
            ) from exc
        try:
            sheet = book.worksheets[0] if book.worksheets else None
            if sheet is None:
                return
            rows, cols = sheet.max_row, sheet.max_column
            if rows is None or cols is None:  # no recorded dimensions: stream the rows, keep none
                rows, cols = 0, 0
                for row in sheet.iter_rows(values_only=True):
                    rows, cols = rows + 1, max(cols, len(row))
                    if rows > max_rows + 1:
                        break
            _too_big(label, rows - 1, cols, max_rows, max_cols)
        finally:
            book.close()
    else:
        delim = _sniff_delimiter(text)
        cols = len(_header_fields(text, delim))
        _too_big(label, None, cols, max_rows, max_cols, lines=csv_rows_over(text, delim, _row_limit(cols, max_rows)))


def _check_unpacked(raw: bytes, label: str) -> None:
    """Refuse a workbook whose parts would unpack past :data:`MAX_XLSX_UNPACKED` bytes, or a part packed more than
    :data:`MAX_XLSX_RATIO` times (a zip bomb), from the sizes in the zip's directory. zipfile reads no part past
    the size its directory gives, so a part that lies about its size only ends short (a damaged workbook)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as book:
            parts = book.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise LeadDataError(f"{label} could not be read as an Excel workbook ({exc}). {_FORMATS_HINT}") from None
    total = sum(part.file_size for part in parts)
    if total > MAX_XLSX_UNPACKED:
        raise LeadDataError(
            f"{label} unpacks to {total:,} bytes, more than the limit of {MAX_XLSX_UNPACKED:,} for a workbook. "
            "Fix: export the table as CSV or Parquet, or load a sample."
        )
    for part in parts:
        if part.file_size > _XLSX_RATIO_FROM and part.file_size > MAX_XLSX_RATIO * max(part.compress_size, 1):
            raise LeadDataError(
                f"{label} looks like a zip bomb: its part {part.filename[:80]!r} would unpack {part.file_size:,} "
                f"bytes from {part.compress_size:,} (over {MAX_XLSX_RATIO} times; a real sheet packs far less), "
                "so it is not opened. Fix: export the table again from Excel, as .xlsx or CSV."
            )


def check_table(
    source: Any, filename: str | None = None, max_rows: int | None = None, max_cols: int | None = None
) -> None:
    """Raise :class:`LeadDataError` when the lead table cannot be read or is over the row/column limits
    (default :data:`MAX_ROWS`, :data:`MAX_COLS`), without parsing it (see :func:`_check_size`)."""
    raw, name = _raw_bytes(source, filename)
    _checked(raw, name, max_rows, max_cols)


def read_header(source: Any, filename: str | None = None) -> tuple[list[str], bool]:
    """``(column names, has data rows)`` of a lead table after the checks of :func:`check_table`, without
    building its table (Parquet: its schema and metadata; CSV: its header and a count of records; Excel, whose
    size is bounded by its format: a read of the sheet). Raises :class:`LeadDataError`."""
    raw, name = _raw_bytes(source, filename)
    label = name or "the upload"
    fmt, text = _checked(raw, name, None, None)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(io.BytesIO(raw))  # readable: _checked read its metadata
        names = [n for n in parquet.schema_arrow.names if not _PANDAS_INDEX.fullmatch(n)]
        _check_duplicates(names, label)
        return [str(n).strip() for n in names], parquet.metadata.num_rows > 0
    if fmt == "xlsx":
        frame = _read_excel(raw, label)
        return [str(c).strip() for c in frame.columns], len(frame) > 0
    delim = _sniff_delimiter(text)
    names = _header_fields(text, delim)
    _check_duplicates(names, label)
    return names, csv_rows_over(text, delim, 0) is not None


def _checked(raw: bytes, name: str | None, max_rows: int | None, max_cols: int | None) -> tuple[str, str | None]:
    label = name or "the upload"
    if not raw.strip():
        raise LeadDataError(
            f"{label} is empty (0 data bytes). Export the lead table again with its header row and data rows."
        )
    fmt, text = _detect_format(raw, name)
    _check_size(
        raw, fmt, text, label, MAX_ROWS if max_rows is None else max_rows, MAX_COLS if max_cols is None else max_cols
    )
    return fmt, text


def _sniff_delimiter(text: str) -> str:
    """Pick the delimiter among , ; TAB | that splits the sample into the most, consistent fields."""
    sample_lines = text[:131072].splitlines()[:60]
    if len(sample_lines) > 1 and len(text) > 131072:
        sample_lines = sample_lines[:-1]  # the last line of a cut sample may be partial
    best, best_score = ",", (-1.0, 0)
    for delim in (",", ";", "\t", "|"):
        try:
            counts = [len(row) for row in csv.reader(sample_lines, delimiter=delim) if row]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        header = counts[0]
        consistent = sum(c == header for c in counts) / len(counts)
        score = (consistent, header)
        if score > best_score:
            best, best_score = delim, score
    return best


def _header_fields(text: str, delim: str) -> list[str]:
    for row in csv.reader(io.StringIO(text[:262144], newline=""), delimiter=delim):  # "\r" alone ends a row too
        if row:
            return [c.strip() for c in row]
    return []


def _check_duplicates(columns: Iterable[Any], label: str) -> None:
    seen: dict[str, str] = {}
    dups: list[str] = []
    for col in columns:
        key = str(col).strip()
        if key in seen and key not in dups:
            dups.append(key)
        seen[key] = key
    if dups:
        raise LeadDataError(
            f"{label} has duplicate column names: {', '.join(repr(d) for d in dups)}. "
            "Rename or remove the repeated columns so every column name is unique, then load it again."
        )


def _read_csv(text: str, label: str) -> pd.DataFrame:
    if not text.strip():
        raise LeadDataError(f"{label} is empty. Export the lead table again with its header row and data rows.")
    delim = _sniff_delimiter(text)
    _check_duplicates(_header_fields(text, delim), label)
    try:
        # bytes, not io.StringIO: a StringIO holds four bytes a character, the UTF-8 copy one
        df = pd.read_csv(
            io.BytesIO(text.encode("utf-8")),
            encoding="utf-8",
            sep=delim,
            decimal="," if delim == ";" else ".",
            skipinitialspace=True,
            low_memory=False,
        )
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        raise LeadDataError(
            f"{label} could not be parsed as a table ({str(exc).strip()}). Check that every row has the same "
            f"number of fields, or {_FORMATS_HINT[0].lower() + _FORMATS_HINT[1:]}"
        ) from exc
    return df


def _read_excel(raw: bytes, label: str, max_rows: int | None = None) -> pd.DataFrame:
    """The first sheet as a frame, read no further than ``max_rows`` (:data:`MAX_ROWS`) data rows and one more: a
    sheet can hold more rows than the dimensions it records, which :func:`_check_size` went by."""
    max_rows = MAX_ROWS if max_rows is None else max_rows
    try:
        df = pd.read_excel(io.BytesIO(raw), engine="openpyxl", header=None, nrows=max_rows + 2)
    except Exception as exc:  # openpyxl raises many types for a damaged or non-xlsx zip
        raise LeadDataError(
            f"{label} could not be read as an Excel workbook ({type(exc).__name__}: {exc}). {_FORMATS_HINT}"
        ) from exc
    if df.empty:
        raise LeadDataError(
            f"{label} is empty: its first sheet has no cells. Put the lead table (header row first) on the first sheet."
        )
    if len(df) > max_rows + 1:
        raise LeadDataError(
            f"{label} has more than {max_rows:,} rows (more than its sheet records), over the limit. Load a sample "
            "or a shorter period."
        )
    header = ["" if pd.isna(v) else str(v).strip() for v in df.iloc[0].tolist()]
    _check_duplicates([h for h in header if h], label)
    header = [h or f"Unnamed: {i}" for i, h in enumerate(header)]
    body = df.iloc[1:].reset_index(drop=True)
    body.columns = header
    return body.infer_objects()


def _read_parquet(raw: bytes, label: str) -> pd.DataFrame:
    """The file read one column at a time (each decoded, converted and its Arrow copy dropped before the
    next), so a wide file peaks near the size of its frame, not twice it. pandas' unnamed index columns
    (``__index_level_0__``) are left out; a named index comes back as a column."""
    try:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(io.BytesIO(raw))
        names = [n for n in parquet.schema_arrow.names if not _PANDAS_INDEX.fullmatch(n)]
        _check_duplicates(names, label)
        texts = [n for n in names if _is_text(parquet.schema_arrow.field(n).type)]
        as_dictionaries = pq.ParquetFile(io.BytesIO(raw), read_dictionary=texts) if texts else parquet
        columns, text_bytes = {}, 0
        for name in names:
            text = name in texts
            column, size = _parquet_column(as_dictionaries if text else parquet, name, text)
            text_bytes += size
            if text_bytes > MAX_PARQUET_TEXT:
                raise LeadDataError(
                    f"{label} holds more than {MAX_PARQUET_TEXT:,} bytes of text once unpacked (from "
                    f"{len(raw):,} bytes of file: repeated text packs that tightly), more than the limit. Fix: load "
                    "a sample or a shorter period, or leave the long text columns out."
                )
            columns[name] = column.to_pandas()
            del column
    except LeadDataError:
        raise
    except Exception as exc:
        raise LeadDataError(
            f"{label} could not be read as Parquet ({type(exc).__name__}: {exc}). {_FORMATS_HINT}"
        ) from exc
    return pd.DataFrame(columns, copy=False)


_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
#: Most bytes of text a Parquet file's columns may unpack to. Parquet stores a repeated value once (a dictionary)
#: and packs its pages, so 300 KB can unpack to gigabytes: the sizes are summed before any text is unpacked.
MAX_PARQUET_TEXT = 1 << 30


def _is_text(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)


def _parquet_column(parquet, name: str, text: bool):
    """``(column, bytes of text it unpacks to)``. A ``text`` column (plain text in the file's schema) comes from
    ``parquet`` opened with it as a dictionary (each distinct value once) and is measured before it is unpacked;
    any other column is read as it is (one the file stores as a dictionary comes back categorical, never unpacked)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = parquet.read(columns=[name]).column(0)
    if not text:
        return column, 0
    size = 0
    for chunk in column.chunks:
        values = pc.binary_length(chunk.dictionary).take(chunk.indices) if pa.types.is_dictionary(chunk.type) else None
        size += pc.sum(values if values is not None else pc.binary_length(chunk)).as_py() or 0
    if size > MAX_PARQUET_TEXT:  # not unpacked: the caller refuses it
        return None, size
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    return pa.chunked_array(
        [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in column.chunks], kind
    ), size


def _read(
    source: Any, filename: str | None, max_rows: int | None = None, max_cols: int | None = None
) -> tuple[pd.DataFrame, str, str | None]:
    """Frame, sha256 of the raw content and the display name; over-limit files are refused before parsing."""
    if isinstance(source, pd.DataFrame):
        _check_duplicates(source.columns, "the table")
        digest = hashlib.sha256(source.to_csv(index=False).encode("utf-8")).hexdigest()
        return source.copy(), digest, filename
    raw, name = _raw_bytes(source, filename)
    label = name or "the upload"
    fmt, text = _checked(raw, name, max_rows, max_cols)
    if fmt == "xlsx":
        df = _read_excel(raw, label, max_rows)
    else:
        df = _read_csv(text, label) if fmt == "csv" else _read_parquet(raw, label)
    df.columns = [str(c).strip() for c in df.columns]
    # the same limits on the parsed table (a workbook can record smaller dimensions than it holds)
    _too_big(
        label,
        len(df),
        df.shape[1],
        MAX_ROWS if max_rows is None else max_rows,
        MAX_COLS if max_cols is None else max_cols,
    )
    return df, hashlib.sha256(raw).hexdigest(), name


def read_table(
    source: Any, filename: str | None = None, max_rows: int | None = None, max_cols: int | None = None
) -> pd.DataFrame:
    """Read a lead table from a path, ``bytes`` or a file-like object (or copy a DataFrame).

    ``filename`` is the name messages give the file (the user's file name: pass it for bytes, or for a
    path whose own name means nothing to the user); its extension is used only when the content has no
    recognisable magic bytes. A dataset store's raw file is named by its uploaded file name without it.
    Tables over ``max_rows`` rows or ``max_cols`` columns (default :data:`MAX_ROWS`, :data:`MAX_COLS`) are
    refused before they are parsed. Column names are stripped of surrounding whitespace; values are
    returned as pandas parses them (see :func:`load_leads` for cleaning).
    """
    return _read(source, filename, max_rows, max_cols)[0]
