"""Cleaning cells (missing tokens, numbers in text) and one kind per column."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from engine.data.leads.dates import looks_like_dates
from engine.data.leads.words import YES_NO
from engine.data.missing_values import is_missing_text
from engine.words import plural

KINDS = ("numeric", "binary", "categorical", "high_cardinality", "identifier", "text", "date")


#: A text column with more distinct values than this is ``high_cardinality``.
#: (The X Education ``Country`` column, 38 values, stays a plain categorical.)
HIGH_CARDINALITY_MIN = 50


NUMERIC_SHARE = 0.9


#: Free text (notes, call transcripts) against a many-level category (cities, job titles) and an id: a cell is
#: *prose* when it has at least TEXT_MIN_WORDS words and TEXT_MIN_MEAN_LEN characters (or TEXT_MIN_CJK Chinese,
#: Japanese or Korean characters, written without spaces). A column is ``text`` when at least TEXT_MIN_SHARE of
#: its filled cells are prose and at least TEXT_MIN_DISTINCT of those differ from each other (a note is written
#: once; a long category level repeats). Short notes repeated often ("called, no answer") do not stop a column
#: from being text; short labels never make one. Chosen on the tables of tests/data/test_text_kinds.py (notes of
#: varied length, mostly-short notes, mostly-empty notes, two-speaker transcripts, 300-level city and job-title
#: columns, ids, emails, URLs, product descriptions that repeat), not on one export.
TEXT_MIN_MEAN_LEN = 30
TEXT_MIN_WORDS = 5
TEXT_MIN_CJK = 15
TEXT_MIN_SHARE = 0.1
TEXT_MIN_DISTINCT = 0.5
#: Distinct long values a column's text test splits into words (a fixed sample beyond): the same cost on a million
#: rows.
TEXT_SAMPLE = 20_000

#: An id's shape: a digit, an email, a web address, or a long run of letters and digits without spaces. A column
#: of distinct plain words (cities, surnames) is a many-level category, not an id.
_ID_SHAPE = re.compile(r"\d|@|://|^www\.|^[A-Za-z0-9_\-+/=]{16,}$")
_PHONE = r"[+(]?\d[\d\s().\-/]{6,}"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
#: A column whose values are at least this share distinct and id-shaped is an identifier even with a few repeats
#: (the same lead exported twice, an email used by two leads).
ID_MIN_UNIQUE = 0.9


_ID_NAME = re.compile(
    r"(^|[\s_\-.])(id|ids|uuid|guid|key|number|no|nr|num|code)$|^id[\s_\-]|^(id|uuid|guid)$", re.IGNORECASE
)


_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")
#: Thousands separated by commas, as CRMs export amounts ("1,200", "15,000", "1,250,000.50"): groups of exactly
#: three digits after a first group that does not start with 0 ("0,125" and "3,5" are decimal commas).
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")


def _as_number(text: str) -> float | None:
    """float of a cell's text, or None. Accepts thousands separated by commas ("1,200" is 1200, "1,250,000.5") and
    a decimal comma ("3,5", "999,0", "0,125")."""
    try:
        value = float(text)
    except ValueError:
        if _THOUSANDS.fullmatch(text):
            value = float(text.replace(",", ""))
        elif not _DECIMAL_COMMA.fullmatch(text):
            return None
        else:
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
    missing = np.array([is_missing_text(t) for t in texts], dtype=bool)
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
            warnings.append(f"{col}: {plural(bad, 'non-numeric value')} read as missing")
    return pd.DataFrame(out, index=index), warnings


def _clean_strings(s: pd.Series) -> pd.Series:
    """Text cleaned as in _clean_column but never turned numeric (used for the target)."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        s = s.astype(str).where(s.notna())
    codes, uniques = _factorize(s)
    texts = [str(u).strip() for u in uniques]
    table = np.array([np.nan if is_missing_text(t) else t for t in texts] + [np.nan], dtype=object)
    return pd.Series(table[np.where(codes >= 0, codes, len(texts))], index=s.index, name=s.name, dtype="str")


def _prose_stats(counts: pd.Series) -> tuple[float, float, int]:
    """(share of cells that are prose, share of those that are distinct, distinct prose values) of a column, from
    its distinct values and their counts (``value_counts``): see :data:`TEXT_MIN_WORDS`. Only the values long
    enough to be prose are split into words, at most :data:`TEXT_SAMPLE` of them (a fixed sample beyond: the share
    found there stands for the rest), so a column of short labels costs one length per distinct value."""
    values = counts.index.astype(str)
    cells = counts.to_numpy()
    long_enough = np.flatnonzero(values.str.len().to_numpy() >= TEXT_MIN_MEAN_LEN)
    if len(long_enough) < 2:
        return 0.0, 0.0, 0
    read = long_enough
    if len(read) > TEXT_SAMPLE:
        read = np.sort(np.random.default_rng(0).choice(long_enough, TEXT_SAMPLE, replace=False))
    prose = np.array(
        [
            len(value.split(None, TEXT_MIN_WORDS)) >= TEXT_MIN_WORDS or len(_CJK.findall(value[:2000])) >= TEXT_MIN_CJK
            for value in values[read].tolist()
        ],
        dtype=bool,
    )
    scale = len(long_enough) / len(read)  # the sample stands for every long value
    n_prose = float(cells[read[prose]].sum()) * scale
    distinct = int(round(prose.sum() * scale))
    return n_prose / max(int(cells.sum()), 1), distinct / max(n_prose, 1.0), distinct


def _id_shaped(text: pd.Series) -> float:
    """Share of a column's distinct values (up to :data:`TEXT_SAMPLE`) shaped like an id (:data:`_ID_SHAPE`)."""
    values = pd.unique(text.to_numpy())[:TEXT_SAMPLE]
    return float(np.mean([bool(_ID_SHAPE.search(str(v)[:200])) for v in values])) if len(values) else 0.0


def _kind(s: pd.Series, name: str) -> str:
    filled = s.dropna()
    n = len(filled)
    if n == 0:
        return "empty"
    counts = filled.value_counts(sort=False)
    nunique = len(counts)
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
    if looks_like_dates(filled):  # a creation date: never a category (engine.data.leads.dates)
        return "date"
    text = filled.astype(str)
    if nunique <= 2 and (nunique == 2 or text.str.casefold().isin(YES_NO).all()):
        return "binary"
    prose_share, prose_distinct, n_distinct = _prose_stats(counts)
    if prose_share >= TEXT_MIN_SHARE and prose_distinct >= TEXT_MIN_DISTINCT and n_distinct >= 2:
        return "text"
    unique_share = nunique / n
    if unique_share >= ID_MIN_UNIQUE and (n >= 20 or id_name):
        spaced = text.str.contains(r"\s", regex=True).mean()
        phones = spaced >= 0.1 and text.str.fullmatch(_PHONE).mean() >= 0.9  # "+1 555 0100": spaced, still an id
        if (spaced < 0.1 or phones) and (id_name or _id_shaped(text) >= 0.9):
            return "identifier"
    if id_name and all_unique and n >= 2:
        return "identifier"
    if nunique > HIGH_CARDINALITY_MIN:
        return "high_cardinality"
    return "categorical"


def infer_kinds(df: pd.DataFrame) -> dict[str, str]:
    """Kind of every column: numeric | binary | categorical | high_cardinality | identifier | text | date.

    The frame is cleaned first the way :func:`load_leads` cleans it ('Select' and blanks missing,
    mostly-numeric text numeric), so a raw :func:`read_table` frame can be passed. A column with no
    value at all is ``empty``.
    """
    clean, _ = _clean_frame(df.copy(deep=False))  # a shallow copy: the caller's frame keeps its columns
    return {str(col): _kind(clean[col], str(col)) for col in clean.columns}


def kinds_given_else_inferred(df: pd.DataFrame, given: dict[str, str] | None = None) -> dict[str, str]:
    """Kind of every column of ``df`` (keys ``str(column)``): as ``given`` says (the training table's kinds, the
    user's included), else as :func:`infer_kinds` reads it. Only the columns ``given`` leaves out are inferred."""
    given = {str(c): str(k) for c, k in (given or {}).items()}
    rest = [c for c in df.columns if str(c) not in given]
    inferred = infer_kinds(df[rest]) if rest else {}
    return {str(c): given[str(c)] if str(c) in given else inferred[str(c)] for c in df.columns}
