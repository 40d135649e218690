"""Finding the outcome column and mapping its values to 0/1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from engine.data.leads.kinds import _clean_strings
from engine.data.leads.words import POSITIVE, TARGET_CANDIDATES, YES_NO, _norm
from engine.data.missing_values import (
    LeadDataError,
)


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
