"""The ``missing_values`` setting of a lead table (``{column: [numbers read as missing]}``), its one check
(:func:`check_missing_values`) and its pydantic type, :data:`MissingValues`, which runs the check where the setting
enters: a stored run's spec (:class:`engine.runspec.RunSpec`), a training request (:class:`engine.jobspec.
TrainSpec`), a dataset's stored settings (:mod:`engine.datasets`) and :func:`engine.pipeline.train_leads`, through
:func:`parse_missing_values` where the holder is not a pydantic model. Every layer below (reading the table,
reading codes as missing, scoring) takes the checked value as it is. Kept apart from :mod:`engine.data.leads`
(which re-exports it) so that a stored run's spec can be checked without importing NumPy or pandas (listing runs
needs neither); the flag columns a setting makes are named here for the same reason (:func:`flags_of`)."""

from __future__ import annotations

import math
import numbers
import sys
from typing import Annotated, Any

from pydantic import BeforeValidator, TypeAdapter, ValidationError

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


#: The setting as a pydantic type: checked and normalised by :func:`check_missing_values` when a model holding it
#: is validated (a damaged setting: a validation error carrying the :class:`LeadDataError`'s message).
MissingValues = Annotated[dict[str, list[float]], BeforeValidator(check_missing_values)]
_MISSING_VALUES = TypeAdapter(MissingValues)


def parse_missing_values(setting: Any) -> dict[str, list[float]]:
    """``setting`` validated as :data:`MissingValues`, for holders that are not pydantic models (a training
    request, a dataset's settings, :func:`engine.pipeline.train_leads`): the checked value, or the
    :class:`LeadDataError` that names the problem and the fix."""
    try:
        return _MISSING_VALUES.validate_python(setting)
    except ValidationError as exc:
        error = (exc.errors(include_url=False)[0].get("ctx") or {}).get("error")
        if isinstance(error, LeadDataError):
            raise error from None
        raise LeadDataError(f"{_MISSING_VALUES_HINT}. Fix: give it in that form.") from None


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
