"""Shift check: do the leads being scored look like the leads the model was trained on?

:func:`shift_report` compares a run's training rows with new rows in two ways.

**Population stability index (PSI), per column.** The training values are put into bins and
``PSI = sum((new% - train%) * ln(new% / train%))`` over the bins, each share floored at
``1e-4`` so an empty bin does not divide by zero. Bins:

* numbers: the deciles of the training values as edges, with open ends (below the first decile,
  above the last), plus one bin for missing values;
* everything else: the training categories (the 30 most frequent; the rest, and values never seen
  in training, go to ``"other"``), plus ``"other"`` and ``"missing"``.

Reading (the usual one): PSI < 0.10 ``"stable"``, 0.10-0.25 ``"moderate"``, > 0.25 ``"large"``.

**Adversarial validation, overall.** A ``HistGradientBoostingClassifier`` (numbers as they are,
other columns as native categories coded as for the PSI) is trained to tell training rows from new
rows, on at most ``max_rows`` random rows of each side; its stratified 3-fold ROC-AUC is
``adversarial_auc``. Near 0.5 the two tables cannot be told apart. The verdict:

* ``adversarial_auc < 0.60``: ``"looks like the training data"``;
* ``0.60 <= adversarial_auc < 0.75``: ``"somewhat different"``;
* ``adversarial_auc >= 0.75``: ``"very different"``.

``most_shifted`` names the columns that the classifier relies on, in order: scikit-learn's
permutation importance (the drop in ROC-AUC when the column is shuffled, 3 repeats) on the held-out
rows of the first fold, kept when at least 0.01, five at most; each column entry carries its
``importance``. It is computed only when ``adversarial_auc >= 0.60``: below that the classifier
relies on nothing in particular, ``importance`` is None and ``most_shifted`` is empty. When either side
has fewer than 20 rows no classifier is trained: ``adversarial_auc`` is None, the verdict is
``"too few rows to tell"`` (the PSI of a small batch overstates shifts: its empty bins weigh heavily),
``most_shifted`` lists the columns with a large PSI, and ``note`` says so.

Only columns present in both tables are compared; ``only_in_train`` and ``only_in_new`` list the
others. Identifier and free-text columns (kinds from :func:`engine.data.leads.infer_kinds` on the
training rows, or ``kinds``) are listed in ``skipped``: every new lead has a new id, so they always
"shift". Both tables are cleaned with :func:`engine.data.leads.prepare_features`.
10,000 vs 10,000 X Education rows take a few seconds on 2 cores.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from engine.data.leads import LeadDataError, infer_kinds, prepare_features

__all__ = ["shift_report", "psi_level", "PSI_MODERATE", "PSI_LARGE", "AUC_SOMEWHAT", "AUC_VERY"]

PSI_MODERATE = 0.10
PSI_LARGE = 0.25
AUC_SOMEWHAT = 0.60
AUC_VERY = 0.75
VERDICTS = ("looks like the training data", "somewhat different", "very different")
#: the verdict when either side has too few rows for the classifier
TOO_FEW = "too few rows to tell"

_EPS = 1e-4
_MAX_CATEGORIES = 30
_MIN_ROWS_ADVERSARIAL = 20
_MIN_IMPORTANCE = 0.01
_TOP = 5
_FOLDS = 3
_SKIP_KINDS = {"identifier": "identifier (a new value for every lead)", "text": "free text"}


def psi_level(psi: float) -> str:
    """``"stable"`` (< 0.10), ``"moderate"`` (0.10-0.25) or ``"large"`` (> 0.25)."""
    return "stable" if psi < PSI_MODERATE else "moderate" if psi <= PSI_LARGE else "large"


def shift_report(
    train: pd.DataFrame, new: pd.DataFrame, kinds: dict[str, str] | None = None, max_rows: int = 5000, seed: int = 0
) -> dict[str, Any]:
    """Compare the rows being scored (``new``) with a run's training rows (``train``).

    ``kinds``: column kinds as in the run's ``LeadTable.kinds``; inferred from ``train`` when None.
    ``max_rows``: rows of each side the adversarial classifier sees (a random sample above it).
    Returns ``{"columns": [{"column", "kind", "psi", "level", "importance"}] (largest PSI first),
    "adversarial_auc", "verdict", "most_shifted", "rows_train", "rows_new", "only_in_train",
    "only_in_new", "skipped", "note", "seconds"}`` (``note``: None, or why the verdict is less sure);
    see the module docstring for the method and thresholds.
    Raises :class:`engine.data.leads.LeadDataError` (a ``ValueError``) for unusable input.
    """
    start = time.perf_counter()
    for name, frame in (("training", train), ("new", new)):
        if not isinstance(frame, pd.DataFrame):
            raise LeadDataError(
                f"the {name} rows must be a pandas DataFrame, not a {type(frame).__name__}. "
                "Read the table first (engine.data.leads.read_table)."
            )
    train = train.rename(columns=str)
    new = new.rename(columns=str)
    shared = [c for c in train.columns if c in set(new.columns)]
    only_train = [c for c in train.columns if c not in set(new.columns)]
    only_new = [c for c in new.columns if c not in set(train.columns)]
    if not shared:
        raise LeadDataError(
            f"the new rows share no column with the training rows (training: "
            f"{_names(train.columns)}; new: {_names(new.columns)}). Score a file with the "
            "columns the model was trained on."
        )
    if len(train) == 0:
        raise LeadDataError("the training table has no rows; the shift check needs the run's training rows.")
    if len(new) == 0:
        raise LeadDataError(
            "the new table has no rows (0 leads), so there is nothing to compare. Pass the leads being scored."
        )
    if max_rows < _MIN_ROWS_ADVERSARIAL:
        raise LeadDataError(f"max_rows={max_rows} is too small; use at least {_MIN_ROWS_ADVERSARIAL}.")

    if kinds is None:
        kinds = infer_kinds(train[shared])
    kinds = {c: kinds.get(c, "categorical") for c in shared}
    skipped = {c: _SKIP_KINDS[kinds[c]] for c in shared if kinds[c] in _SKIP_KINDS}
    cols = [c for c in shared if c not in skipped]
    if not cols:
        raise LeadDataError(
            f"every shared column is an identifier or free text ({_names(shared)}); there is "
            "nothing to compare. Score a file with the lead attributes the model uses."
        )
    a = prepare_features(train, cols, kinds)
    b = prepare_features(new, cols, kinds)

    entries, coded_a, coded_b, is_cat = [], {}, {}, []
    for c in cols:
        numeric = kinds[c] == "numeric" and pd.api.types.is_numeric_dtype(a[c])
        if numeric:
            psi = _psi(*_numeric_bins(a[c].to_numpy(float), b[c].to_numpy(float)))
            coded_a[c], coded_b[c] = a[c].to_numpy(float), b[c].to_numpy(float)
        else:
            ca, cb, n_codes = _category_codes(a[c], b[c])
            psi = _psi(_shares(ca, n_codes), _shares(cb, n_codes))
            # for the classifier: missing stays missing (native handling), categories are codes
            coded_a[c] = np.where(ca == n_codes - 1, np.nan, ca).astype(float)
            coded_b[c] = np.where(cb == n_codes - 1, np.nan, cb).astype(float)
        is_cat.append(not numeric)
        entries.append(
            {"column": c, "kind": kinds[c], "psi": round(float(psi), 4), "level": psi_level(psi), "importance": None}
        )

    adversarial_auc, importance = None, None
    if min(len(a), len(b)) >= _MIN_ROWS_ADVERSARIAL:
        adversarial_auc, importance = _adversarial(pd.DataFrame(coded_a), pd.DataFrame(coded_b), is_cat, max_rows, seed)
        most = []
        if importance is not None:
            for e, imp in zip(entries, importance):
                e["importance"] = round(float(imp), 4)
            ranked = sorted(zip(cols, importance), key=lambda t: -t[1])
            most = [c for c, imp in ranked if imp >= _MIN_IMPORTANCE][:_TOP]
        score = adversarial_auc
        verdict = VERDICTS[0] if score < AUC_SOMEWHAT else VERDICTS[1] if score < AUC_VERY else VERDICTS[2]
        note = None
    else:
        note = (
            f"only {min(len(a), len(b))} rows on one side: too few to tell whether the leads differ (the "
            "classifier needs more, and the PSI of a small batch is mostly noise); the columns listed are "
            "those with a large PSI; check again with more rows"
        )
        verdict = TOO_FEW
        most = [e["column"] for e in sorted(entries, key=lambda e: -e["psi"]) if e["level"] == "large"][:_TOP]

    entries.sort(key=lambda e: -e["psi"])
    return {
        "columns": entries,
        "adversarial_auc": None if adversarial_auc is None else round(adversarial_auc, 4),
        "verdict": verdict,
        "most_shifted": most,
        "rows_train": int(len(train)),
        "rows_new": int(len(new)),
        "only_in_train": only_train,
        "only_in_new": only_new,
        "skipped": [{"column": c, "reason": r} for c, r in skipped.items()],
        "note": note,
        "seconds": round(time.perf_counter() - start, 3),
    }


# --------------------------------------------------------------------------------------------
def _names(columns: Any, limit: int = 12) -> str:
    cols = [repr(str(c)) for c in columns]
    return (", ".join(cols[:limit]) + (f", … ({len(cols) - limit} more)" if len(cols) > limit else "")) or "none"


def _shares(codes: np.ndarray, n_bins: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=n_bins).astype(float)
    return counts / max(counts.sum(), 1.0)


def _psi(p_train: np.ndarray, p_new: np.ndarray) -> float:
    p, q = np.maximum(p_train, _EPS), np.maximum(p_new, _EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def _numeric_bins(train: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares of both sides in the training deciles (open ends) plus a last bin for missing."""
    filled = train[~np.isnan(train)]
    edges = np.unique(np.quantile(filled, np.linspace(0.1, 0.9, 9))) if len(filled) else np.array([])
    n_bins = len(edges) + 2  # value bins + missing

    def codes(values: np.ndarray) -> np.ndarray:
        out = np.searchsorted(edges, values, side="left")  # (-inf, e1], (e1, e2], ..., (e_k, inf)
        return np.where(np.isnan(values), n_bins - 1, out)

    return _shares(codes(train), n_bins), _shares(codes(new), n_bins)


def _category_codes(train: pd.Series, new: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes 0..k-1 for the training categories, k for "other", k+1 for "missing" (both sides)."""
    keys_a = train.astype(object).where(train.notna())
    keys_b = new.astype(object).where(new.notna())
    keep = keys_a.dropna().astype(str).value_counts().index[:_MAX_CATEGORIES].tolist()
    lookup = {v: i for i, v in enumerate(keep)}
    k = len(keep)

    def codes(keys: pd.Series) -> np.ndarray:
        mapped = keys.map(lambda v: lookup.get(str(v), k), na_action="ignore")
        return mapped.fillna(k + 1).to_numpy(dtype=int)

    return codes(keys_a), codes(keys_b), k + 2


def _adversarial(
    a: pd.DataFrame, b: pd.DataFrame, is_cat: list[bool], max_rows: int, seed: int
) -> tuple[float, np.ndarray | None]:
    """Cross-validated ROC-AUC of a train-vs-new classifier and each column's permutation importance."""
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: for a few thousand rows the boosting's threads cost more than they save, and on
    # a busy 2-core machine their spin-waiting made a fit 30x slower (9 s instead of 0.25 s) when measured.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _adversarial_fit(a, b, is_cat, max_rows, seed)


def _adversarial_fit(
    a: pd.DataFrame, b: pd.DataFrame, is_cat: list[bool], max_rows: int, seed: int
) -> tuple[float, np.ndarray | None]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    if len(a) > max_rows:
        a = a.iloc[np.sort(rng.choice(len(a), max_rows, replace=False))]
    if len(b) > max_rows:
        b = b.iloc[np.sort(rng.choice(len(b), max_rows, replace=False))]
    X = pd.concat([a, b], ignore_index=True).to_numpy(dtype=float)
    y = np.r_[np.zeros(len(a), dtype=int), np.ones(len(b), dtype=int)]
    aucs, held_out = [], []
    for train_idx, test_idx in StratifiedKFold(_FOLDS, shuffle=True, random_state=seed).split(X, y):
        model = HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            max_leaf_nodes=15,
            categorical_features=np.asarray(is_cat),
            early_stopping=False,
            random_state=seed,
        )
        model.fit(X[train_idx], y[train_idx])
        aucs.append(roc_auc_score(y[test_idx], model.predict_proba(X[test_idx])[:, 1]))
        held_out.append((model, test_idx))
    auc = float(np.mean(aucs))
    if auc < AUC_SOMEWHAT:
        return auc, None
    model, test_idx = held_out[0]
    perm = permutation_importance(model, X[test_idx], y[test_idx], scoring="roc_auc", n_repeats=3, random_state=seed)
    return auc, perm.importances_mean
