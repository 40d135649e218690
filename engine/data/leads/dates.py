"""Date columns: which text columns hold dates (the ``date`` kind) and reading them as times.

A lead table's creation date is read as the ``date`` kind, not as a category: a date is never one-hot or
target encoded as a feature (its values in next month's leads are all new, and a model that learnt
"leads of 12 March convert" learnt nothing it can use). :func:`engine.data.leads.load_leads` keeps the date
columns beside the features (``LeadTable.dates``) and out of them; a run records them as dropped, and the
time split (``--split time --time-column COL``) orders the rows by one of them.

Forms read (a column's filled values, at least :data:`DATE_SHARE` of them, must have one of these):

* ISO 8601: ``2024-03-05``, ``2024-03-05 14:30``, ``2024-03-05T14:30:00Z``, ``2024-03-05T14:30+01:00``,
  ``2024/03/05``;
* numbers with ``/``, ``.`` or ``-``: ``05/03/2024``, ``3.5.24``, ``05-03-2024`` (with an optional time);
* month names: ``5 Mar 2024``, ``05-Mar-2024``, ``March 5, 2024``.

Day and month order of the numeric form is decided per column: a first number above 12 in any row means
day first, a second number above 12 month first; a column that has both is refused (it mixes two orders),
one where every date reads both ways is read month first (pandas' rule, said in the error a wrong reading
is likely to cause: dates in the future). Times with an offset are converted to UTC; every time is then
kept without a zone.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from engine.data.missing_values import LeadDataError

#: Share of a column's filled values that must look like dates for it to be read as the ``date`` kind.
DATE_SHARE = 0.95

_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?: ?[AaPp][Mm])?)?"
_ZONE = r"(?: ?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_ISO = re.compile(rf"^\d{{4}}[-/]\d{{1,2}}[-/]\d{{1,2}}{_TIME}{_ZONE}$")
_NUMERIC = re.compile(rf"^(\d{{1,2}})[/.-](\d{{1,2}})[/.-](\d{{2}}|\d{{4}}){_TIME}{_ZONE}$")
_WORDS = re.compile(
    rf"^(?:\d{{1,2}}[ -]{_MONTH}[ -,]*\d{{2,4}}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}){_TIME}{_ZONE}$",
    re.IGNORECASE,
)


def _form(text: str) -> str | None:
    if _ISO.match(text):
        return "iso"
    found = _NUMERIC.match(text)
    if found:  # a day and a month in either order (12-34-0001 is a code, not a date)
        first, second = int(found.group(1)), int(found.group(2))
        return "numeric" if 1 <= min(first, second) <= 12 and max(first, second) <= 31 else None
    if _WORDS.match(text):
        return "words"
    return None


def looks_like_dates(s: pd.Series) -> bool:
    """Whether a cleaned, non-numeric column holds dates: at least :data:`DATE_SHARE` of its filled values in
    one of the forms of the module docstring (datetime columns of Parquet or Excel always do)."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return bool(s.notna().any())
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return False
    filled = s.dropna().astype(str).str.strip()
    if filled.empty or sum(_form(t) is not None for t in filled.iloc[:50]) < 25:  # a quick no for most columns
        return False
    counts = filled.value_counts()
    dated = np.array([_form(t) is not None for t in counts.index])
    return bool(counts.to_numpy()[dated].sum() >= DATE_SHARE * counts.sum())


def _day_first(texts: list[str], column: str) -> bool:
    firsts, seconds = [], []
    for text in texts:
        found = _NUMERIC.match(text)
        if found:
            firsts.append(int(found.group(1)))
            seconds.append(int(found.group(2)))
    day_first = any(v > 12 for v in firsts)
    month_first = any(v > 12 for v in seconds)
    if day_first and month_first:
        raise LeadDataError(
            f"the date column {column!r} mixes day/month and month/day order (it has both "
            f"{next(t for t in texts if (m := _NUMERIC.match(t)) and int(m.group(1)) > 12)!r} and "
            f"{next(t for t in texts if (m := _NUMERIC.match(t)) and int(m.group(2)) > 12)!r}). Fix: export the "
            "dates in one format, ideally ISO (2024-03-05)."
        )
    return day_first


def parse_dates(s: pd.Series, column: str) -> pd.Series:
    """The column's values as times (``datetime64[s]``, no zone; UTC where an offset was given), NaT where a
    cell is missing or not a date in any of the forms read. Each distinct text is parsed once."""
    if pd.api.types.is_datetime64_any_dtype(s):
        when = pd.to_datetime(s, utc=True) if getattr(s.dt, "tz", None) is not None else s
        return pd.Series(when.dt.tz_localize(None) if getattr(when.dt, "tz", None) else when, index=s.index)
    codes, uniques = pd.factorize(s.astype(object).where(s.notna()), use_na_sentinel=True)
    uniques = [str(u).strip() for u in uniques]
    day_first = _day_first(uniques, column)
    parsed = np.full(len(uniques) + 1, np.datetime64("NaT"), dtype="datetime64[s]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, value in enumerate(uniques):
            form = _form(value)
            if form is None:
                continue
            try:
                when = pd.to_datetime(
                    value,
                    utc=True,
                    dayfirst=day_first and form == "numeric",
                    format="ISO8601" if form == "iso" else None,
                )
            except (ValueError, OverflowError):
                try:  # a slash in an ISO date (2024/03/05) is not ISO 8601 proper
                    when = pd.to_datetime(value.replace("/", "-"), utc=True, format="ISO8601")
                except (ValueError, OverflowError):
                    continue
            if not pd.isna(when):
                parsed[i] = np.datetime64(when.tz_convert(None).to_datetime64(), "s")
    return pd.Series(parsed[np.where(codes >= 0, codes, len(uniques))], index=s.index, name=s.name)


def time_column_values(raw: pd.Series, column: str, kinds: dict[str, str], *, now: pd.Timestamp | None = None):
    """The time column's values (``datetime64[s]``) for the time split, checked: every row has a date that
    parses, not all the same, none in the future. ``raw`` is the column cleaned (blanks and 'Select'
    missing); ``kinds`` are the table's columns' kinds (for the error that names the date columns). Raises
    :class:`LeadDataError` naming the column, the count and the fix."""
    if not looks_like_dates(raw):
        dates = [c for c, k in kinds.items() if k == "date"]
        raise LeadDataError(
            f"--time-column {column!r} is not a date column (it is read as {kinds.get(column, 'another kind')}). "
            + (
                f"Fix: choose one of the table's date columns: {', '.join(map(repr, dates))}."
                if dates
                else "The table has no date column; use the stratified split (--split stratified)."
            )
        )
    when = parse_dates(raw, column)
    bad = when.isna().to_numpy()
    if bad.any():
        texts = raw[bad].dropna().astype(str).str.strip()
        texts = texts[texts != ""]
        example = f" (e.g. {texts.iloc[0]!r})" if len(texts) else ""
        raise LeadDataError(
            f"--time-column {column!r}: {int(bad.sum()):,} of {len(bad):,} rows have no date or one that does not "
            f"read as a date{example}. Fix: fill in those dates or remove those rows, or use the stratified split."
        )
    latest = when.max()
    now = pd.Timestamp.now(tz="UTC").tz_convert(None) if now is None else now
    future = (when > now + pd.Timedelta(days=1)).to_numpy()
    if future.any():
        raise LeadDataError(
            f"--time-column {column!r}: {int(future.sum()):,} rows are dated in the future (the latest "
            f"{latest:%Y-%m-%d}). A creation date cannot be later than today: check the export's date format (day "
            "and month order) or fix those rows."
        )
    if when.nunique() < 2:
        raise LeadDataError(
            f"--time-column {column!r} has the same date in every row ({latest:%Y-%m-%d}), so there is no newer part "
            "to test on. Fix: choose a column with the leads' creation dates, or use the stratified split."
        )
    return when.to_numpy(dtype="datetime64[s]")
