"""Outcomes back from the CRM: a file of lead ids and won/lost outcomes, read by one rule, kept in a
content-addressed store and matched by id to the scored lists stored earlier (:mod:`engine.scored_lists`).

* :func:`read_outcomes` reads the file (CSV, Excel, Parquet, through :func:`engine.data.leads.read_table` and its
  checks), finds the id, outcome and optional date columns, maps the outcome words with the project's one list of
  yes/no words (:data:`engine.data.leads.words.POSITIVE` / ``NEGATIVE``: yes/no, won/lost, 1/0, true/false...) and
  says which ids are repeated (with the same outcome: duplicates, kept once; with different ones: conflicting,
  left out).
* Ids are matched as text after trimming (:func:`id_key`); a cell a spreadsheet would run as a formula is never
  run nor written back as one: the store and every report hold it neutralised (:func:`engine.storage.neutralise_cell`,
  the rule of the CSV exports), and a stored list's neutralised cell matches the id it stands for.
* :class:`OutcomeStore` keeps each upload under ``<workspace>/outcomes/<sha256 of its outcomes>/`` (``outcomes.csv``
  and ``meta.json``, written atomically under a lock): the same outcomes uploaded twice are one entry, and nothing
  stored earlier is replaced. :meth:`OutcomeStore.known` is every stored outcome, one per id; an id whose uploads
  disagree is conflicting and left out.
* :func:`matched_lists` joins the known outcomes to each stored list on its id column.

The realized metrics, the run's promises and the words are :mod:`engine.outcomes_report`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import workspace
from engine.data.leads import read_table
from engine.data.leads.dates import parse_dates
from engine.data.leads.words import NEGATIVE, POSITIVE, TARGET_CANDIDATES, _norm
from engine.data.missing_values import LeadDataError
from engine.runs import RunStore
from engine.scored_lists import ScoredStore
from engine.scoring import identifier_columns
from engine.storage import FORMULA_PREFIXES, CorruptFile, locked, neutralise_cell, read_json, write_bytes, write_json

#: Id column names tried, in order, when none is given (after the id columns of the stored lists).
ID_CANDIDATES = ["prospect id", "lead id", "lead_id", "leadid", "lead number", "id", "record id", "crm id"]
#: Outcome column names tried before the target names (:data:`engine.data.leads.words.TARGET_CANDIDATES`).
OUTCOME_CANDIDATES = ["converted", "outcome", "won", "result", "status", "stage", "closed won", "won/lost"]
DATE_CANDIDATES = ["close date", "closed date", "closed", "close_date", "closed_at", "outcome date", "date"]
#: How many example ids a report names.
EXAMPLES = 5


class OutcomeError(ValueError):
    """An outcomes file that cannot be used as given; the message names the problem and the fix."""


def id_key(text: Any) -> str:
    """The text an id is matched by: trimmed, and a stored list's neutralised formula cell (``'=1+1``) read back as
    the id it stands for (``=1+1``)."""
    return str(_keys(pd.Series([text], dtype=object))[0])


def _keys(values: pd.Series) -> pd.Series:
    """:func:`id_key` of a whole column (1,000,000 ids in well under a second): numbers as integers where they are
    whole (``660737.0`` is the id ``660737``), blanks as ``""``."""
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(str)
    elif pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
        whole = numbers.notna() & np.isfinite(numbers) & (numbers == np.round(numbers))
        text = values.astype(str)
        text[whole] = numbers[whole].astype("int64").astype(str)
        text[numbers.isna()] = ""
        values = text
    keys = values.astype("string").fillna("").str.strip()
    quoted = keys.str.match(r"^'\s*[=+\-@\t\r]")
    if quoted.any():
        keys[quoted] = keys[quoted].str[1:].str.strip()
    whole = keys.str.match(r"^-?\d+\.0+$")  # a whole number written by a spreadsheet as 660737.0
    if whole.any():
        keys[whole] = keys[whole].str.replace(r"\.0+$", "", regex=True)
    return keys.astype(object)


def safe_ids(ids) -> list[str]:
    """Ids as a report shows them: formula-like ones neutralised, long ones cut."""
    return [neutralise_cell(str(i)[:80]) for i in ids]


def _outcome_key(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(value)
    key = " ".join(str(value).split()).casefold()
    return {"1.0": "1", "0.0": "0", "+1": "1", "-0": "0", "select": ""}.get(key, key)


def _outcome_keys(values: pd.Series) -> pd.Series:
    """Outcome cells as the keys of the yes/no word lists (case-folded, spaces collapsed, ``1.0`` as ``1``); blanks
    as ``""``. Each distinct value is read once (a million rows hold a handful)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = np.array([_outcome_key(v) for v in uniques] + [""], dtype=object)
    return pd.Series(keys[codes], index=values.index, dtype=object)


def _column_list(columns, limit: int = 30) -> str:
    shown = ", ".join(repr(str(c)) for c in list(columns)[:limit])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def _find(columns: list[str], given: str | None, candidates: list[str], what: str, flag: str) -> str | None:
    """The column named ``given`` (exactly, or case- and space-insensitively), or the first of ``candidates``."""
    by_key: dict[str, str] = {}
    for c in columns:
        by_key.setdefault(_norm(c), c)
    if given is not None and str(given).strip():
        if str(given) in columns:
            return str(given)
        if _norm(given) in by_key:
            return by_key[_norm(given)]
        raise OutcomeError(
            f"the {what} column {str(given)[:80]!r} is not in the file. The columns are: {_column_list(columns)}. "
            f"Fix: name one of them with {flag}."
        )
    for cand in candidates:
        if _norm(cand) in by_key:
            return by_key[_norm(cand)]
    return None


@dataclass
class OutcomeFile:
    """An outcomes file read: one row per usable id (``id``: the key, ``outcome`` 0/1, ``date`` text or ""), and
    what was left out or repeated."""

    frame: pd.DataFrame
    source: str
    id_column: str
    outcome_column: str
    date_column: str | None
    rows: int
    blank_ids: int = 0
    no_outcome: int = 0
    duplicates: list[str] = field(default_factory=list)  # ids repeated with the same outcome (kept once)
    conflicting: list[str] = field(default_factory=list)  # ids repeated with different outcomes (left out)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "rows": int(self.rows),
            "ids": int(len(self.frame)),
            "id_column": self.id_column,
            "outcome_column": self.outcome_column,
            "date_column": self.date_column,
            "converted": int(self.frame["outcome"].sum()),
            "blank_ids": int(self.blank_ids),
            "no_outcome": int(self.no_outcome),
            "duplicates": len(self.duplicates),
            "duplicate_examples": safe_ids(self.duplicates[:EXAMPLES]),
            "conflicting": len(self.conflicting),
            "conflicting_examples": safe_ids(self.conflicting[:EXAMPLES]),
        }


def read_outcomes(
    source,
    filename: str | None = None,
    id_column: str | None = None,
    outcome_column: str | None = None,
    date_column: str | None = None,
    id_hints: list[str] | tuple[str, ...] = (),
) -> OutcomeFile:
    """Read an outcomes file (a path, bytes or a file-like upload). ``id_hints``: the id columns of the stored lists,
    tried first when ``id_column`` is not given. :class:`OutcomeError` (a ValueError) naming the problem and the fix
    for a file that cannot be used: empty, binary, no id or outcome column (the message names the columns it has),
    outcome words that are not won/lost, no usable row."""
    try:
        raw = read_table(source, filename=filename)
    except LeadDataError as exc:
        raise OutcomeError(str(exc).replace("lead table", "outcomes file")) from None
    label = filename or (Path(source).name if isinstance(source, (str, Path)) else "the outcomes file")
    columns = [str(c) for c in raw.columns]
    if not len(raw):
        raise OutcomeError(f"{label} has a header but no rows. Fix: export the outcomes again, one lead a row.")
    idc = _find(columns, id_column, [*id_hints, *ID_CANDIDATES], "id", "--id")
    if idc is None:
        raise OutcomeError(
            f"{label} has no lead id column that the scored lists know. The columns are: {_column_list(columns)}. "
            "Fix: name the column holding the lead ids with --id COLUMN (on the Monitoring page: the id column)."
        )
    outc = _find(columns, outcome_column, OUTCOME_CANDIDATES, "outcome", "--outcome")
    if outc is None:
        outc = _find([c for c in columns if c != idc], None, TARGET_CANDIDATES, "outcome", "--outcome")
    if outc is None or outc == idc:
        raise OutcomeError(
            f"{label} has no outcome column (won/lost, yes/no, 1/0). The columns are: {_column_list(columns)}. "
            "Fix: name it with --outcome COLUMN."
        )
    datec = _find(columns, date_column, DATE_CANDIDATES, "date", "--date")
    if datec in (idc, outc):
        datec = None
    return _outcome_rows(raw, label, idc, outc, datec)


def _outcome_rows(raw: pd.DataFrame, label: str, idc: str, outc: str, datec: str | None) -> OutcomeFile:
    ids = _keys(raw[idc])
    words = _outcome_keys(raw[outc])
    known = set(POSITIVE) | set(NEGATIVE)
    unknown = words[(words != "") & ~words.isin(known)]
    if len(unknown):
        counts = raw[outc][unknown.index].astype(str).str.strip().value_counts()
        shown = ", ".join(f"{neutralise_cell(v[:40])!r} ({n:,} rows)" for v, n in counts.head(6).items())
        raise OutcomeError(
            f"the outcome column {outc!r} of {label} has values that are not a won/lost outcome: {shown}. Fix: "
            "leave open leads blank or out, and write each outcome as won/lost, yes/no, converted/not converted "
            "or 1/0."
        )
    outcome = words.isin(POSITIVE).astype(np.int8)
    dates = pd.Series("", index=raw.index, dtype=object)
    if datec is not None:
        parsed = pd.to_datetime(raw[datec], errors="coerce", format="mixed")
        dates = parsed.dt.strftime("%Y-%m-%d").fillna("").astype(object)
    usable = (ids != "") & (words != "")
    frame = pd.DataFrame({"id": ids[usable], "outcome": outcome[usable], "date": dates[usable]})
    if frame.empty:
        raise OutcomeError(
            f"{label} has no row with both a lead id (in {idc!r}) and an outcome (in {outc!r}). Fix: fill them in, "
            "or name other columns with --id / --outcome."
        )
    per_id = frame.groupby("id", sort=False)["outcome"].agg(["min", "max", "size"])
    conflicting = per_id.index[per_id["min"] != per_id["max"]]
    duplicates = per_id.index[(per_id["size"] > 1) & (per_id["min"] == per_id["max"])]
    frame = frame[~frame["id"].isin(conflicting)].drop_duplicates("id", keep="last")
    return OutcomeFile(
        frame=frame.sort_values("id", kind="mergesort").reset_index(drop=True),
        source=label,
        id_column=idc,
        outcome_column=outc,
        date_column=datec,
        rows=int(len(raw)),
        blank_ids=int((ids == "").sum()),
        no_outcome=int(((ids != "") & (words == "")).sum()),
        duplicates=[str(i) for i in duplicates],
        conflicting=[str(i) for i in conflicting],
    )


def _stored_bytes(frame: pd.DataFrame) -> bytes:
    """The outcomes as stored (and hashed), as a CSV export: ids a spreadsheet would run as formulas neutralised by the
    exports' rule (:func:`engine.storage.neutralise_cell`; found first with one pattern of its prefixes, so that a
    million ids take a second); outcomes are 0/1 and dates ``YYYY-MM-DD``."""
    ids = frame["id"].astype(object)
    risky = ids.astype("string").str.match(r"^\s*[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
    if risky.any():
        risky = risky.to_numpy(dtype=bool)
        ids = ids.copy()
        ids[risky] = ids[risky].map(neutralise_cell)
    out = pd.DataFrame({"id": ids, "outcome": frame["outcome"].astype(int), "date": frame["date"]})
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def _read_stored(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(frame.columns) != ["id", "outcome", "date"] or not frame["outcome"].isin(["0", "1"]).all():
        raise CorruptFile(path, "outcomes.csv is not an outcomes file this version wrote")
    return pd.DataFrame({"id": _keys(frame["id"]), "outcome": frame["outcome"].astype(np.int8), "date": frame["date"]})


class OutcomeStore:
    """Uploaded outcomes under ``<workspace>/outcomes/<sha256 of the stored outcomes>/``: ``outcomes.csv`` (id, outcome
    0/1, date) and ``meta.json`` (source, time, counts). Content-addressed: the same outcomes twice are one entry; a
    different upload never replaces another."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else workspace() / "outcomes"
        self.root.mkdir(parents=True, exist_ok=True)
        self.problems: dict[str, str] = {}

    def add(self, outcomes: OutcomeFile) -> tuple[dict, bool]:
        """Store ``outcomes``; ``(meta, added)``: ``added`` is False when the same outcomes were stored before (then
        nothing is written)."""
        import hashlib
        import time

        data = _stored_bytes(outcomes.frame)
        sha = hashlib.sha256(data).hexdigest()
        folder = self.root / sha
        with locked(folder / "meta.json"):
            if (folder / "meta.json").exists():
                return read_json(folder / "meta.json", dict), False
            write_bytes(folder / "outcomes.csv", data)
            meta = {"sha256": sha, "created": time.time(), **outcomes.summary()}
            write_json(folder / "meta.json", meta)
        return meta, True

    def list(self) -> list[dict]:
        """Stored uploads, oldest first; damaged ones are skipped and named in :attr:`problems`."""
        found, self.problems = [], {}
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or not re.fullmatch(r"[0-9a-f]{64}", folder.name):
                continue
            if not (folder / "meta.json").exists():
                continue  # being written
            try:
                meta = read_json(folder / "meta.json", dict)
                if meta.get("sha256") != folder.name or not isinstance(meta.get("created"), (int, float)):
                    raise CorruptFile(folder / "meta.json", "meta.json names another upload or has no time")
                if not (folder / "outcomes.csv").is_file():
                    raise CorruptFile(folder / "outcomes.csv", "outcomes.csv is missing")
            except CorruptFile as exc:
                self.problems[folder.name] = exc.problem
                continue
            found.append(meta)
        return sorted(found, key=lambda m: m["created"])

    def known(self) -> tuple[pd.DataFrame, list[str]]:
        """Every stored outcome, one row per id (``id``, ``outcome``, ``date``), and the ids whose uploads disagree
        (conflicting: left out). A damaged upload is skipped and named in :attr:`problems`."""
        parts = []
        for meta in self.list():
            path = self.root / meta["sha256"] / "outcomes.csv"
            try:
                parts.append(_read_stored(path))
            except (CorruptFile, OSError, ValueError) as exc:
                self.problems[meta["sha256"]] = getattr(exc, "problem", str(exc))
        if not parts:
            return pd.DataFrame({"id": [], "outcome": [], "date": []}).astype({"outcome": np.int8}), []
        every = pd.concat(parts, ignore_index=True)
        spread = every.groupby("id", sort=False)["outcome"].agg(["min", "max"])
        conflicting = spread.index[spread["min"] != spread["max"]]
        known = every[~every["id"].isin(conflicting)].drop_duplicates("id", keep="last").reset_index(drop=True)
        return known, [str(i) for i in conflicting]


# -- matching to the scored lists ---------------------------------------------------------------------------------
def _score_column(columns: list[str], name: str) -> str | None:
    """The list's own ``probability`` / ``score`` / ``tier`` column (named ``probability (model)`` when the scored
    file had a column of that name)."""
    found = [c for c in columns if re.fullmatch(re.escape(name) + r"( \(model\))*", c)]
    return max(found, key=len) if found else None


def list_id_columns(meta: dict, columns: list[str]) -> list[str]:
    """The id columns of a stored list: those its meta names (lists stored since they are recorded), else the
    identifier columns of its run (when still stored)."""
    named = meta.get("id_columns")
    if isinstance(named, list) and named:
        return [c for c in named if isinstance(c, str) and c in columns]
    try:
        return identifier_columns(RunStore().get(str(meta.get("run_id"))), columns)
    except (KeyError, ValueError):
        return []


@dataclass
class MatchedList:
    """One stored list's matched leads: ``rows`` holds ``id``, ``probability``, ``score``, ``tier``, ``outcome``."""

    meta: dict
    id_column: str | None
    rows: pd.DataFrame
    list_ids: int


def _lead_weeks(table: pd.DataFrame, date_columns) -> pd.Series | None:
    """The ISO week (``2026-W03``) of each lead by the first of ``date_columns`` the list has (the leads' own
    dates, such as a creation date), None where a cell is not a date; None when the list has no such column."""
    for column in date_columns or ():
        if column not in table.columns:
            continue
        try:
            when = parse_dates(table[column].replace("", None), str(column))
        except ValueError:  # a column mixing day-first and month-first dates: not read
            continue
        iso = when.dt.isocalendar()
        weeks = iso["year"].astype("string") + "-W" + iso["week"].astype("string").str.zfill(2)
        return weeks.astype(object).where(when.notna(), None)
    return None


def read_list(store, meta: dict, date_columns=()) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """A stored list as ``probability``, ``score``, ``tier`` (one row per lead) and ``lead_week`` (the week of
    each lead's own date, by the first of ``date_columns`` the list has; None without), and the keys
    (:func:`id_key`) of each of its id columns; no id column (the scored file had none): an empty mapping, it
    cannot be matched."""
    path = store.path(meta["sha256"])
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = [str(c) for c in table.columns]
    ids = list_id_columns(meta, columns)
    prob = _score_column(columns, "probability")
    if not ids or prob is None:
        return pd.DataFrame(), {}
    score, tier = _score_column(columns, "score"), _score_column(columns, "tier")
    frame = pd.DataFrame(
        {
            "probability": pd.to_numeric(table[prob], errors="coerce"),
            "score": pd.to_numeric(table[score], errors="coerce") if score else np.nan,
            "tier": table[tier].replace("", None) if tier else None,
        }
    )
    weeks = _lead_weeks(table, date_columns)
    frame["lead_week"] = weeks.to_numpy() if weeks is not None else None
    return frame, {c: _keys(table[c]) for c in ids}


def _by(frame: pd.DataFrame, keys: pd.Series) -> pd.DataFrame:
    """``frame`` keyed by ``keys``: leads without an id or a probability left out, a repeated id once (its first,
    best-ranked row)."""
    out = frame.assign(id=keys.to_numpy())
    return out[(out["id"] != "") & out["probability"].notna()].drop_duplicates("id", keep="first")


def matched_lists(known: pd.DataFrame, store=None, date_columns_of=None) -> tuple[list[MatchedList], dict[str, str]]:
    """Each stored list (newest first) joined to the ``known`` outcomes on the id column of the list that matches
    most of them; and the lists that cannot be matched (no id column, damaged) with why. ``date_columns_of(meta)``
    names a list's date columns (its run's), whose weeks the rows carry as ``lead_week``."""
    store = store if store is not None else ScoredStore()
    out, skipped = [], {}
    metas = store.list()
    skipped.update(store.problems)
    outcomes = known[["id", "outcome", "date"]]
    for meta in metas:
        try:
            frame, keys = read_list(store, meta, date_columns_of(meta) if date_columns_of else ())
        except (KeyError, OSError, ValueError, CorruptFile) as exc:
            skipped[meta["sha256"]] = f"cannot be read ({exc})"
            continue
        if not keys:
            skipped[meta["sha256"]] = "it has no lead id column (the scored file had none), so outcomes cannot match it"
            continue
        best = None
        for column, values in keys.items():
            table = _by(frame, values)
            rows = table.merge(outcomes, on="id", how="inner", validate="one_to_one")
            if best is None or len(rows) > len(best[2]):
                best = (column, table, rows)
        column, table, rows = best
        out.append(MatchedList(meta=meta, id_column=column, rows=rows.reset_index(drop=True), list_ids=len(table)))
    return out, skipped


def all_list_ids(store=None) -> set[str]:
    """Every id of every stored list, in any of its id columns (what an upload's ids are matched against)."""
    store = store if store is not None else ScoredStore()
    ids: set[str] = set()
    for meta in store.list():
        try:
            _, keys = read_list(store, meta)
        except (KeyError, OSError, ValueError):
            continue
        for values in keys.values():
            ids.update(values[values != ""].tolist())
    return ids


def id_hints(store=None) -> list[str]:
    """The id column names the stored lists use, most used first (what an outcomes file's id column is looked for
    as when none is named)."""
    from collections import Counter

    store = store if store is not None else ScoredStore()
    counts: Counter[str] = Counter()
    for meta in store.list():
        for name in meta.get("id_columns") or []:
            if isinstance(name, str):
                counts[name] += 1
    return [name for name, _ in counts.most_common()]
