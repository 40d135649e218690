"""Read sales-call transcripts in the seed format and turn them into a table.

One record is ``{"transcript": str, "label": 0|1, "metadata": {"industry", "product", "duration",
"call_time", "agent_id", "customer_company_size", ...}}``. Accepted containers:

* a JSON array of records (or an object holding one list of records under any key);
* JSON Lines (one record per line, blank lines allowed);
* CSV with a ``transcript`` column, an optional ``label`` column, and metadata columns
  (a ``metadata`` column holding JSON objects is expanded too);
* already-parsed input: a list of dicts or a :class:`pandas.DataFrame`.

The source is a path, ``bytes``, or a file-like object (a Streamlit upload), in UTF-8 (with or without a
byte-order mark), UTF-16 or UTF-32 with a byte-order mark, UTF-16 without one, or Windows-1252/Latin-1.
At most :data:`MAX_ROWS` records and :data:`MAX_BYTES` bytes are read; both are checked before the
records are built (:func:`check_transcripts`). Public surface:

* :func:`load_transcripts` -> :class:`TranscriptTable` (``X``: ``transcript`` + flattened metadata;
  ``y``: 0/1 labels or ``None``; ``frame``: ``X`` plus a nullable ``label`` column).
* :func:`read_transcript_records` -> list of plain dict records (no validation of labels).
* :func:`check_transcripts` — the cheap checks made before parsing (size, format, record count).
* :class:`TranscriptDataError` — every problem with the input; the message names it and the fix.

Unlabelled records can be scored (``require_labels=False``) but not trained on. Very long
transcripts are accepted (the embedding approach splits them into chunks). Nothing here writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.sources import csv_rows_over, decode_text, iter_lines, raw_bytes
from engine.storage import write_text

__all__ = [
    "TranscriptDataError",
    "TranscriptTable",
    "load_transcripts",
    "read_transcript_records",
    "check_transcripts",
    "records_to_frame",
    "MAX_ROWS",
    "MAX_BYTES",
    "MIN_ROWS",
    "MIN_PER_CLASS",
    "TEXT_COLUMN",
    "LABEL_COLUMN",
]

TEXT_COLUMN = "transcript"
LABEL_COLUMN = "label"
#: Fewest labelled records, and fewest of each class, needed to train.
MIN_ROWS = 10
MIN_PER_CLASS = 4
#: Records read at most (a guard against a wrong file, not a model limit).
MAX_ROWS = 1_000_000
#: Largest transcripts file read (it is read whole).
MAX_BYTES = 1 << 30

_LABEL_MAP = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


class TranscriptDataError(ValueError):
    """The transcripts cannot be used as given. The message says what is wrong and how to fix it."""


@dataclass
class TranscriptTable:
    X: pd.DataFrame  # ``transcript`` + metadata columns (numeric -> float, others str/NaN)
    y: np.ndarray | None  # int 0/1 when every record is labelled, else None
    data_hash: str  # sha256 of the raw content
    warnings: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None  # X plus ``label`` (nullable Int64)
    row_ids: np.ndarray | None = None  # stable ids: the ``id`` field when given, else the record position

    @property
    def metadata_columns(self) -> list[str]:
        return [c for c in self.X.columns if c != TEXT_COLUMN]

    @property
    def labelled(self) -> np.ndarray:
        return self.frame[LABEL_COLUMN].notna().to_numpy() if self.frame is not None else np.ones(len(self.X), bool)

    def summary(self) -> dict[str, Any]:
        lengths = self.X[TEXT_COLUMN].str.len()
        out = {
            "rows": int(len(self.X)),
            "metadata_columns": self.metadata_columns,
            "mean_chars": float(lengths.mean()) if len(lengths) else 0.0,
            "max_chars": int(lengths.max()) if len(lengths) else 0,
            "warnings": list(self.warnings),
        }
        if self.y is not None:
            out["conversion_rate"] = float(np.mean(self.y))
        return out


# -- reading -------------------------------------------------------------------------------------
def _raw_bytes(source: Any, filename: str | None) -> tuple[bytes, str | None]:
    data, name = raw_bytes(source, filename, TranscriptDataError, "the .json, .jsonl or .csv file")
    if data is not None:
        return data, name
    raise TranscriptDataError(
        f"Cannot read transcripts from a {type(source).__name__}. "
        "Fix: pass a file path, bytes, a file-like object, a list of records or a DataFrame."
    )


def _decode(raw: bytes) -> str:
    return decode_text(raw)[0]


def _too_many(label: str, what: str, max_rows: int) -> TranscriptDataError:
    return TranscriptDataError(
        f"{label} has more than {max_rows:,} records ({what}), the limit. "
        "Fix: split the file, or score and train on a sample of it."
    )


def _detect_format(text: str, name: str | None) -> str:
    ext = Path(name).suffix.lower() if name else ""
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    if ext == ".csv":
        return "csv"
    head = text.lstrip()[:1]
    if head == "[":
        return "json"
    if head == "{":
        # A single JSON document (object wrapping a list) or JSON Lines?
        first_line = text.lstrip().split("\n", 1)[0].strip()
        try:
            json.loads(first_line)
            rest = text.lstrip().split("\n", 1)[1].strip() if "\n" in text.strip() else ""
            return "jsonl" if rest else "json"
        except json.JSONDecodeError:
            return "json"
    if ext == ".json":
        return "json"
    return "csv"


def _json_error(exc: json.JSONDecodeError, where: str) -> TranscriptDataError:
    return TranscriptDataError(
        f"Invalid JSON {where} (line {exc.lineno}, column {exc.colno}): {exc.msg}. "
        "Fix: repair the JSON there (a missing comma, quote or bracket is the usual cause), or export the "
        'transcripts again as JSON Lines (one {"transcript": ..., "label": ..., "metadata": {...}} per line).'
    )


_WS = re.compile(r"[ \t\n\r]*")


def _after_item(text: str, i: int, closer: str) -> tuple[bool, int]:
    """After an array element or object member: past the ``,`` before the next one (False), or past ``closer``
    (True, the container ends)."""
    i = _WS.match(text, i).end()
    if text.startswith(",", i):
        return False, _WS.match(text, i + 1).end()
    if text.startswith(closer, i):
        return True, i + 1
    raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _json_array(text: str, i: int, decoder: json.JSONDecoder, label: str, max_rows: int) -> tuple[list, int]:
    """The array starting at ``text[i] == "["``, decoded one element at a time (refused past ``max_rows``)."""
    items: list = []
    i = _WS.match(text, i + 1).end()
    if text.startswith("]", i):
        return items, i + 1
    while True:
        value, i = decoder.raw_decode(text, i)
        items.append(value)
        if len(items) > max_rows:
            raise _too_many(label, "counted in its JSON array", max_rows)
        done, i = _after_item(text, i, "]")
        if done:
            return items, i


def _json_object(text: str, i: int, decoder: json.JSONDecoder, label: str, max_rows: int) -> tuple[dict, int]:
    """The object starting at ``text[i] == "{"``; its array values are read with :func:`_json_array`."""
    obj: dict = {}
    i = _WS.match(text, i + 1).end()
    if text.startswith("}", i):
        return obj, i + 1
    while True:
        if not text.startswith('"', i):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = decoder.raw_decode(text, i)
        i = _WS.match(text, i).end()
        if not text.startswith(":", i):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        i = _WS.match(text, i + 1).end()
        if text.startswith("[", i):
            obj[key], i = _json_array(text, i, decoder, label, max_rows)
        else:
            obj[key], i = decoder.raw_decode(text, i)
        done, i = _after_item(text, i, "}")
        if done:
            return obj, i


def _load_json(text: str, label: str, max_rows: int) -> Any:
    """``json.loads(text)``, except that a top-level array (or an array held by a top-level object) is
    decoded one element at a time, so a file with more than ``max_rows`` records is refused once it has
    passed the limit instead of after every record has been built."""
    decoder = json.JSONDecoder()
    try:
        i = _WS.match(text, 0).end()
        if text.startswith("[", i):
            data, i = _json_array(text, i, decoder, label, max_rows)
        elif text.startswith("{", i):
            data, i = _json_object(text, i, decoder, label, max_rows)
        else:
            data, i = decoder.raw_decode(text, i)
        i = _WS.match(text, i).end()
        if i != len(text):
            raise json.JSONDecodeError("Extra data", text, i)
    except json.JSONDecodeError as exc:
        raise _json_error(exc, f"in {label}") from None
    except RecursionError:
        raise TranscriptDataError(
            f"{label} nests JSON too deeply to be transcript records. "
            'Fix: export flat records ({"transcript", "label", "metadata"}).'
        ) from None
    return data


def _parse_json(text: str, label: str = "the file", max_rows: int = MAX_ROWS) -> list:
    data = _load_json(text, label, max_rows)
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if TEXT_COLUMN in data:
            data = [data]
        elif len(lists) == 1:
            data = lists[0]
        else:
            raise TranscriptDataError(
                "The JSON file is an object, not a list of transcript records. "
                'Fix: make the top level a JSON array of {"transcript", "label", "metadata"} objects.'
            )
    if not isinstance(data, list):
        raise TranscriptDataError(
            "The JSON file does not hold a list of records. Fix: make the top level a JSON array of transcript records."
        )
    return data


def _jsonl_lines(text: str):
    """``(line number, line)`` of the non-blank lines, without splitting the whole text at once."""
    for number, line in enumerate(iter_lines(text), start=1):
        if line.strip():
            yield number, line


def _count_jsonl(text: str, label: str, max_rows: int) -> None:
    if text.count("\n") + 1 > max_rows and sum(1 for _ in _jsonl_lines(text)) > max_rows:
        raise _too_many(label, "one a line", max_rows)


def _parse_jsonl(text: str, label: str = "the file", max_rows: int = MAX_ROWS) -> list:
    _count_jsonl(text, label, max_rows)
    records = []
    for number, line in _jsonl_lines(text):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TranscriptDataError(
                f"Invalid JSON on line {number} (column {exc.colno}): {exc.msg}. "
                f"Fix: repair line {number} so that it holds one complete JSON object "
                '({"transcript": ..., "label": ..., "metadata": {...}}) on a single line.'
            ) from None
        except RecursionError:
            raise TranscriptDataError(
                f"Line {number} nests JSON too deeply to be a transcript record. Fix: export flat records."
            ) from None
    return records


def _count_csv(text: str, label: str, max_rows: int) -> None:
    lines = csv_rows_over(text, ",", max_rows)
    if lines is not None:
        raise _too_many(label, f"{lines:,} lines of CSV", max_rows)


def _parse_csv(text: str, label: str = "the file", max_rows: int = MAX_ROWS) -> list:
    _count_csv(text, label, max_rows)
    try:
        frame = pd.read_csv(io.BytesIO(text.encode("utf-8")), encoding="utf-8", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise TranscriptDataError(
            f"Could not read the CSV file: {exc}. Fix: save it as comma-separated UTF-8 with a header row."
        ) from None
    return _frame_to_records(frame, "CSV file")


def _blank(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _frame_to_records(frame: pd.DataFrame, what: str = "table") -> list:
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    for wanted in (TEXT_COLUMN, LABEL_COLUMN):
        if wanted not in frame.columns and wanted in lower:
            frame = frame.rename(columns={lower[wanted]: wanted})
    if TEXT_COLUMN not in frame.columns:
        raise TranscriptDataError(
            f"The {what} has no '{TEXT_COLUMN}' column (its columns: {', '.join(frame.columns[:20])}). "
            f"Fix: name the column holding the call text '{TEXT_COLUMN}'."
        )
    records = []
    for row in frame.to_dict(orient="records"):
        record: dict[str, Any] = {TEXT_COLUMN: row.pop(TEXT_COLUMN)}
        if LABEL_COLUMN in row:
            label = row.pop(LABEL_COLUMN)
            record[LABEL_COLUMN] = None if _blank(label) else label
        meta = {}
        embedded = row.pop("metadata", None)
        if isinstance(embedded, dict):
            meta.update(embedded)
        elif not _blank(embedded) and str(embedded).strip().startswith("{"):
            try:
                meta.update(json.loads(embedded))
            except json.JSONDecodeError:
                meta["metadata"] = embedded
        meta.update({k: (None if _blank(v) else v) for k, v in row.items()})
        record["metadata"] = meta
        records.append(record)
    return records


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _text_and_format(raw: bytes, name: str | None, max_bytes: int) -> tuple[str, str, str]:
    """``(text, format, label)`` of a raw file, refusing one over ``max_bytes`` or empty."""
    label = name or "the file"
    if len(raw) > max_bytes:
        raise TranscriptDataError(
            f"{label} is {_size(len(raw))}, more than the limit of {_size(max_bytes)}. Fix: split the file."
        )
    text = _decode(raw)
    if not text.strip():
        raise TranscriptDataError(f"{label} is empty. Fix: upload a file with transcript records.")
    return text, _detect_format(text, name), label


def check_transcripts(
    source: Any, filename: str | None = None, max_rows: int | None = None, max_bytes: int | None = None
) -> None:
    """Raise :class:`TranscriptDataError` when a transcripts file is empty, over :data:`MAX_BYTES`, or holds
    more than :data:`MAX_ROWS` records, counted before any table is built (JSON Lines and CSV by their
    lines, a JSON array element by element)."""
    max_rows = MAX_ROWS if max_rows is None else max_rows
    raw, name = _raw_bytes(source, filename)
    text, fmt, label = _text_and_format(raw, name, MAX_BYTES if max_bytes is None else max_bytes)
    if fmt == "json":
        _load_json(text, label, max_rows)
    elif fmt == "jsonl":
        _count_jsonl(text, label, max_rows)
    else:
        _count_csv(text, label, max_rows)


def read_transcript_records(source: Any, filename: str | None = None, max_rows: int | None = None) -> tuple[list, str]:
    """Parse the source into a list of raw records; returns ``(records, sha256 of the content)``.

    ``filename`` names the file in messages (pass the user's file name with bytes); files over
    :data:`MAX_BYTES` or ``max_rows`` records (default :data:`MAX_ROWS`) are refused before parsing."""
    max_rows = MAX_ROWS if max_rows is None else max_rows
    if isinstance(source, pd.DataFrame):
        text = source.to_json(orient="records", default_handler=str)
        return _frame_to_records(source), hashlib.sha256(text.encode()).hexdigest()
    if isinstance(source, list):
        text = json.dumps(source, sort_keys=True, default=str)
        return list(source), hashlib.sha256(text.encode()).hexdigest()
    raw, name = _raw_bytes(source, filename)
    digest = hashlib.sha256(raw).hexdigest()
    text, fmt, label = _text_and_format(raw, name, MAX_BYTES)
    parse = {"json": _parse_json, "jsonl": _parse_jsonl}.get(fmt, _parse_csv)
    return parse(text, label, max_rows), digest


# -- validation ----------------------------------------------------------------------------------
#: How deep a call's metadata may nest: ``{"customer": {"address": {"country": "DE"}}}`` is three levels.
MAX_METADATA_DEPTH = 3


def flatten_metadata(meta: dict, where: str = "metadata", prefix: str = "", depth: int = 1) -> dict:
    """The one rule for a call's metadata, in files and in the API's bodies alike: nested objects become dotted
    fields (``{"extra": {"region": "EU"}}`` -> ``extra.region``), a list of plain values becomes one text
    (``"a, b"``); deeper than :data:`MAX_METADATA_DEPTH` levels, or a list holding objects or lists, is refused
    naming the field."""
    out = {}
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth >= MAX_METADATA_DEPTH:
                raise TranscriptDataError(
                    f"{where} field '{name}' nests objects deeper than {MAX_METADATA_DEPTH} levels. "
                    "Fix: flatten it to fields of single values."
                )
            out.update(flatten_metadata(value, where, f"{name}.", depth + 1))
        elif isinstance(value, (list, tuple)):
            if any(isinstance(v, (dict, list, tuple)) for v in value):
                raise TranscriptDataError(
                    f"{where} field '{name}' is a list holding objects or lists. "
                    "Fix: give each detail its own field with one value."
                )
            out[name] = ", ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def _parse_label(value: Any, number: int) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value) in (0.0, 1.0):
        return int(value)
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in _LABEL_MAP:
        return _LABEL_MAP[text]
    raise TranscriptDataError(
        f"Record {number} has label {value!r}; labels must be 0 (not converted) or 1 (converted). "
        "Fix: map the outcome to 0/1, or leave the label out to score the call without training on it."
    )


def records_to_frame(records: list, max_rows: int | None = None) -> tuple[pd.DataFrame, list, list[str]]:
    """Validate raw records; returns ``(frame with transcript + metadata + label, ids, warnings)``."""
    rows, labels, ids, warnings = [], [], [], []
    max_rows = MAX_ROWS if max_rows is None else max_rows
    if len(records) > max_rows:
        raise TranscriptDataError(
            f"{len(records):,} records, more than the limit of {max_rows:,}. Fix: split the file."
        )
    for number, record in enumerate(records, start=1):
        if isinstance(record, str):
            record = {TEXT_COLUMN: record}
        if not isinstance(record, dict):
            raise TranscriptDataError(
                f"Record {number} is a {type(record).__name__}, not an object. "
                'Fix: each record must be {"transcript": "...", "label": 0 or 1, "metadata": {...}}.'
            )
        if TEXT_COLUMN not in record:
            raise TranscriptDataError(
                f"Record {number} has no '{TEXT_COLUMN}' field (its fields: {', '.join(map(str, record)) or 'none'}). "
                f"Fix: put the call text under the key '{TEXT_COLUMN}'."
            )
        text = record[TEXT_COLUMN]
        if text is None or (isinstance(text, float) and math.isnan(text)):
            text = ""
        if not isinstance(text, str):
            what = {list: "a list", tuple: "a list", dict: "an object", bool: "true/false"}.get(
                type(text), "a number" if isinstance(text, (int, float, np.number)) else f"a {type(text).__name__}"
            )
            raise TranscriptDataError(
                f"Record {number} has {what} in its '{TEXT_COLUMN}' field ({str(text)[:60]!r}), not text. "
                f"Fix: put the call text in '{TEXT_COLUMN}' as one string (join a list of turns into one text)."
            )
        if not text.strip():
            raise TranscriptDataError(
                f"Record {number} has an empty transcript. Fix: remove that record or fill in its call text."
            )
        meta = record.get("metadata") or {}
        if not isinstance(meta, dict):
            raise TranscriptDataError(
                f"Record {number} has 'metadata' that is not an object. "
                'Fix: make metadata a JSON object such as {"industry": "retail"}.'
            )
        extra = {k: v for k, v in record.items() if k not in (TEXT_COLUMN, LABEL_COLUMN, "metadata")}
        flat = flatten_metadata({**extra, **meta}, f"Record {number}'s metadata")
        flat = {(f"meta_{k}" if k in (TEXT_COLUMN, LABEL_COLUMN) else k): v for k, v in flat.items()}
        ids.append(flat.get("id", number - 1))
        rows.append({TEXT_COLUMN: text, **flat})
        labels.append(_parse_label(record.get(LABEL_COLUMN), number))
    if not rows:
        raise TranscriptDataError("No transcript records found. Fix: upload a file with at least one record.")
    frame = pd.DataFrame(rows)
    frame = frame[[TEXT_COLUMN] + [c for c in frame.columns if c != TEXT_COLUMN]]
    for column in frame.columns[1:]:
        frame[column] = _clean_metadata(frame[column])
        if frame[column].isna().all():
            frame = frame.drop(columns=column)
            warnings.append(f"metadata field '{column}' is empty in every record and was left out")
    frame[LABEL_COLUMN] = pd.array(labels, dtype="Int64")
    return frame, ids, warnings


def _clean_metadata(s: pd.Series) -> pd.Series:
    """Numbers -> float; everything else -> str with NaN for missing."""
    values = s.where(s.notna(), None)
    missing = values.map(lambda v: v is None or (isinstance(v, str) and not v.strip()))
    numbers = pd.to_numeric(values.where(~missing, None), errors="coerce")
    filled = int((~missing).sum())
    if (
        filled
        and int(numbers.notna().sum()) == filled
        and not values[~missing].map(lambda v: isinstance(v, bool)).any()
    ):
        return numbers.astype(float)
    return values.map(lambda v: np.nan if v is None or (isinstance(v, str) and not v.strip()) else str(v))


def load_transcripts(
    source: Any,
    filename: str | None = None,
    require_labels: bool = True,
    min_rows: int = MIN_ROWS,
    min_per_class: int = MIN_PER_CLASS,
    max_rows: int | None = None,
) -> TranscriptTable:
    """Read and validate transcripts.

    ``require_labels=True`` (training): every record needs a 0/1 label, both classes must be present,
    with at least ``min_rows`` records and ``min_per_class`` of each class.
    ``require_labels=False`` (scoring): labels are optional; ``y`` is ``None`` unless all are given.
    """
    records, digest = read_transcript_records(source, filename, max_rows)
    frame, ids, warnings = records_to_frame(records, max_rows)
    labels = frame[LABEL_COLUMN]
    n_missing = int(labels.isna().sum())
    if require_labels:
        if n_missing == len(frame):
            raise TranscriptDataError(
                'No record has a label, so there is nothing to train on. Fix: add "label": 1 (converted) or 0 '
                "(not converted) to each record; unlabelled calls can only be scored with a trained run."
            )
        if n_missing:
            first = int(np.flatnonzero(labels.isna().to_numpy())[0]) + 1
            raise TranscriptDataError(
                f"{n_missing} of {len(frame)} records have no label (the first is record {first}). "
                "Fix: label them 0 or 1, or remove them from the training file (score them later instead)."
            )
        y = labels.to_numpy(dtype=int)
        counts = np.bincount(y, minlength=2)
        if counts.min() == 0:
            only = int(np.argmax(counts))
            raise TranscriptDataError(
                f"All {len(y)} labelled records have label {only}: a model needs both outcomes to learn from. "
                f"Fix: add calls with label {1 - only}."
            )
        if len(y) < min_rows or counts.min() < min_per_class:
            raise TranscriptDataError(
                f"Too few examples to train: {len(y)} records ({counts[1]} converted, {counts[0]} not). "
                f"Need at least {min_rows} records and {min_per_class} of each class. Fix: add more labelled calls."
            )
    else:
        y = None if n_missing else labels.to_numpy(dtype=int)
        if n_missing and n_missing < len(frame):
            warnings.append(f"{n_missing} of {len(frame)} records have no label: they can be scored, not trained on")
    long = int((frame[TEXT_COLUMN].str.len() > 20_000).sum())
    if long:
        warnings.append(f"{long} transcripts are longer than 20,000 characters; they are split into chunks")
    X = frame.drop(columns=LABEL_COLUMN)
    return TranscriptTable(
        X=X, y=y, data_hash=digest, warnings=warnings, frame=frame, row_ids=np.asarray(ids, dtype=object)
    )


def write_jsonl(records: list[dict], path: str | Path) -> Path:
    """Write records as JSON Lines, atomically (used to refresh the committed demo file)."""
    return write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
