"""What-if: one lead, edited field by field and rescored by every lead run of a dataset.

The What-if page draws the form and the cards; what it shows comes from here:

* :func:`form_fields` and :func:`field_options`: the fields a person types (a run's columns, not the 0/1 flag
  columns made from its numbers read as missing), each a number (with the median) or a choice of values;
* :func:`typical_lead`: the lead the form starts from, the most common value of each category and the median of
  each number, over the dataset's leads or, when the file is gone, over the training leads' stored profile;
* :func:`file_values`: a real lead as the file held it (a code read as missing shows as the code, not blank);
* :func:`lead_frame` and :func:`lead_probability`: the edited lead shaped as one run saw its training rows (runs
  of one dataset may have different columns and numbers read as missing) and that run's P(convert) of it.

``settings`` is a run's checked spec (``run.settings``, :class:`engine.runspec.RunSpec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Number
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.data.leads import prepare_features
from engine.scoring import ScoringError, check_finite

if TYPE_CHECKING:
    from engine.runs import Run
    from engine.runspec import RunSpec

#: How the form names a missing value among a field's choices (read as missing, like None and "").
MISSING = "(missing)"
#: Values of a field offered as choices: the most common ones.
MAX_CHOICES = 60


def is_blank(value: Any) -> bool:
    """Whether a field's value is missing: None, NaN, the form's :data:`MISSING` or empty text."""
    if value is None or (isinstance(value, str) and value in ("", MISSING)):
        return True
    return not isinstance(value, str) and bool(np.all(pd.isna(value)))


def is_numeric(settings: RunSpec, column: str, series: pd.Series | None = None) -> bool:
    """Whether ``column`` is a number: its kind says so, or (a column without a kind) its values are numbers."""
    kind = settings.kinds.get(column)
    if kind == "numeric":
        return True
    return series is not None and kind is None and pd.api.types.is_numeric_dtype(series)


def form_fields(settings: RunSpec) -> list[str]:
    """The columns a person types, in the run's order: a flag column is made from its column's value, not typed."""
    flags = settings.flags
    return [column for column in settings.columns if column not in flags]


def field_options(settings: RunSpec, X: pd.DataFrame | None = None, profile: dict | None = None) -> dict[str, dict]:
    """Per column, ``{"median": m}`` for a number, ``{"text": True}`` for free text (typed in a text area) or
    ``{"values": [...]}`` (the :data:`MAX_CHOICES` most common) for the rest: over the dataset's leads ``X``, else over the training leads' stored ``profile``
    (:func:`engine.scoring.load_training_profile`; no values and a median of 0 without one)."""
    out: dict[str, dict] = {}
    if X is not None:
        for column in X.columns:
            s = X[column]
            if is_numeric(settings, column, s):
                out[column] = {"median": float(s.median()) if s.notna().any() else 0.0}
            elif settings.kinds.get(column) == "text":
                out[column] = {"text": True}  # free text (notes, a call): typed, never chosen from a list
            else:
                out[column] = {"values": s.dropna().astype(str).value_counts().index[:MAX_CHOICES].tolist()}
        return out
    profiled = (profile or {}).get("columns") or {}
    for column in settings.columns:
        if is_numeric(settings, column):
            out[column] = {"median": 0.0}
        elif settings.kinds.get(column) == "text":
            out[column] = {"text": True}
        else:
            out[column] = {"values": list((profiled.get(column) or {}).get("categories") or {})[:MAX_CHOICES]}
    return out


def is_number_field(settings: RunSpec, column: str, options: dict[str, dict]) -> bool:
    """Whether the form asks a number for ``column`` (its kind, or a median among its :func:`field_options`)."""
    return is_numeric(settings, column) or "median" in options.get(column, {})


def typical_lead(settings: RunSpec, X: pd.DataFrame | None = None, profile: dict | None = None) -> dict[str, Any]:
    """The most common value of each category and the median of each number, over the dataset's leads ``X`` (or,
    when the file is not in the store, over the training leads' stored ``profile``). A number missing for most
    leads starts missing, as most leads are: its code read as unknown when the run has one (pdays = 999 where 96 %
    of leads carry it), else blank; the median of the few filled ones would be an untypical lead. A whole-number
    column's median is rounded (a count of visits is not 2.5)."""
    out: dict[str, Any] = {}
    coded = {column: (flag, code) for flag, (column, code) in settings.flags.items()}
    profiled = (profile or {}).get("columns") or {}
    rows = (profile or {}).get("rows") or 0
    for column in settings.columns:
        flag, code = coded.get(column, (None, None))
        if X is not None and column in X.columns:
            s = X[column].dropna()
            numeric = is_numeric(settings, column, X[column])
            if flag is not None and flag in X.columns and float((X[flag] == 1).mean()) > 0.5:
                out[column] = code
            elif s.empty or (numeric and float(X[column].isna().mean()) > 0.5):
                out[column] = None
            elif numeric:
                median = float(s.median())
                whole = np.all(np.mod(s.to_numpy(dtype=float), 1) == 0)
                out[column] = float(round(median)) if whole else median
            else:
                out[column] = s.astype(str).value_counts().index[0]
            continue
        entry = profiled.get(column) or {}
        flag_quantiles = (profiled.get(flag) or {}).get("quantiles") if flag is not None else None
        if flag_quantiles and flag_quantiles[5] == 1:  # the flag's median: at least half the leads carry the code
            out[column] = code
        elif is_numeric(settings, column) and rows and entry.get("missing", 0) > rows / 2:
            out[column] = None
        elif entry.get("quantiles") and is_numeric(settings, column):
            out[column] = float(entry["quantiles"][5])
        elif entry.get("categories"):
            out[column] = max(entry["categories"], key=entry["categories"].get)
        else:
            out[column] = None
    return out


def file_values(settings: RunSpec, row: pd.Series) -> dict[str, Any]:
    """The form's fields of ``row`` (a lead of the run's training frame) as the file held them: a number the run
    read as missing shows as that number (its flag is set), not as a blank."""
    out = {column: row[column] if column in row.index else None for column in form_fields(settings)}
    for flag, (column, code) in settings.flags.items():
        if column in out and flag in row.index and row[flag] == 1:
            out[column] = code
    return out


def form_values(settings: RunSpec, given: Mapping[str, Any], options: dict[str, dict]) -> dict[str, Any]:
    """``given`` as the form holds each field: None when blank, a float for a number field, else text."""
    out = {}
    for column in form_fields(settings):
        value = given.get(column)
        if is_blank(value):
            out[column] = None
        elif is_number_field(settings, column, options):
            out[column] = float(value)
        else:
            out[column] = str(value)
    return out


def lead_frame(settings: RunSpec, given: Mapping[str, Any]) -> pd.DataFrame:
    """One lead (``{field: value}``; blank values are missing, fields the run does not use are ignored) shaped
    exactly as the run of ``settings`` saw its training rows: its columns, kinds and numbers read as missing, with
    their flags made. Numbers given as text are read as numbers; text that is no number, and infinities, are
    missing in a number column. Raises TypeError for anything but a mapping and ValueError naming a field whose
    value is not one value."""
    if not isinstance(given, Mapping):
        raise TypeError(
            f"A what-if lead is a mapping of field -> value, not {type(given).__name__}; e.g. {{'TotalVisits': 3}}"
        )
    row = {}
    for column, value in given.items():
        if not (value is None or isinstance(value, (str, Number, np.generic))):
            raise ValueError(
                f"Field {str(column)[:80]!r} of the lead holds {type(value).__name__}, not one value. Fix: give a "
                "number or a text (blank for missing)."
            )
        row[str(column)] = np.nan if is_blank(value) else value
    return prepare_features(pd.DataFrame([row]), settings.columns, settings.kinds, settings.missing_values)


def lead_probability(run: Run, model, lead: pd.DataFrame | Mapping[str, Any]) -> float:
    """``run``'s P(convert) of one lead (a :func:`lead_frame`, or the fields to shape into one) with its fitted
    ``model``; :class:`engine.scoring.ScoringError` when the model gives no finite probability."""
    frame = lead if isinstance(lead, pd.DataFrame) else lead_frame(run.settings, lead)
    if len(frame) != 1:
        raise ScoringError(f"A what-if lead is one row, not {len(frame)}. Fix: pass one lead.")
    return float(check_finite(run, np.asarray(model.predict_proba(frame))[:, 1])[0])
