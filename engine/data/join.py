"""Join a lead table with a transcripts file on a lead id: each lead's calls become one text column.

:func:`join_leads_calls` reads a lead table (:func:`engine.data.leads.read_table`: a path, bytes, file-like or
DataFrame) and call records (:func:`engine.data.transcripts.read_transcript_records`: the seed format
``{"transcript", "label", "metadata": {...}}`` as JSON, JSON Lines or CSV, or a list of records) and returns the
lead table with one more column (``call`` unless named otherwise) and a :class:`JoinReport`.

The rules:

* **The id.** A call's lead id is ``metadata.lead_id`` unless another field is named (``metadata.x.y`` for a
  nested one; a top-level field of the record or a CSV column of that name works too). The lead table's id column
  is the one named, or, when none is, the column whose values match the most call ids among the usual id names
  (``Prospect ID``, ``Lead ID``, ``Lead Number``, ``id``...; then every column). Ids are matched as text after
  trimming, whole numbers as integers (``660737.0`` is ``660737``), as :mod:`engine.outcomes` matches them.
* **Several calls of one lead** are joined into one text in time order: by the call's date/time field
  (``call_time``, ``time``, ``date``... or the one named; unreadable times go last), then in file order. Calls are
  separated by a blank line.
* **What does not match** is counted, never guessed: leads without calls (their text is empty, read as missing),
  calls whose id no lead has, calls and leads without an id, with a few example ids (formula-like ids neutralised
  for display).
* **Duplicate ids in the lead table** are refused (the calls of such an id could belong to either row), naming
  examples and the fix (deduplicate, or choose another id column).
* **Limits**: the inputs' own (:data:`engine.data.leads.reading.MAX_ROWS` rows, :data:`engine.data.transcripts.
  MAX_ROWS` records). Everything after reading is vectorised pandas: 1,000,000 leads against 1,000,000 calls take
  seconds (``tests/data/test_join.py`` measures it).

Nothing here writes: the CLI (``python -m engine join``) and the Data page store the result as a new dataset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.outcomes import EXAMPLES, ID_CANDIDATES, _keys, safe_ids

#: The call's field holding its lead's id, by default.
DEFAULT_CALL_ID = "metadata.lead_id"
#: The name of the text column the calls become, by default.
DEFAULT_TEXT_COLUMN = "call"
#: Call fields tried, in order, for the time that orders several calls of one lead.
TIME_CANDIDATES = ["call_time", "time", "datetime", "timestamp", "date", "call_date", "started_at", "start_time"]
#: What separates two calls of one lead in the joined text.
CALL_SEPARATOR = "\n\n"
#: How an error's fix names the join's inputs, by default the CLI's flags (``python -m engine join``); the Data page
#: passes its own fields' labels as ``fields=`` to :func:`join_leads_calls`.
CLI_FIELDS = {"lead_id": "--id COLUMN", "call_id": "--call-id metadata.FIELD", "text_column": "--text-column NAME"}
#: The dataset setting a stored join records: ``{"leads": sha256, "calls": sha256}`` of its two inputs' bytes.
JOINED_FROM = "joined_from"
#: How the note of a stored join begins (joins stored before :data:`JOINED_FROM` was recorded are known by it).
JOIN_NOTE_PREFIX = "Joined with calls: "


class JoinError(ValueError):
    """A join that cannot be made as asked; the message names the problem and the fix."""


def is_join_output(meta: dict) -> bool:
    """Whether a stored dataset's ``meta`` is a join's output: it records :data:`JOINED_FROM`, or (stored before
    that was recorded) its note is the join's."""
    notes = meta.get("notes")
    return bool(meta.get(JOINED_FROM)) or (isinstance(notes, str) and notes.startswith(JOIN_NOTE_PREFIX))


@dataclass
class JoinReport:
    """What a join did, in counts (and a few example ids)."""

    lead_id_column: str
    call_id_field: str
    time_field: str | None
    text_column: str
    leads: int
    calls: int
    leads_with_calls: int
    leads_without_calls: int
    calls_joined: int
    calls_without_leads: int
    leads_without_id: int
    calls_without_id: int
    most_calls_per_lead: int
    examples_leads_without_calls: list[str] = field(default_factory=list)
    examples_calls_without_leads: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report in words, one line each (the CLI prints them, the Data page shows them)."""
        out = [
            f"{self.leads:,} leads (id column {self.lead_id_column!r}) and {self.calls:,} calls (id field "
            f"{self.call_id_field!r}) -> text column {self.text_column!r}; several calls of a lead in "
            + (f"order of {self.time_field!r}, then file order" if self.time_field else "file order"),
            f"{self.leads_with_calls:,} leads have calls ({self.calls_joined:,} calls joined; at most "
            f"{self.most_calls_per_lead} for one lead)",
            f"{self.leads_without_calls:,} leads have no call (their {self.text_column!r} is empty)"
            + (f", e.g. {', '.join(self.examples_leads_without_calls)}" if self.examples_leads_without_calls else ""),
            f"{self.calls_without_leads:,} calls name a lead id the table does not have (left out)"
            + (f", e.g. {', '.join(self.examples_calls_without_leads)}" if self.examples_calls_without_leads else ""),
        ]
        if self.leads_without_id:
            out.append(f"{self.leads_without_id:,} leads have no id (no call can be theirs)")
        if self.calls_without_id:
            out.append(f"{self.calls_without_id:,} calls have no lead id (left out)")
        return out


@dataclass
class JoinResult:
    frame: pd.DataFrame
    report: JoinReport


def _path_of(field_name: str) -> list[str]:
    """``metadata.lead_id`` -> ``["metadata", "lead_id"]``; a bare ``lead_id`` is looked up in the metadata too."""
    if not isinstance(field_name, str) or not field_name.strip():
        raise JoinError("the calls' id field must be a field name such as 'metadata.lead_id'. Fix: name the field.")
    parts = [p.strip() for p in field_name.strip().split(".")]
    if any(not p for p in parts):
        raise JoinError(f"the calls' id field {field_name!r} has an empty part. Fix: write it as 'metadata.lead_id'.")
    return parts


def _lookup(record: dict, parts: list[str]) -> Any:
    """The value at ``parts`` in a record: ``metadata.x`` in its metadata, a bare name in the record or its
    metadata (a CSV file's columns are the record's own fields)."""
    if parts[0] == "metadata" and len(parts) > 1:
        candidates = [parts[1:], parts]
    else:
        candidates = [parts, ["metadata", *parts]]
    for path in candidates:
        value: Any = record
        for part in path:
            if not isinstance(value, dict) or part not in value:
                value = None
                break
            value = value[part]
        if value is not None:
            return value
    if len(parts) > 1 and ".".join(parts) in record:  # a CSV column named "metadata.lead_id"
        return record[".".join(parts)]
    return None


def _values(records: list, parts: list[str]) -> list:
    """:func:`_lookup` of every record, quickly: the metadata's field read in one pass (a million calls in well under
    a second), the full rule only for the records where that finds nothing."""
    inner = parts[1:] if parts[0] == "metadata" and len(parts) > 1 else parts
    out = []
    for record in records:
        value = record.get("metadata")
        for part in inner:
            value = value.get(part) if isinstance(value, dict) else None
        out.append(value)
    for i, value in enumerate(out):
        if value is None:
            out[i] = _lookup(records[i], parts)
    return out


def _call_frame(
    records: list, id_parts: list[str], time_field: str | None, id_field: str, fields: dict[str, str]
) -> tuple[pd.DataFrame, str | None]:
    """The calls as a frame of ``key`` (the id as matched), ``text``, ``time`` and ``order`` (file order), and the
    time field used. Each record is checked for the shape the seed format has; a fix names ``fields``."""
    bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise JoinError(
            f"call record {bad + 1} is a {type(records[bad]).__name__}, not an object. "
            'Fix: each call is {"transcript": "...", "metadata": {"lead_id": ...}}.'
        )
    texts = pd.Series([r.get("transcript") for r in records], dtype=object)
    not_text = texts.map(lambda t: not isinstance(t, str))
    if not_text.any():
        i = int(np.flatnonzero(not_text.to_numpy())[0])
        raise JoinError(
            f"call record {i + 1} has no text in its 'transcript' field ({str(texts[i])[:40]!r}). "
            "Fix: put each call's text in 'transcript' as one string."
        )
    ids = pd.Series(_values(records, id_parts), dtype=object)
    nested = ids.map(lambda v: isinstance(v, (dict, list, tuple, bool)))
    if nested.any():
        i = int(np.flatnonzero(nested.to_numpy())[0])
        what = "true/false" if isinstance(ids[i], bool) else "an object" if isinstance(ids[i], dict) else "a list"
        raise JoinError(
            f"call record {i + 1} has {what} {str(ids[i])[:40]!r} as its lead id ({id_field!r}), "
            "not an id. Fix: give each call its lead's id as text or a whole number, or name another field "
            f"({fields['call_id']})."
        )
    if ids.isna().all():
        raise JoinError(
            f"no call has a lead id in {id_field!r}. Fix: add the lead's id to each call's metadata "
            '({"metadata": {"lead_id": "..."}}) or name the field that holds it '
            f"({fields['call_id']})."
        )
    if time_field is None:
        time_field = next(
            (f for f in TIME_CANDIDATES if any(_lookup(r, [f]) is not None for r in records[:1000])), None
        )
    if time_field is not None:
        raw = pd.Series(_values(records, _path_of(time_field)), dtype=object)
        if raw.isna().all():
            raise JoinError(f"no call has a time in {time_field!r}. Fix: name the calls' date field, or leave it out.")
        text = raw.astype(str).where(raw.notna())
        times = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        if times.isna().sum() > raw.isna().sum():  # not all ISO 8601: each read as it is written (slower)
            times = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    else:
        times = pd.Series(pd.NaT, index=ids.index, dtype="datetime64[ns, UTC]")
    frame = pd.DataFrame({"key": _keys(ids), "text": texts, "time": times, "order": np.arange(len(records))})
    return frame, time_field


def _find_id_column(leads: pd.DataFrame, call_keys: pd.Series, fields: dict[str, str]) -> str:
    """The lead column whose ids match the most calls: the usual id names first, then every column."""
    wanted = set(call_keys[call_keys != ""].unique())
    by_name = {str(c).strip().casefold(): c for c in leads.columns}
    named = [by_name[n] for n in ID_CANDIDATES if n in by_name]
    named += [c for c in leads.columns if "id" in str(c).casefold().split() and c not in named]
    for group in (named, [c for c in leads.columns if c not in named]):
        matches = {c: int(_keys(leads[c]).isin(wanted).sum()) for c in group}
        best = max(matches, key=matches.get, default=None)
        if best is not None and matches[best] > 0:
            return str(best)
    raise JoinError(
        "no column of the lead table holds the calls' lead ids "
        f"(e.g. {', '.join(safe_ids(list(wanted)[:3]))}). Fix: name the lead table's id column "
        f"({fields['lead_id']}), or the calls' id field ({fields['call_id']})."
    )


def join_leads_calls(
    leads: Any,
    calls: Any,
    *,
    lead_id: str | None = None,
    call_id: str = DEFAULT_CALL_ID,
    time_field: str | None = None,
    text_column: str = DEFAULT_TEXT_COLUMN,
    leads_filename: str | None = None,
    calls_filename: str | None = None,
    fields: dict[str, str] | None = None,
) -> JoinResult:
    """The lead table with its calls as one text column, and what the join did; see the module doc. An error's fix
    names the inputs as ``fields`` says (keys of :data:`CLI_FIELDS`; by default the CLI's flags)."""
    from engine.data.leads import read_table  # heavy: the lead readers
    from engine.data.transcripts import read_transcript_records

    fields = {**CLI_FIELDS, **(fields or {})}
    if not isinstance(text_column, str) or not text_column.strip():
        raise JoinError(f"the text column needs a name. Fix: give it a name such as 'call' ({fields['text_column']}).")
    text_column = text_column.strip()
    try:
        table = read_table(leads, filename=leads_filename)
    except ValueError as exc:
        raise JoinError(f"the lead table cannot be read: {exc}") from None
    if table.empty or not len(table.columns):
        raise JoinError("the lead table has no rows. Fix: choose the file that holds your leads.")
    if text_column in table.columns:
        raise JoinError(
            f"the lead table already has a column {text_column!r}. Fix: name the calls' column another way "
            f"({fields['text_column']})."
        )
    try:
        records = calls if isinstance(calls, list) else read_transcript_records(calls, calls_filename)[0]
    except ValueError as exc:
        raise JoinError(f"the calls cannot be read: {exc}") from None
    if not records:
        raise JoinError("the calls file has no records. Fix: choose the transcripts file that holds the calls.")
    calls_frame, time_field = _call_frame(records, _path_of(call_id), time_field, call_id, fields)
    if lead_id is None:
        lead_id = _find_id_column(table, calls_frame["key"], fields)
    elif lead_id not in table.columns:
        shown = ", ".join(map(repr, list(table.columns)[:12]))
        raise JoinError(
            f"the lead table has no column {lead_id!r} (its columns: {shown}). Fix: name one of them "
            f"({fields['lead_id']})."
        )
    lead_keys = _keys(table[lead_id])
    filled = lead_keys != ""
    dup = lead_keys[filled].duplicated(keep=False)
    if dup.any():
        examples = safe_ids(lead_keys[filled][dup].unique()[:EXAMPLES])
        raise JoinError(
            f"{int(dup.sum()):,} rows of the lead table share an id in {lead_id!r} (e.g. {', '.join(examples)}): "
            "their calls could belong to either row. Fix: remove the duplicate leads, or join on a column with "
            f"one row per lead ({fields['lead_id']})."
        )
    has_id = calls_frame["key"] != ""
    known = calls_frame["key"].isin(set(lead_keys[filled]))
    matched = calls_frame[has_id & known].sort_values(["key", "time", "order"], kind="stable", na_position="last")
    keys = matched["key"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(keys)]
    calls_text = matched["text"].tolist()  # sorted by lead, then time: each lead's calls are one slice
    texts = pd.Series(
        [calls_text[a] if b - a == 1 else CALL_SEPARATOR.join(calls_text[a:b]) for a, b in zip(starts, ends)],
        index=keys[starts],
        dtype=object,
    )
    out = table.copy()
    out[text_column] = lead_keys.map(texts).where(filled, None).to_numpy(dtype=object)
    with_calls = out[text_column].notna()
    most = int((ends - starts).max()) if len(starts) else 0
    unmatched = calls_frame.loc[has_id & ~known, "key"]
    report = JoinReport(
        lead_id_column=str(lead_id),
        call_id_field=call_id,
        time_field=time_field,
        text_column=text_column,
        leads=int(len(out)),
        calls=int(len(calls_frame)),
        leads_with_calls=int(with_calls.sum()),
        leads_without_calls=int((~with_calls).sum()),
        calls_joined=int(len(matched)),
        calls_without_leads=int(len(unmatched)),
        leads_without_id=int((~filled).sum()),
        calls_without_id=int((~has_id).sum()),
        most_calls_per_lead=most,
        examples_leads_without_calls=safe_ids(lead_keys[filled & ~with_calls.to_numpy()].head(EXAMPLES)),
        examples_calls_without_leads=safe_ids(pd.unique(unmatched)[:EXAMPLES]),
    )
    return JoinResult(out, report)
