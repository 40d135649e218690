"""What the leak finder measures beyond single columns: dates, names, and each column's unique contribution.

* :func:`date_days` — text columns that hold dates become days (since the creation date when the table
  has one, since 1970 otherwise), so that both the single-column models and the full model can read them.
* :func:`after_contact_name` — whether a column's name suggests a field a CRM fills in after contact
  (a call's duration, a status, stage, outcome, result, won/lost, closed, a reason, a disposition, tags,
  a quality rating, a score from another system, the date of a later contact or change).
* :func:`unique_costs` — one quick gradient-boosting model on all the columns together
  (``HistGradientBoostingClassifier``, categories read natively) fitted on two thirds of the rows, then the
  ROC-AUC lost on the held-out third when one column is made useless by permuting it (permutation
  importance, mean of a few shuffles). A column that the others stand in for (the calendar's many
  echoes) loses little; a post-outcome field that no known-before-contact column explains loses much.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "date_days",
    "after_contact_name",
    "unique_costs",
    "group_cost",
    "drop_costs",
    "paired_auc_se",
    "MODEL_MAX_ROWS",
]

#: Rows the full model is fitted and scored on at most (a stratified subsample above it).
MODEL_MAX_ROWS = 30_000
_MAX_CATEGORIES = 250  # categories the model reads natively; the rarer ones share one code
_REPEATS = 2
#: Columns with the largest permutation costs that are also measured by refitting without them.
DROP_CANDIDATES = 4

_ISO_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_US_DATE = re.compile(r"^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?$")
_CREATED = re.compile(r"\b(created?|creation|sign ?up|signed up|registered|registration|submitted|date added)\b")

# words and phrases of fields filled in after contact, matched on the lower-cased name split into words
_AFTER_CONTACT = re.compile(
    r"\b("
    r"duration|(call|talk|conversation) ?(length|time|minutes?|mins?|seconds?|secs?|duration)|length of (the )?call"
    r"|status(es)?|stages?|outcomes?|results?|won|lost|win|loss|closed?|closing|reasons?|dispositions?"
    r"|tags?|tagged|quality|scores?|scoring|rating"
    r"|(last|latest|next|recent)( [a-z]+)? (contact(ed)?|activity|call|touch|meeting|modified|update[ds]?|follow ?up)"
    r"|(updated|modified|changed|converted|conversion) ?(date|at|on|time)?"
    r")\b"
)


def _words(name: str) -> str:
    """A column name as lower-case words: ``callDuration`` and ``call_duration`` both read 'call duration'."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(name))
    return " ".join(re.sub(r"[^0-9a-zA-Z]+", " ", spaced).lower().split())


# statuses known before contact (a person's, not the lead's)
_BEFORE_CONTACT = re.compile(
    r"\b(marital|employment|civil|family|relationship|residence|residential|student|tax) status"
)


def after_contact_name(name: str) -> str | None:
    """The words of ``name`` that suggest a field filled in after contact, or None."""
    words = _words(name)
    if _BEFORE_CONTACT.search(words):
        return None
    found = _AFTER_CONTACT.search(words)
    return found.group(0) if found else None


def _looks_like_dates(s: pd.Series) -> str | None:
    filled = s.dropna()
    if len(filled) < 20 or pd.api.types.is_numeric_dtype(s):
        return None
    sample = filled.astype(str).str.strip().iloc[:200]
    for name, pattern in (("ISO8601", _ISO_DATE), ("us", _US_DATE)):
        if sample.str.match(pattern).mean() >= 0.95:
            return name
    return None


def date_days(X: pd.DataFrame) -> dict[str, pd.Series]:
    """The columns of ``X`` that hold dates, each as days (float, missing stays NaN).

    When one date column is named like the lead's creation (``created_date``, ``Sign-up date``...) the
    other dates are days after it (a later contact, a stage change); it is itself days since 1970.
    """
    found: dict[str, pd.Series] = {}
    for col in X.columns:
        form = _looks_like_dates(X[col])
        if form is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = X[col].astype(str).str.strip().where(X[col].notna())
            when = pd.to_datetime(text, errors="coerce", format="ISO8601" if form == "ISO8601" else None, utc=True)
        found[str(col)] = (when - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
    created = [c for c in found if _CREATED.search(_words(c))]
    if len(created) == 1:
        base = found[created[0]]
        for col in found:
            if col != created[0]:
                found[col] = found[col] - base
    return found


def _model_frame(X: pd.DataFrame) -> tuple[pd.DataFrame, list[bool]]:
    """Numbers stay numbers; every other column becomes category codes (rare ones lumped), missing stays NaN."""
    out: dict[str, Any] = {}
    categorical = []
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(float).to_numpy()
            categorical.append(False)
            continue
        counts = s.astype(object).value_counts()
        keep = counts.index[:_MAX_CATEGORIES]
        codes = pd.Categorical(s.astype(object), categories=keep).codes.astype(float)
        codes[(codes < 0) & s.notna().to_numpy()] = len(keep)  # rare values share one code
        codes[~s.notna().to_numpy()] = np.nan
        out[col] = codes
        categorical.append(True)
    return pd.DataFrame(out, index=X.index), categorical


def _model(categorical: list[bool], n_train: int, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.2,
        max_leaf_nodes=15,
        min_samples_leaf=max(20, n_train // 500),
        l2_regularization=1.0,
        categorical_features=np.array(categorical, dtype=bool),
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=8,
        random_state=seed,
    )


def _used_columns(model: Any, n_columns: int) -> np.ndarray:
    """Which columns any tree splits on (permuting the others costs exactly nothing); all when unknown."""
    try:
        used = np.zeros(n_columns, dtype=bool)
        for trees in model._predictors:
            for tree in trees:
                nodes = tree.nodes
                used[nodes["feature_idx"][~nodes["is_leaf"].astype(bool)]] = True
        return used
    except (AttributeError, KeyError, IndexError, ValueError, TypeError):
        return np.ones(n_columns, dtype=bool)


def _placements(score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: for each converted lead the share of others it outranks, and vice versa."""
    from scipy.stats import rankdata

    pos, neg = score[y == 1], score[y == 0]
    both = rankdata(np.concatenate([pos, neg]))
    v10 = (both[: len(pos)] - rankdata(pos)) / len(neg)
    v01 = 1.0 - (both[len(pos) :] - rankdata(neg)) / len(pos)
    return v10, v01


def paired_auc_se(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of ROC-AUC(a) - ROC-AUC(b) on the same rows (DeLong et al. 1988: the two scores'
    errors are correlated, so the difference is far better measured than either AUC)."""
    y = np.asarray(y, dtype=int)
    pa, na = _placements(np.asarray(a, dtype=float), y)
    pb, nb = _placements(np.asarray(b, dtype=float), y)
    d10, d01 = pa - pb, na - nb
    var = np.var(d10, ddof=1) / len(d10) + np.var(d01, ddof=1) / len(d01)
    return float(np.sqrt(max(var, 0.0)))


class _HeldOut:
    """The rows the audit's model of all columns sees, as numbers (:func:`_model_frame`), split into two thirds to
    fit on and a stratified third to score: the one setup of :func:`unique_costs`, :func:`group_cost` and
    :func:`drop_costs`, so a refit without some columns is compared with the full model on the same leads."""

    def __init__(self, X: pd.DataFrame, y: np.ndarray, seed: int, max_rows: int | None = MODEL_MAX_ROWS) -> None:
        from sklearn.model_selection import train_test_split

        y = np.asarray(y, dtype=int)
        idx = np.arange(len(y))
        if max_rows is not None and len(y) > max_rows:
            idx, _ = train_test_split(idx, train_size=max_rows, stratify=y, random_state=seed)
        frame, self.categorical = _model_frame(X.iloc[idx].reset_index(drop=True))
        self.columns = [str(c) for c in frame.columns]
        self.A, self.y, self.rows, self.seed = frame.to_numpy(dtype=float), y[idx], len(idx), seed
        self.train, self.test = train_test_split(
            np.arange(len(self.y)), test_size=1 / 3, stratify=self.y, random_state=seed
        )

    def fit(self, keep: list[int]):
        """The model of the columns at positions ``keep``, fitted on the two thirds (on one thread: call it under
        ``threadpool_limits(1)``)."""
        return _model([self.categorical[k] for k in keep], len(self.train), self.seed).fit(
            self.A[self.train][:, keep], self.y[self.train]
        )

    def scores_without(self, drop: set[str]) -> np.ndarray:
        """Held-out P(convert) of the model refitted without the columns in ``drop``."""
        keep = [k for k, c in enumerate(self.columns) if c not in drop]
        return self.fit(keep).predict_proba(self.A[self.test][:, keep])[:, 1]


def unique_costs(X: pd.DataFrame, y: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Held-out ROC-AUC of the full model and what permuting each column costs it (see the module docstring).

    ``X``: the audited columns (numbers as floats, dates already as days, the rest as strings or NaN);
    ``y``: 0/1. Returns ``{"auc": full model ROC-AUC, "costs": {column: ROC-AUC lost when permuted},
    "drop_costs": {column: ROC-AUC lost when refitted without it, for the DROP_CANDIDATES costliest},
    "drop_se": {column: standard error of that drop cost (paired DeLong, on the held-out third)},
    "held_out": [not converted, converted] leads in the held-out third, "rows": rows used, "split": the rows
    and split, "scores": the full model's held-out scores (both for :func:`group_cost`)}``.
    The model runs on one thread: on a shared machine OpenMP threads that wait on each other are far slower.
    """
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    held = _HeldOut(X, y, seed)
    with threadpool_limits(1):
        model = held.fit(list(range(len(held.columns))))
        T, yt = held.A[held.test].copy(), held.y[held.test]
        full_score = model.predict_proba(T)[:, 1]
        auc = float(roc_auc_score(yt, full_score))
        rng = np.random.default_rng(seed)
        used = _used_columns(model, len(held.columns))
        costs = {}
        for j, col in enumerate(held.columns):
            if not used[j]:
                costs[col] = 0.0
                continue
            keep = T[:, j].copy()
            lost = []
            for _ in range(_REPEATS):
                T[:, j] = rng.permutation(keep)
                lost.append(auc - roc_auc_score(yt, model.predict_proba(T)[:, 1]))
            T[:, j] = keep
            costs[col] = float(np.mean(lost))
        # the few columns the model leans on most are refitted without, one at a time: what the others
        # cannot make up for is the column's unique contribution
        ranked = sorted(held.columns, key=lambda c: -costs[c])
        dropped, errors = {}, {}
        for col in [c for c in ranked[:DROP_CANDIDATES] if costs[c] > 0]:
            without = held.scores_without({col})
            dropped[col] = auc - float(roc_auc_score(yt, without))
            errors[col] = paired_auc_se(yt, full_score, without)
    held_out = np.bincount(yt, minlength=2)
    return {
        "auc": auc,
        "costs": costs,
        "drop_costs": dropped,
        "drop_se": errors,
        "held_out": [int(held_out[0]), int(held_out[1])],
        "rows": int(held.rows),
        "split": held,
        "scores": full_score,
    }


def group_cost(unique: dict[str, Any], group: list[str]) -> tuple[float, float]:
    """(ROC-AUC lost when the model is refitted without every column of ``group`` together, its standard error),
    against the full model of :func:`unique_costs` (its result ``unique``) on the same held-out leads: fields that
    stand in for each other (a call's duration and its status) each cost little when dropped alone."""
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    held = unique["split"]
    with threadpool_limits(1):
        without = held.scores_without({str(c) for c in group})
    yt = held.y[held.test]
    return unique["auc"] - float(roc_auc_score(yt, without)), paired_auc_se(yt, unique["scores"], without)


def drop_costs(X: pd.DataFrame, y: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """For measurement only: the held-out ROC-AUC lost when the model is refitted without each column (every row,
    no subsample)."""
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    held = _HeldOut(X, y, seed, max_rows=None)
    yt = held.y[held.test]
    with threadpool_limits(1):
        full = float(roc_auc_score(yt, held.scores_without(set())))
        return {c: full - float(roc_auc_score(yt, held.scores_without({c}))) for c in held.columns}
