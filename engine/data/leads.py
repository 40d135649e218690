"""Read any lead table a CRM exports and turn it into model-ready features.

Public surface:

* :func:`read_table` — CSV (delimiter ``, ; TAB |`` sniffed; UTF-8, UTF-8 with BOM, UTF-16/UTF-32 with a
  byte-order mark, UTF-16 without one, cp1252/Latin-1), Excel ``.xlsx`` and Parquet, from a path,
  ``bytes`` or a file-like object (a Streamlit upload). The format comes from the file's magic bytes,
  then its extension.
* :func:`check_table` — the cheap checks :func:`read_table` makes before it parses: format, and the row
  and column limits (:data:`MAX_ROWS`, :data:`MAX_COLS`) counted from Parquet metadata, the Excel sheet's
  dimensions or the CSV's lines, so an oversized file is refused before its table is built.
* :func:`infer_kinds` — one kind per column: ``numeric``, ``binary``, ``categorical``,
  ``high_cardinality``, ``identifier``, ``text`` (``empty`` for a column with no value at all).
* :data:`LEAK_PRESETS` and :func:`describe_policy` — which columns the leak policy leaves out.
* :func:`load_leads` — read, clean, pick and map the target, apply the leak policy, drop identifiers
  and empty or constant columns, and return a :class:`LeadTable`.
* :func:`find_sentinels` — numbers that stand for "never"/"unknown" (999, -1); :func:`treat_missing` reads
  the codes a user chose (``missing_values``) as missing, each with a 0/1 flag column, in training and in
  :func:`prepare_features` alike.

Cleaning rules: the value ``Select`` (an unfilled form default in the X Education export), empty
strings and whitespace are missing. A text column whose filled values are at least 90 % numbers is
read as numeric; the rest of its values become missing and a warning counts them. In ``LeadTable.X``
numeric (and 0/1 binary) columns are ``float``; every other column holds strings (``"Yes"``/``"No"``
flags stay strings), missing values are ``NaN``.

Every problem with the input raises :class:`LeadDataError`, whose message names the problem and the
fix. Nothing here writes to disk.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.missing_values import (
    MAX_MISSING_COLUMNS,
    MAX_MISSING_VALUES,
    MISSING_TOKENS,
    LeadDataError,
    check_missing_values,
)

__all__ = [
    "LeadDataError",
    "LEAK_PRESETS",
    "KINDS",
    "TARGET_CANDIDATES",
    "HIGH_CARDINALITY_MIN",
    "MAX_ROWS",
    "MAX_COLS",
    "MAX_CELLS",
    "read_header",
    "read_table",
    "check_table",
    "infer_kinds",
    "describe_policy",
    "find_target",
    "map_target",
    "find_sentinels",
    "check_missing_values",
    "MAX_MISSING_VALUES",
    "MAX_MISSING_COLUMNS",
    "treat_missing",
    "flag_name",
    "load_leads",
    "LeadTable",
]


#: Columns left out by each leak-policy preset (matched case- and whitespace-insensitively).
#: ``default``: fields the sales team fills in after contacting the lead (see
#: shared/data/leads/SOURCE.md). ``strict`` also drops the last recorded activity, which may
#: postdate the contact. ``none`` keeps everything.
_AFTER_CONTACT = [
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
]
LEAK_PRESETS: dict[str, list[str]] = {
    "default": _AFTER_CONTACT,
    "none": [],
    "strict": [*_AFTER_CONTACT, "Last Activity", "Last Notable Activity"],
}

KINDS = ("numeric", "binary", "categorical", "high_cardinality", "identifier", "text")

#: Names tried, in order, when no target is given (after ``Converted``), case-insensitively.
TARGET_CANDIDATES = [
    "converted",
    "target",
    "label",
    "won",
    "outcome",
    "is_converted",
    "conversion",
    "is converted",
    "y",
]

#: A text column with more distinct values than this is ``high_cardinality``.
#: (The X Education ``Country`` column, 38 values, stays a plain categorical.)
HIGH_CARDINALITY_MIN = 50
#: Rows and columns a lead table may have (checked before the table is parsed).
MAX_ROWS = 1_000_000
MAX_COLS = 500
#: Cells (rows x columns) a lead table may have, checked before it is parsed like the rows and columns: a
#: million leads of 50 columns, or 100,000 of 500. Memory grows with cells, not rows (a 500-column x
#: 1,000,000-row Parquet file of 1.9 MB would need about 9 GB once read).
MAX_CELLS = 50_000_000
#: Share of filled values that must parse as numbers for a text column to be read as numeric.
NUMERIC_SHARE = 0.9
#: Mean length (characters) from which a mostly-unique text column is free text.
TEXT_MIN_MEAN_LEN = 30

POSITIVE = {
    "1",
    "1.0",
    "yes",
    "y",
    "true",
    "t",
    "won",
    "win",
    "converted",
    "convert",
    "positive",
    "pos",
    "success",
    "closed won",
    "closed-won",
    "closed_won",
    "paid",
    "signed",
    "customer",
}
NEGATIVE = {
    "0",
    "0.0",
    "no",
    "n",
    "false",
    "f",
    "lost",
    "lose",
    "loss",
    "not converted",
    "not_converted",
    "not-converted",
    "unconverted",
    "negative",
    "neg",
    "failure",
    "fail",
    "closed lost",
    "closed-lost",
    "closed_lost",
    "not paid",
    "unpaid",
}
YES_NO = POSITIVE | NEGATIVE
_ID_NAME = re.compile(
    r"(^|[\s_\-.])(id|ids|uuid|guid|key|number|no|nr|num|code)$|^id[\s_\-]|^(id|uuid|guid)$", re.IGNORECASE
)
_FORMATS_HINT = "Export the table as CSV (UTF-8), Excel .xlsx or Parquet and upload that file."
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


def _norm(name: Any) -> str:
    """Column-name key for matching: case-folded, whitespace collapsed."""
    return " ".join(str(name).split()).casefold()


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _raw_bytes(source: Any, filename: str | None) -> tuple[bytes, str | None]:
    """Bytes and a display name from a path, bytes or a file-like object."""
    from engine.data.sources import raw_bytes

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
    from engine.data.sources import decode_text

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
        from engine.data.sources import csv_rows_over

        delim = _sniff_delimiter(text)
        cols = len(_header_fields(text, delim))
        _too_big(label, None, cols, max_rows, max_cols, lines=csv_rows_over(text, delim, _row_limit(cols, max_rows)))


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
    from engine.data.sources import csv_rows_over

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
    for row in csv.reader(io.StringIO(text[:262144]), delimiter=delim):
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


def _read_excel(raw: bytes, label: str) -> pd.DataFrame:
    try:
        df = pd.read_excel(io.BytesIO(raw), engine="openpyxl", header=None)
    except Exception as exc:  # openpyxl raises many types for a damaged or non-xlsx zip
        raise LeadDataError(
            f"{label} could not be read as an Excel workbook ({type(exc).__name__}: {exc}). {_FORMATS_HINT}"
        ) from exc
    if df.empty:
        raise LeadDataError(
            f"{label} is empty: its first sheet has no cells. Put the lead table (header row first) on the first sheet."
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
        columns = {name: parquet.read(columns=[name]).column(0).to_pandas() for name in names}
    except LeadDataError:
        raise
    except Exception as exc:
        raise LeadDataError(
            f"{label} could not be read as Parquet ({type(exc).__name__}: {exc}). {_FORMATS_HINT}"
        ) from exc
    return pd.DataFrame(columns, copy=False)


_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


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
    df = _read_csv(text, label) if fmt == "csv" else {"xlsx": _read_excel, "parquet": _read_parquet}[fmt](raw, label)
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


# --------------------------------------------------------------------------------------------
# cleaning and kinds
# --------------------------------------------------------------------------------------------
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")


def _as_number(text: str) -> float | None:
    """float of a cell's text, or None. Accepts a decimal comma ("3,5")."""
    try:
        value = float(text)
    except ValueError:
        if not _DECIMAL_COMMA.fullmatch(text):
            return None
        value = float(text.replace(",", "."))
    return value if np.isfinite(value) else None


def _factorize(s: pd.Series) -> tuple[np.ndarray, Any]:
    """``pd.factorize`` of a column; cells pandas cannot hash (lists, arrays, dicts: a Parquet list or struct
    column) are taken as their text (``['a', 'b']``), so such a column reads as text instead of raising
    TypeError."""
    try:
        return pd.factorize(s, use_na_sentinel=True)
    except TypeError:

        def text(value: Any) -> Any:
            try:
                hash(value)
            except TypeError:
                return str(value.tolist() if isinstance(value, np.ndarray) else value)
            return value

        return pd.factorize(s.astype(object).map(text), use_na_sentinel=True)


def _clean_column(s: pd.Series) -> tuple[pd.Series, int]:
    """Clean one column: (clean series, count of non-numeric values read as missing).

    Numbers and booleans become float. Text is stripped; '', whitespace and 'Select' become NaN; a
    text column whose filled values are >= NUMERIC_SHARE numbers becomes float. Works on the distinct
    values (factorize), so it costs one pass over the rows.
    """
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.astype(float), 0
    if pd.api.types.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.PeriodDtype):
        s = s.astype(str).where(s.notna())
    codes, uniques = _factorize(s)
    texts = [str(u).strip() for u in uniques]
    missing = np.array([t.casefold() in MISSING_TOKENS for t in texts], dtype=bool)
    counts = np.bincount(codes[codes >= 0], minlength=len(texts))
    filled = int(counts[~missing].sum())
    numbers = [None if m else _as_number(t) for t, m in zip(texts, missing)]
    is_num = np.array([v is not None for v in numbers], dtype=bool)
    n_num = int(counts[is_num].sum())
    valid = codes >= 0
    if filled and n_num / filled >= NUMERIC_SHARE:
        table = np.array([np.nan if v is None else v for v in numbers] + [np.nan], dtype=float)
        return pd.Series(table[np.where(valid, codes, len(texts))], index=s.index, name=s.name), filled - n_num
    table = np.array([np.nan if m else t for t, m in zip(texts, missing)] + [np.nan], dtype=object)
    values = table[np.where(valid, codes, len(texts))]
    return pd.Series(values, index=s.index, name=s.name, dtype="str"), 0


def _clean_frame(df: pd.DataFrame, columns: list[Any] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Missing tokens -> NaN, numeric-looking text -> float, for ``columns`` (default: all) of ``df``, which
    loses each column once it is cleaned, so a wide table is not held twice. Returns (frame, warnings)."""
    out: dict[str, pd.Series] = {}
    warnings: list[str] = []
    index = df.index
    for col in list(df.columns) if columns is None else columns:
        out[col], bad = _clean_column(df.pop(col))
        if bad:
            warnings.append(f"{col}: {bad} non-numeric value{'s' if bad != 1 else ''} read as missing")
    return pd.DataFrame(out, index=index), warnings


def _clean_strings(s: pd.Series) -> pd.Series:
    """Text cleaned as in _clean_column but never turned numeric (used for the target)."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        s = s.astype(str).where(s.notna())
    codes, uniques = _factorize(s)
    texts = [str(u).strip() for u in uniques]
    table = np.array([np.nan if t.casefold() in MISSING_TOKENS else t for t in texts] + [np.nan], dtype=object)
    return pd.Series(table[np.where(codes >= 0, codes, len(texts))], index=s.index, name=s.name, dtype="str")


def _kind(s: pd.Series, name: str) -> str:
    filled = s.dropna()
    n = len(filled)
    if n == 0:
        return "empty"
    nunique = filled.nunique()
    all_unique = nunique == n
    id_name = bool(_ID_NAME.search(str(name).strip()))
    if pd.api.types.is_numeric_dtype(s):
        values = filled.to_numpy(dtype=float)
        integral = bool(np.all(np.mod(values, 1) == 0))
        if all_unique and integral and s.notna().all():
            # a running number: named like an id, or many rows packed into a narrow integer range
            span = float(values.max() - values.min()) if n else 0.0
            if (id_name and n >= 2) or (n >= 100 and span <= 20 * n):
                return "identifier"
        if nunique <= 2 and set(np.unique(values)) <= {0.0, 1.0}:
            return "binary"
        return "numeric"
    text = filled.astype(str)
    if nunique <= 2 and (nunique == 2 or text.str.casefold().isin(YES_NO).all()):
        return "binary"
    unique_share = nunique / n
    if unique_share >= 0.5 and n >= 10:
        mean_len = text.str.len().mean()
        spaced = text.str.contains(r"\s", regex=True).mean()
        if mean_len >= TEXT_MIN_MEAN_LEN and spaced >= 0.5:
            return "text"
        if all_unique and (n >= 20 or id_name) and spaced < 0.5:
            return "identifier"
    if id_name and all_unique and n >= 2:
        return "identifier"
    if nunique > HIGH_CARDINALITY_MIN:
        return "high_cardinality"
    return "categorical"


def infer_kinds(df: pd.DataFrame) -> dict[str, str]:
    """Kind of every column: numeric | binary | categorical | high_cardinality | identifier | text.

    The frame is cleaned first the way :func:`load_leads` cleans it ('Select' and blanks missing,
    mostly-numeric text numeric), so a raw :func:`read_table` frame can be passed. A column with no
    value at all is ``empty``.
    """
    clean, _ = _clean_frame(df.copy(deep=False))  # a shallow copy: the caller's frame keeps its columns
    return {str(col): _kind(clean[col], str(col)) for col in clean.columns}


# --------------------------------------------------------------------------------------------
# numbers that mean "missing" (999 for "never")
# --------------------------------------------------------------------------------------------
def number_text(value: float) -> str:
    """A number as a person writes it: ``999`` (not ``999.0``), ``-1``, ``0.5``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def flag_name(column: str, value: float) -> str:
    """The 0/1 column that says where ``column`` held ``value`` before it was read as missing."""
    return f"{column} was {number_text(value)}"


def flags_of(missing_values: dict[str, list[float]]) -> dict[str, tuple[str, float]]:
    """The 0/1 columns a checked ``missing_values`` setting makes: ``{"TotalVisits was 999": ("TotalVisits",
    999.0)}``."""
    return {flag_name(c, v): (c, v) for c, values in missing_values.items() for v in values}


def _forced_numbers(s: pd.Series) -> pd.Series:
    """Every cell of ``s`` as a number (text that is not one, blanks and 'Select': NaN), value by distinct value."""
    codes, uniques = _factorize(s)
    parsed = [_as_number(str(u).strip()) for u in uniques]
    numbers = np.array([np.nan if v is None else float(v) for v in parsed] + [np.nan])
    return pd.Series(numbers[codes], index=s.index)


def treat_missing(
    frame: pd.DataFrame, missing_values: dict[str, list[float]] | None, columns: Iterable[str] | None = None
) -> pd.DataFrame:
    """``frame`` with each ``missing_values`` number of its numeric columns read as missing (NaN), and beside the
    column a 0/1 :func:`flag_name` column ("TotalVisits was 999": 1 where it held the value). ``columns``
    (a run's features, in their order) keeps only the flags that training kept (a constant one was dropped).
    Training (:func:`load_leads`) and scoring (:func:`prepare_features`) both go through it."""
    missing_values = check_missing_values(missing_values)
    if not missing_values:
        return frame
    wanted = None if columns is None else set(columns)
    out: dict[str, pd.Series] = {}
    for col in frame.columns:
        s = frame[col]
        if col in missing_values and not pd.api.types.is_numeric_dtype(s):
            s = _forced_numbers(s)  # training saw numbers here: a text cell in new rows must not hide the codes
        values = missing_values.get(col)
        if not values:
            out.setdefault(col, s)  # a flag already computed keeps its value
            continue
        out[col] = s.mask(s.isin(values))
        for value in values:
            name = flag_name(col, value)
            if wanted is None or name in wanted:
                out[name] = (s == value).astype(float)
    shaped = pd.DataFrame(out, index=frame.index)
    return shaped if columns is None else shaped[[c for c in columns if c in out]]


def find_sentinels(
    frame: pd.DataFrame, kinds: dict[str, str], min_share: float = 0.02, min_rows: int = 5
) -> list[dict]:
    """Numbers that stand for something else (999 for 'never', -1 for 'unknown'): one of the three most common
    values of a numeric column that covers at least ``min_share`` of its filled rows (and ``min_rows``) and lies
    far outside the column's other values (more than twice their spread beyond them). ``frame`` as
    :func:`read_table` gives it, ``kinds`` from :func:`infer_kinds`. Returns ``[{"column", "value", "rows",
    "share" (of all rows), "low", "high" (the other values' range)}]``."""
    found = []
    for column, kind in kinds.items():
        if kind != "numeric" or column not in frame.columns:
            continue
        values = _clean_column(frame[column])[0].dropna()
        if len(values) < 20:
            continue
        for value, count in values.value_counts().head(3).items():
            rest = values[values != value]
            if count < max(min_rows, min_share * len(values)) or len(rest) < 10:
                continue
            low, high = float(rest.min()), float(rest.max())
            spread = max(high - low, abs(high), 1.0)
            if value > high + 2 * spread or value < low - 2 * spread:
                share = float(count / len(frame))
                found.append(
                    {
                        "column": column,
                        "value": float(value),
                        "rows": int(count),
                        "share": share,
                        "low": low,
                        "high": high,
                    }
                )
    return found


# --------------------------------------------------------------------------------------------
# leak policy
# --------------------------------------------------------------------------------------------
def _as_list(names: Any) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        return [p.strip() for p in names.split(",") if p.strip()]
    return [str(n) for n in names]


def _check_policy(leak_policy: str | None) -> str:
    policy = "default" if leak_policy is None else str(leak_policy).strip().lower()
    if policy not in LEAK_PRESETS:
        raise LeadDataError(
            f"unknown leak policy {leak_policy!r}. Choose one of: {', '.join(LEAK_PRESETS)} "
            "(and add columns with exclude / include)."
        )
    return policy


def describe_policy(
    columns: Iterable[Any], leak_policy: str = "default", exclude: Any = None, include: Any = None
) -> list[str]:
    """Columns (spelled as in ``columns``) that the leak policy leaves out, in column order.

    Excluded = preset columns + ``exclude`` - ``include``; names match case- and
    whitespace-insensitively; names not present are ignored.
    """
    policy = _check_policy(leak_policy)
    drop = {_norm(c) for c in LEAK_PRESETS[policy]} | {_norm(c) for c in _as_list(exclude)}
    keep = {_norm(c) for c in _as_list(include)}
    return [str(c) for c in columns if _norm(c) in drop and _norm(c) not in keep]


# --------------------------------------------------------------------------------------------
# target
# --------------------------------------------------------------------------------------------
def _column_list(columns: Iterable[Any], limit: int = 40) -> str:
    cols = [str(c) for c in columns]
    shown = ", ".join(repr(c) for c in cols[:limit])
    return shown + (f", … ({len(cols) - limit} more)" if len(cols) > limit else "")


def find_target(columns: Iterable[Any], target: str | None = None) -> str:
    """The target column's name as spelled in ``columns``; raises LeadDataError if there is none."""
    cols = [str(c) for c in columns]
    by_key = {}
    for c in cols:
        by_key.setdefault(_norm(c), c)
    if target is not None and str(target).strip():
        if str(target) in cols:
            return str(target)
        if _norm(target) in by_key:
            return by_key[_norm(target)]
        raise LeadDataError(
            f"target column {target!r} is not in the table. The columns are: {_column_list(cols)}. "
            "Pass the right name with --target COLUMN (or choose it in the dashboard)."
        )
    if "Converted" in cols:
        return "Converted"
    for cand in TARGET_CANDIDATES:
        if cand in by_key:
            return by_key[cand]
    raise LeadDataError(
        "no target column found: none is named 'Converted' (or converted/target/label/won/"
        f"outcome/is_converted/y). The columns are: {_column_list(cols)}. Name the column that says "
        "whether the lead converted with --target COLUMN (or choose it in the dashboard)."
    )


def map_target(values: pd.Series, name: str = "target") -> tuple[np.ndarray, np.ndarray]:
    """Map a target column to 0/1. Returns (y for the filled rows, mask of filled rows).

    Accepts 1/0, yes/no, true/false, won/lost, converted/not converted (case-insensitive) and booleans.
    """
    s = values
    if pd.api.types.is_bool_dtype(s):
        return s.astype(int).to_numpy(), np.ones(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        mask = s.notna().to_numpy()
        uniq = set(np.unique(s.dropna().to_numpy(dtype=float)).tolist())
        if uniq <= {0.0, 1.0}:
            return s[mask].astype(int).to_numpy(), mask
        keys = s.dropna().map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    else:
        s = _clean_strings(s)
        mask = s.notna().to_numpy()
        keys = s.dropna().str.casefold().str.replace(r"\s+", " ", regex=True)
        keys = keys.replace({"1.0": "1", "0.0": "0", "+1": "1", "-0": "0"})
    distinct = list(dict.fromkeys(keys.tolist()))
    examples = ", ".join(repr(v) for v in list(dict.fromkeys(values.dropna().astype(str).tolist()))[:8])
    if len(distinct) > 2:
        raise LeadDataError(
            f"target column {name!r} is not binary: it has {len(distinct)} different values "
            f"(e.g. {examples}). Choose a yes/no column as target, or recode it to 1 = converted, "
            "0 = not converted."
        )
    unknown = [v for v in distinct if v not in YES_NO]
    if unknown:
        raise LeadDataError(
            f"target column {name!r} has values that are not a yes/no outcome ({examples}). "
            "Recode it to 1 = converted and 0 = not converted (or yes/no, won/lost, true/false)."
        )
    pos = {v for v in distinct if v in POSITIVE}
    return keys.isin(pos).astype(int).to_numpy(), mask


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
@dataclass
class LeadTable:
    """A lead table ready for training: features, 0/1 target and what was done to get there."""

    X: pd.DataFrame
    y: np.ndarray
    target: str
    kinds: dict[str, str]
    excluded: list[str]
    dropped: dict[str, str]
    policy: str
    warnings: list[str]
    data_hash: str
    row_ids: np.ndarray
    source_name: str | None = None
    n_rows_read: int = 0
    include: list[str] = field(default_factory=list)
    missing_values: dict[str, list[float]] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float:
        return float(np.mean(self.y)) if len(self.y) else float("nan")

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for run specs and the dashboard."""
        return {
            "source": self.source_name,
            "rows": int(len(self.y)),
            "rows_read": int(self.n_rows_read),
            "features": list(self.X.columns),
            "target": self.target,
            "conversion_rate": self.conversion_rate,
            "policy": self.policy,
            "excluded": list(self.excluded),
            "included": list(self.include),
            "dropped": dict(self.dropped),
            "kinds": dict(self.kinds),
            "warnings": list(self.warnings),
            "data_hash": self.data_hash,
            "missing_values": dict(self.missing_values),
        }


def load_leads(
    source: Any,
    target: str | None = None,
    leak_policy: str = "default",
    exclude: Any = None,
    include: Any = None,
    max_rows: int | None = None,
    max_cols: int | None = None,
    filename: str | None = None,
    missing_values: dict[str, list[float]] | None = None,
) -> LeadTable:
    """Read and validate a lead table; see the module docstring for the rules.

    ``source``: path, bytes, file-like or DataFrame. ``target``: the outcome column (default:
    ``Converted`` or a common name such as target/label/won). ``leak_policy``: ``default`` | ``none`` |
    ``strict``; ``exclude`` adds columns to leave out, ``include`` puts preset-excluded columns back.
    ``max_rows`` / ``max_cols`` (default :data:`MAX_ROWS`, :data:`MAX_COLS`) are checked before the file is
    parsed. ``filename`` names the file in messages (see :func:`read_table`). ``missing_values``
    (``{column: [numbers]}``, see :func:`treat_missing`): codes of numeric columns read as missing, each with
    a 0/1 flag column; the ones applied are in ``LeadTable.missing_values``.
    Raises :class:`LeadDataError` for unusable input.
    """
    policy = _check_policy(leak_policy)
    missing_values = check_missing_values(missing_values)
    max_rows = MAX_ROWS if max_rows is None else max_rows
    max_cols = MAX_COLS if max_cols is None else max_cols
    df, data_hash, name = _read(source, filename, max_rows, max_cols)
    label = name or "the table"
    if df.shape[1] == 0:
        raise LeadDataError(f"{label} has no columns. Export the lead table with its header row.")
    if len(df) == 0:
        raise LeadDataError(
            f"{label} has a header but no rows ({df.shape[1]} columns, 0 leads). Export the "
            "table again with its data rows."
        )
    if len(df) > max_rows:
        raise LeadDataError(
            f"{label} has {len(df):,} rows, more than the limit of {max_rows:,}. Load a sample "
            "or a shorter period, or raise max_rows."
        )
    if df.shape[1] > max_cols:
        raise LeadDataError(
            f"{label} has {df.shape[1]:,} columns, more than the limit of {max_cols:,}. Remove "
            "columns that are not lead attributes, or raise max_cols."
        )

    target_col = find_target(df.columns, target)
    n_read = len(df)
    row_ids = np.asarray(df.index)
    warnings: list[str] = []
    y_all, mask = map_target(df[target_col], target_col)
    if not mask.any():
        raise LeadDataError(
            f"target column {target_col!r} has no values. Fill in the outcome (1/0) of each lead, "
            "or choose another target column."
        )
    if not mask.all():
        n_missing = int((~mask).sum())
        warnings.append(f"{target_col}: {n_missing} row{'s' if n_missing != 1 else ''} without a target value left out")
        df = df.loc[mask]
        row_ids = row_ids[mask]
    y = y_all.astype(int)
    classes = np.unique(y)
    if len(classes) < 2:
        only = "converted" if classes[0] == 1 else "not converted"
        raise LeadDataError(
            f"target column {target_col!r} has a single class: every one of the {len(y):,} leads "
            f"is {only}. Training needs both converted and not-converted leads; add leads of the "
            "other outcome or choose another target column."
        )

    all_columns = list(df.columns)
    feature_columns = [c for c in all_columns if c != target_col]
    excluded = describe_policy(feature_columns, policy, exclude, include)
    known = {_norm(c) for c in feature_columns}
    for missing in [c for c in _as_list(exclude) + _as_list(include) if _norm(c) not in known]:
        if _norm(missing) != _norm(target_col):
            warnings.append(f"leak policy: column {missing!r} is not in the table; ignored")
    left_out = set(excluded)
    # column by column, each raw column released once cleaned (df is this function's own frame)
    clean, num_warnings = _clean_frame(df, [c for c in feature_columns if c not in left_out])
    del df
    warnings.extend(num_warnings)
    missing_values = _applicable(missing_values, clean, all_columns, target_col, label, warnings)
    clean = treat_missing(clean, missing_values)
    dropped: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for col in clean.columns:
        s = clean[col]
        kind = _kind(s, col)
        if kind == "empty":
            dropped[col] = "every value missing"
            warnings.append(f"{col}: every value is missing; column dropped")
        elif kind == "identifier":
            dropped[col] = "identifier (a different value in every row)"
        elif s.nunique(dropna=True) == 1 and s.notna().all():
            dropped[col] = f"constant (every value is {s.iloc[0]!r})"
        else:
            kinds[col] = kind
    X = clean[[c for c in clean.columns if c in kinds]].reset_index(drop=True)
    if X.shape[1] == 0:
        reasons = [f"{c}: {r}" for c, r in dropped.items()]
        detail = "; ".join(reasons[:10]) or "no columns besides the target"
        if len(reasons) > 10:
            detail += f"; and {len(reasons) - 10:,} more columns"
        raise LeadDataError(
            f"{label} has no usable feature columns after the leak policy {policy!r} "
            f"({detail}). Add lead attributes to the table, or relax the policy "
            "(leak_policy='none' or include=[...])."
        )
    return LeadTable(
        X=X,
        y=y,
        target=target_col,
        kinds=kinds,
        excluded=excluded,
        dropped=dropped,
        policy=policy,
        warnings=warnings,
        data_hash=data_hash,
        row_ids=row_ids,
        source_name=name,
        n_rows_read=n_read,
        include=_as_list(include),
        missing_values=missing_values,
    )


def _applicable(
    missing_values: dict[str, list[float]], clean: pd.DataFrame, columns, target: str, label: str, warnings: list
) -> dict[str, list[float]]:
    """The ``missing_values`` of the numeric feature columns of ``clean``; a column the leak policy left out is
    skipped with a warning, one that is not in the table, the outcome or not numeric is refused."""
    applied = {}
    for col, values in missing_values.items():
        if col == target:
            raise LeadDataError(
                f"missing_values names {col!r}, the outcome column. Fix: remove it from the setting; the outcome "
                "is never read as missing."
            )
        if col not in columns:
            raise LeadDataError(
                f"missing_values names the column {col!r}, which is not in {label}. The columns are: "
                f"{_column_list(columns)}. Fix: remove it from the setting (Data page), or load the file that has it."
            )
        if col not in clean.columns:
            warnings.append(f"{col}: left out, so its missing-value codes are not applied")
            continue
        if not pd.api.types.is_numeric_dtype(clean[col]):
            raise LeadDataError(
                f"missing_values names {col!r}, which is not a numeric column; only numbers can be codes for "
                "missing. Fix: remove it from the setting, or clean the column in the export."
            )
        taken = [flag_name(col, v) for v in values if flag_name(col, v) in columns]
        if taken:
            raise LeadDataError(
                f"{label} already has a column named {taken[0]!r}, the name of the flag the missing-value code "
                "would add. Fix: rename that column in the export, or remove the code from the setting."
            )
        applied[col] = values
    return applied


def prepare_features(
    frame: pd.DataFrame,
    columns: list[str],
    kinds: dict[str, str],
    missing_values: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """Shape new leads (a file to score, an API request, a what-if form) exactly as training saw them.

    ``columns``, ``kinds`` and ``missing_values`` are those of the training :class:`LeadTable` (stored in every
    run's spec). Missing columns become missing values, extra columns are ignored, 'Select' and blanks are
    missing, numeric columns are numbers (junk read as missing) and every other column is text; then the codes
    of ``missing_values`` are read as missing and their flag columns made (:func:`treat_missing`).
    """
    if missing_values:
        return treat_missing(prepare_features(frame, columns, kinds), missing_values, columns)
    frame = frame.reindex(columns=list(columns))
    out: dict[str, pd.Series] = {}
    for col in frame.columns:
        s = frame[col].reset_index(drop=True)
        if s.isna().all():
            out[col] = pd.Series(np.nan, index=s.index, dtype=float if kinds.get(col) == "numeric" else "str")
            continue
        kind = kinds.get(col)
        if kind in ("numeric", "binary") and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            values = s.to_numpy(dtype=float, na_value=np.nan)  # numbers already: only non-finite ones go
            out[col] = pd.Series(np.where(np.isfinite(values), values, np.nan), index=s.index)
            continue
        cleaned = _clean_strings(s)
        if kind not in ("numeric", "binary"):
            out[col] = cleaned
            continue
        # each distinct text parsed once (a file of 100,000 leads has few distinct values per column)
        codes, uniques = pd.factorize(cleaned, use_na_sentinel=True)
        table = np.array([_as_number(v) if isinstance(v, str) else None for v in uniques] + [None], dtype=float)
        numbers = pd.Series(table[np.where(codes >= 0, codes, len(uniques))], index=s.index, dtype=float)
        as_numbers = kind == "numeric" or numbers.notna().sum() == cleaned.notna().sum()
        out[col] = numbers if as_numbers else cleaned
    return pd.DataFrame(out, index=range(len(frame)))
