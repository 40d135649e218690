"""Numbers that mean "missing" (999 for "never"): finding them, and reading them as missing with a flag."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from engine.data.leads.kinds import _as_number, _clean_column, _factorize
from engine.data.missing_values import flag_name, flags_of, number_text  # noqa: F401 - named there, without pandas


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
    Training (:func:`load_leads`) and scoring (:func:`prepare_features`) both go through it. ``missing_values`` is
    a checked setting (:data:`engine.data.missing_values.MissingValues`: checked where it entered)."""
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
