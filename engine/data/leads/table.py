"""The table: load_leads (read, clean, target, leak policy, kinds) and prepare_features for new rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.data.column_kinds import SETTABLE_KINDS, parse_kinds
from engine.data.leads import reading
from engine.data.leads.codes import flag_name, treat_missing
from engine.data.leads.dates import time_column_values
from engine.data.leads.kinds import _as_number, _clean_frame, _clean_strings, _kind
from engine.data.leads.policy import _as_list, _check_policy, describe_policy
from engine.data.leads.reading import _read
from engine.data.leads.target import _column_list, find_target, map_target
from engine.data.leads.words import _norm
from engine.data.missing_values import LeadDataError, is_missing_text
from engine.words import plural


@dataclass
class LeadTable:
    """A lead table ready for training: features, 0/1 target and what was done to get there."""

    X: pd.DataFrame
    y: np.ndarray
    target: str
    kinds: dict[str, str]
    excluded: list[str]
    dropped: dict[str, str]
    policy: str
    warnings: list[str]
    data_hash: str
    row_ids: np.ndarray
    source_name: str | None = None
    n_rows_read: int = 0
    include: list[str] = field(default_factory=list)
    missing_values: dict[str, list[float]] = field(default_factory=dict)
    #: the date columns (cleaned text), one row per row of X: never features (engine.data.leads.dates)
    dates: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the time column's values (datetime64) when ``load_leads`` was asked for one (the time split)
    time_column: str | None = None
    times: np.ndarray | None = None
    #: the kinds the user set (``load_leads(kinds=...)``) that were applied, ``{column: kind}``; the rest inferred
    kinds_set: dict[str, str] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float:
        return float(np.mean(self.y)) if len(self.y) else float("nan")

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for run specs and the dashboard."""
        return {
            "source": self.source_name,
            "rows": int(len(self.y)),
            "rows_read": int(self.n_rows_read),
            "features": list(self.X.columns),
            "target": self.target,
            "conversion_rate": self.conversion_rate,
            "policy": self.policy,
            "excluded": list(self.excluded),
            "included": list(self.include),
            "dropped": dict(self.dropped),
            "kinds": dict(self.kinds),
            "warnings": list(self.warnings),
            "data_hash": self.data_hash,
            "missing_values": dict(self.missing_values),
            "dates": list(self.dates.columns),
            "kinds_set": dict(self.kinds_set),
        }


def load_leads(
    source: Any,
    target: str | None = None,
    leak_policy: str = "default",
    exclude: Any = None,
    include: Any = None,
    max_rows: int | None = None,
    max_cols: int | None = None,
    filename: str | None = None,
    missing_values: dict[str, list[float]] | None = None,
    time_column: str | None = None,
    kinds: dict[str, str] | None = None,
) -> LeadTable:
    """Read and validate a lead table; see the module docstring for the rules.

    ``source``: path, bytes, file-like or DataFrame. ``target``: the outcome column (default:
    ``Converted`` or a common name such as target/label/won). ``leak_policy``: ``default`` | ``none`` |
    ``strict``; ``exclude`` adds columns to leave out, ``include`` puts preset-excluded columns back.
    ``max_rows`` / ``max_cols`` (default :data:`reading.MAX_ROWS`, :data:`reading.MAX_COLS`) are checked before the file is
    parsed. ``filename`` names the file in messages (see :func:`read_table`). ``missing_values``
    (``{column: [numbers]}``, see :func:`treat_missing`): codes of numeric columns read as missing, each with
    a 0/1 flag column; the ones applied are in ``LeadTable.missing_values``. It is a checked setting
    (:data:`engine.data.missing_values.MissingValues`: a run's spec, a training request, a dataset's settings and
    :func:`engine.pipeline.train_leads` check it where it enters). Date columns (the ``date`` kind) are never
    features: they are kept apart in ``LeadTable.dates``. ``time_column`` (the time split's column) must be one
    of them; its checked values are ``LeadTable.times`` (:func:`dates.time_column_values`). ``kinds``
    (``{column: kind}``, :func:`engine.data.column_kinds.parse_kinds`): kinds the user set over the inferred ones
    (``text``, ``categorical``, ``high_cardinality``, ``identifier``); the ones applied are ``LeadTable.kinds_set``.
    Raises :class:`LeadDataError` for unusable input.
    """
    policy = _check_policy(leak_policy)
    missing_values = dict(missing_values or {})
    wanted = parse_kinds(kinds)
    max_rows = reading.MAX_ROWS if max_rows is None else max_rows
    max_cols = reading.MAX_COLS if max_cols is None else max_cols
    df, data_hash, name = _read(source, filename, max_rows, max_cols)
    label = name or "the table"
    if df.shape[1] == 0:
        raise LeadDataError(f"{label} has no columns. Export the lead table with its header row.")
    if len(df) == 0:
        raise LeadDataError(
            f"{label} has a header but no rows ({df.shape[1]} columns, 0 leads). Export the "
            "table again with its data rows."
        )
    if len(df) > max_rows:
        raise LeadDataError(
            f"{label} has {len(df):,} rows, more than the limit of {max_rows:,}. Load a sample "
            "or a shorter period, or raise max_rows."
        )
    if df.shape[1] > max_cols:
        raise LeadDataError(
            f"{label} has {df.shape[1]:,} columns, more than the limit of {max_cols:,}. Remove "
            "columns that are not lead attributes, or raise max_cols."
        )

    target_col = find_target(df.columns, target)
    n_read = len(df)
    row_ids = np.asarray(df.index)
    warnings: list[str] = []
    y_all, mask = map_target(df[target_col], target_col)
    if not mask.any():
        raise LeadDataError(
            f"target column {target_col!r} has no values. Fill in the outcome (1/0) of each lead, "
            "or choose another target column."
        )
    if not mask.all():
        n_missing = int((~mask).sum())
        warnings.append(f"{target_col}: {plural(n_missing, 'row')} without a target value left out")
        df = df.loc[mask]
        row_ids = row_ids[mask]
    y = y_all.astype(int)
    classes = np.unique(y)
    if len(classes) < 2:
        only = "converted" if classes[0] == 1 else "not converted"
        raise LeadDataError(
            f"target column {target_col!r} has a single class: every one of the {len(y):,} leads "
            f"is {only}. Training needs both converted and not-converted leads; add leads of the "
            "other outcome or choose another target column."
        )

    all_columns = list(df.columns)
    feature_columns = [c for c in all_columns if c != target_col]
    excluded = describe_policy(feature_columns, policy, exclude, include)
    known = {_norm(c) for c in feature_columns}
    for missing in [c for c in _as_list(exclude) + _as_list(include) if _norm(c) not in known]:
        if _norm(missing) != _norm(target_col):
            warnings.append(f"leak policy: column {missing!r} is not in the table; ignored")
    left_out = set(excluded)
    # a time column the leak policy leaves out still orders the rows (it is never a feature anyway)
    raw_left_out = {c: df[c].copy() for c in left_out if time_column is not None and _norm(c) == _norm(time_column)}
    # column by column, each raw column released once cleaned (df is this function's own frame)
    clean, num_warnings = _clean_frame(df, [c for c in feature_columns if c not in left_out])
    del df
    warnings.extend(num_warnings)
    missing_values = _applicable(missing_values, clean, all_columns, target_col, label, warnings)
    clean = treat_missing(clean, missing_values)
    wanted = _settable(wanted, clean, all_columns, target_col, label, warnings)
    dropped: dict[str, str] = {}
    kinds: dict[str, str] = {}
    dates: dict[str, pd.Series] = {}
    for col in clean.columns:
        s = clean[col]
        kind = _kind(s, col)
        if col in wanted and kind != "empty":
            if kind in ("numeric", "binary") and pd.api.types.is_numeric_dtype(s) and wanted[col] != "identifier":
                raise LeadDataError(
                    f"column {col!r} holds numbers (read as {kind}); it can be set to identifier only, not "
                    f"{wanted[col]}. Fix: remove its kind from the setting (--kind / the Data page), or set it to "
                    "identifier to leave it out of training."
                )
            kind = wanted[col]
        if kind == "identifier" and col in wanted:
            dropped[col] = "identifier (set by the user)"
        elif kind == "date":
            dates[col] = s.reset_index(drop=True)
        elif kind == "empty":
            dropped[col] = "every value missing"
            warnings.append(f"{col}: every value is missing; column dropped")
        elif kind == "identifier":
            dropped[col] = "identifier (a different value in every row)"
        elif s.nunique(dropna=True) == 1 and s.notna().all():
            dropped[col] = f"constant (every value is {s.iloc[0]!r})"
        else:
            kinds[col] = kind
    X = clean[[c for c in clean.columns if c in kinds]].reset_index(drop=True)
    times = None
    if time_column is not None:
        time_column = _time_column_name(time_column, all_columns, target_col, list(dates))
        if time_column in dates:
            raw = dates[time_column]
        elif time_column in raw_left_out:
            raw = _clean_strings(raw_left_out[time_column]).reset_index(drop=True)
        else:
            raw = clean[time_column].reset_index(drop=True)
        every_kind = {**kinds, **{c: "date" for c in dates}, **{c: why.split(" (")[0] for c, why in dropped.items()}}
        times = time_column_values(raw, time_column, every_kind)
    if X.shape[1] == 0:
        reasons = [f"{c}: {r}" for c, r in dropped.items()]
        detail = "; ".join(reasons[:10]) or "no columns besides the target"
        if len(reasons) > 10:
            detail += f"; and {len(reasons) - 10:,} more columns"
        raise LeadDataError(
            f"{label} has no usable feature columns after the leak policy {policy!r} "
            f"({detail}). Add lead attributes to the table, or relax the policy "
            "(leak_policy='none' or include=[...])."
        )
    return LeadTable(
        X=X,
        y=y,
        target=target_col,
        kinds=kinds,
        excluded=excluded,
        dropped=dropped,
        policy=policy,
        warnings=warnings,
        data_hash=data_hash,
        row_ids=row_ids,
        source_name=name,
        n_rows_read=n_read,
        include=_as_list(include),
        missing_values=missing_values,
        dates=pd.DataFrame(dates, index=X.index),
        time_column=time_column,
        times=times,
        kinds_set={c: k for c, k in wanted.items() if c in kinds or dropped.get(c, "").endswith("set by the user)")},
    )


def _settable(wanted: dict[str, str], clean: pd.DataFrame, columns, target: str, label: str, warnings: list):
    """The user's ``kinds`` keyed by the table's own spelling of each column; a column that is not in the table or
    is the outcome is refused (LeadDataError naming the columns), one the leak policy left out skipped with a
    warning."""
    by_key = {_norm(c): c for c in columns}
    out = {}
    for col, kind in wanted.items():
        name = col if col in columns else by_key.get(_norm(col))
        if name is None:
            raise LeadDataError(
                f"the column kinds name {col!r}, which is not a column of {label}. Its columns are: "
                f"{_column_list(columns)}. Fix: name one of them (--kind COLUMN=KIND, KIND one of "
                f"{', '.join(SETTABLE_KINDS)}), or remove it from the dataset's kinds on the Data page."
            )
        if name == target:
            raise LeadDataError(
                f"the column kinds name {name!r}, the outcome column; its kind is not a setting. Fix: remove it."
            )
        if name not in clean.columns:
            warnings.append(f"{name}: left out, so the kind {kind!r} set for it is not used")
            continue
        out[name] = kind
    return out


def _time_column_name(column: str, columns: list, target: str, dates: list[str]) -> str:
    """The time column as the table spells it; one that is not there (the error names the table's date
    columns) or is the outcome is refused."""
    name = str(column)
    if name not in columns:
        by_key = {_norm(c): c for c in columns}
        if _norm(name) not in by_key:
            raise LeadDataError(
                f"--time-column {name!r} is not a column of the table. "
                + (
                    f"Its date columns are: {_column_list(dates)}. Fix: name one of them."
                    if dates
                    else f"It has no date column (its columns: {_column_list(columns)}). Fix: use the stratified "
                    "split (--split stratified), or export the leads with their creation date."
                )
            )
        name = by_key[_norm(name)]
    if name == target:
        raise LeadDataError(f"--time-column {name!r} is the outcome column. Fix: name the creation-date column.")
    return name


def _applicable(
    missing_values: dict[str, list[float]], clean: pd.DataFrame, columns, target: str, label: str, warnings: list
) -> dict[str, list[float]]:
    """The ``missing_values`` of the numeric feature columns of ``clean``; a column the leak policy left out is
    skipped with a warning, one that is not in the table, the outcome or not numeric is refused."""
    applied = {}
    for col, values in missing_values.items():
        if col == target:
            raise LeadDataError(
                f"missing_values names {col!r}, the outcome column. Fix: remove it from the setting; the outcome "
                "is never read as missing."
            )
        if col not in columns:
            raise LeadDataError(
                f"missing_values names the column {col!r}, which is not in {label}. The columns are: "
                f"{_column_list(columns)}. Fix: remove it from the setting (Data page), or load the file that has it."
            )
        if col not in clean.columns:
            warnings.append(f"{col}: left out, so its missing-value codes are not applied")
            continue
        if not pd.api.types.is_numeric_dtype(clean[col]):
            raise LeadDataError(
                f"missing_values names {col!r}, which is not a numeric column; only numbers can be codes for "
                "missing. Fix: remove it from the setting, or clean the column in the export."
            )
        taken = [flag_name(col, v) for v in values if flag_name(col, v) in columns]
        if taken:
            raise LeadDataError(
                f"{label} already has a column named {taken[0]!r}, the name of the flag the missing-value code "
                "would add. Fix: rename that column in the export, or remove the code from the setting."
            )
        applied[col] = values
    return applied


def prepare_features(
    frame: pd.DataFrame | Sequence[Mapping[str, Any]],
    columns: list[str],
    kinds: dict[str, str],
    missing_values: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """Shape new leads (a file to score, an API request, a what-if form) exactly as training saw them.

    ``frame`` is a data frame, or the rows as mappings of field -> value (an API body, a form): that is
    ``pd.DataFrame(rows)``, and one row of plain values (text, numbers, true/false, None) is shaped cell by cell
    by :func:`_one_row` under the same rules, about ten times faster than through a frame of one row (which is what
    a one-lead API request pays for). ``columns``, ``kinds`` and ``missing_values`` are those of the training
    :class:`LeadTable` (stored in every run's spec). Missing columns become missing values, extra columns are
    ignored, 'Select' and blanks are missing, numeric columns are numbers (junk read as missing) and every other
    column is text; then the codes of ``missing_values`` are read as missing and their flag columns made
    (:func:`treat_missing`).
    """
    if not isinstance(frame, pd.DataFrame):
        rows = list(frame)
        if len(rows) == 1 and isinstance(rows[0], Mapping) and all(isinstance(v, _PLAIN) for v in rows[0].values()):
            shaped = _one_row(rows[0], columns, kinds)
            return treat_missing(shaped, missing_values, columns) if missing_values else shaped
        frame = pd.DataFrame(rows)
    if missing_values:
        return treat_missing(prepare_features(frame, columns, kinds), missing_values, columns)
    frame = frame.reindex(columns=list(columns))
    out: dict[str, pd.Series] = {}
    for col in frame.columns:
        s = frame[col].reset_index(drop=True)
        if s.isna().all():
            out[col] = pd.Series(np.nan, index=s.index, dtype=float if kinds.get(col) == "numeric" else "str")
            continue
        kind = kinds.get(col)
        if kind in ("numeric", "binary") and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            values = s.to_numpy(dtype=float, na_value=np.nan)  # numbers already: only non-finite ones go
            out[col] = pd.Series(np.where(np.isfinite(values), values, np.nan), index=s.index)
            continue
        cleaned = _clean_strings(s)
        if kind not in ("numeric", "binary"):
            out[col] = cleaned
            continue
        # each distinct text parsed once (a file of 100,000 leads has few distinct values per column)
        codes, uniques = pd.factorize(cleaned, use_na_sentinel=True)
        table = np.array([_as_number(v) if isinstance(v, str) else None for v in uniques] + [None], dtype=float)
        numbers = pd.Series(table[np.where(codes >= 0, codes, len(uniques))], index=s.index, dtype=float)
        as_numbers = kind == "numeric" or numbers.notna().sum() == cleaned.notna().sum()
        out[col] = numbers if as_numbers else cleaned
    return pd.DataFrame(out, index=range(len(frame)))


#: The values :func:`_one_row` shapes itself (what JSON holds); a row with any other goes through a frame.
_PLAIN = (str, bool, int, float, type(None))


def _one_row(row: Mapping[str, Any], columns: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    """:func:`prepare_features` of ``pd.DataFrame([row])`` for a row of plain values, cell by cell: the same
    rules (``is_missing_text``, ``_as_number``, a binary column numbers when its cell is one), the same dtypes.
    ``tests/data/test_missing_cells.py`` and ``tests/api/test_api_hostile.py`` check the two agree."""
    cells: dict[str, Any] = {}
    for col in columns:
        value, kind = row.get(col), kinds.get(col)
        if value is None or (isinstance(value, float) and np.isnan(value)):  # an all-missing column
            cells[col] = np.array([np.nan]) if kind == "numeric" else pd.array([np.nan], dtype="str")
            continue
        if isinstance(value, float) and not np.isfinite(value) and kind in ("numeric", "binary"):
            cells[col] = np.array([np.nan])  # a number column of a frame: non-finite numbers go
            continue
        text = str(value).strip()
        text = None if is_missing_text(text) else text
        number = None if text is None else _as_number(text)
        if kind == "numeric" or (kind == "binary" and (number is not None or text is None)):
            cells[col] = np.array([np.nan if number is None else float(number)])
        else:
            cells[col] = pd.array([np.nan if text is None else text], dtype="str")
    return pd.DataFrame(cells, index=range(1))
