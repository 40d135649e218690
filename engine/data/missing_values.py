"""The ``missing_values`` setting of a lead table (``{column: [numbers read as missing]}``) and the one check of
it, :func:`check_missing_values`. Kept apart from :mod:`engine.data.leads` (which re-exports both) so that a
stored run's spec can be checked without importing NumPy or pandas (listing runs needs neither)."""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

#: What a cell holding text counts as missing, for every approach and every path in (files, data frames, the
#: API's bodies), compared after stripping: pandas' default "not available" strings exactly as ``read_csv`` reads
#: them (case matters: ``NA`` and ``None`` are missing in a CSV file, ``Na`` and ``none`` are values), so a JSON body,
#: a Parquet file or a frame built in code reads the same cells the same way a CSV file does.
MISSING_TOKENS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
#: Form placeholders that mean "not filled in", in any case (X Education's "Select").
PLACEHOLDERS = frozenset({"select"})


def is_missing_text(text: str) -> bool:
    """The one rule for a text cell: one of :data:`MISSING_TOKENS` as written, or a :data:`PLACEHOLDERS` word in
    any case, once stripped."""
    text = text.strip()
    return text in MISSING_TOKENS or text.casefold() in PLACEHOLDERS


class LeadDataError(ValueError):
    """The lead table cannot be used as given. The message says what is wrong and how to fix it."""


#: Values a column may have declared as missing (``missing_values``), and columns that may have some.
MAX_MISSING_VALUES = 5
MAX_MISSING_COLUMNS = 50
_MISSING_VALUES_HINT = 'missing_values is {"column": [number, ...]}, e.g. {"TotalVisits": [999]}'


def _is_bool(value: Any) -> bool:
    np = sys.modules.get("numpy")  # a NumPy bool can only turn up when NumPy is loaded
    return isinstance(value, bool) or (np is not None and isinstance(value, np.bool_))


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _finite_number(value: Any) -> bool:
    """A real number (not a bool) that is finite as a float (a 400-digit integer is not)."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def check_missing_values(setting: Any) -> dict[str, list[float]]:
    """The ``missing_values`` setting (``{column: [numbers]}``, ``None`` = none) checked and normalised: text
    column names, at most :data:`MAX_MISSING_VALUES` finite numbers a column (duplicates and empty lists
    dropped), at most :data:`MAX_MISSING_COLUMNS` columns. Raises :class:`LeadDataError` naming the problem."""
    if setting is None:
        return {}
    if not isinstance(setting, dict):
        raise LeadDataError(f"{_MISSING_VALUES_HINT}, not a {type(setting).__name__}. Fix: give it in that form.")
    if len(setting) > MAX_MISSING_COLUMNS:
        raise LeadDataError(
            f"missing_values names {len(setting)} columns, more than the limit of {MAX_MISSING_COLUMNS}. "
            "Fix: keep the columns whose codes matter, or clean the export."
        )
    out: dict[str, list[float]] = {}
    for column, values in setting.items():
        if not isinstance(column, str) or not column.strip():
            raise LeadDataError(f"missing_values has the column name {column!r}; {_MISSING_VALUES_HINT}.")
        if not isinstance(values, (list, tuple)):
            raise LeadDataError(
                f"missing_values[{column!r}] is {values!r}, not a list of numbers; {_MISSING_VALUES_HINT}."
            )
        bad = [v for v in values if not _finite_number(v)]
        if bad:
            raise LeadDataError(
                f"missing_values[{column!r}] holds {_short(bad[0])}, which is not a finite number. "
                f"Fix: give the numbers that stand for 'missing' as numbers ({_MISSING_VALUES_HINT})."
            )
        unique = list(dict.fromkeys(float(v) for v in values))
        if len(unique) > MAX_MISSING_VALUES:
            raise LeadDataError(
                f"missing_values[{column!r}] has {len(unique)} values, more than the limit of {MAX_MISSING_VALUES}. "
                "Fix: keep the codes that stand for 'missing' (999, -1...), or clean the export."
            )
        if unique:
            out[column] = unique
    return out
