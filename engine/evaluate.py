"""One evaluation protocol for every approach: split, metrics with bootstrap intervals, curves,
thresholds, scores and timing.

* :func:`protocol_split` — the stratified 70/30 split (seed 42) every approach is scored on.
* :func:`compute_metrics` — accuracy, precision, recall, F1 (threshold 0.5), ROC-AUC, PR-AUC
  (average precision), Brier score, log loss and expected calibration error, each as
  ``{"value", "low", "high"}`` with a 95 % percentile bootstrap interval. Values equal scikit-learn's;
  the bootstrap is vectorised (resampling = multinomial row weights), so 1000 resamples of a few
  thousand rows take well under a second.
* :func:`paired_difference` — one metric of two models on the same rows, A minus B, with a paired
  bootstrap interval (the same resamples for both).
* :func:`curve_data` — ROC, PR, calibration bins, cumulative gains and lift, conversion by score band;
  every value is a plain list, ready for JSON.
* :func:`choose_threshold`, :func:`confusion_at` — operating points.
* :class:`ScoreScale` — the 1-99 lead score (the percentile among the training leads) and the A-D tiers.
* :func:`time_scoring` — batch rows/second and single-row latency of a fitted approach.
* :data:`METRIC_LABELS`, :func:`baseline_metrics`, :func:`board_findings` — the board's words: a name and a help
  line per metric, the metrics of no model (the base rate), and what the runs' numbers say, in sentences.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

METRIC_NAMES = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier", "log_loss", "ece"]
#: Lead-score bands shown on the board (inclusive bounds on the 1-99 score).
SCORE_BANDS = [(1, 20), (21, 40), (41, 60), (61, 80), (81, 99)]
TIERS = ["A", "B", "C", "D"]
_EPS = np.finfo(np.float64).eps


def _as_arrays(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 2:  # accept predict_proba output
        p = p[:, 1]
    p = p.ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.shape[0]} rows but proba has {p.shape[0]}; pass one probability per row")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels (1 = converted)")
    if np.isnan(p).any():
        raise ValueError("proba contains NaN; the model produced invalid probabilities")
    return y, p


# -- split ----------------------------------------------------------------------------------------
def protocol_split(y, test_size: float = 0.3, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test row positions: the same split for every approach on a dataset."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(y).astype(int).ravel()
    counts = np.bincount(y, minlength=2)
    if counts.min() < 2:
        raise ValueError(
            f"Need at least 2 rows of each class to split (got {counts.tolist()} for 0/1); "
            "add rows of the missing class or choose another target column"
        )
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(train_idx), np.sort(test_idx)


#: The share of the protocol's training rows a lead run keeps out of its fit by default: its calibration slice,
#: the same rows for every approach on a dataset and split (:func:`calibration_slice`). Measured on Leads.csv (the
#: stack's ROC-AUC with and without it: README, Results) before it became the default.
CALIBRATION_SHARE = 0.1


def calibration_slice(y, train_idx, share: float = CALIBRATION_SHARE, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """``train_idx`` (the protocol's training positions) cut into the rows a run fits on and its calibration
    slice: ``share`` of them, stratified on ``y``, drawn with ``seed`` from the training positions alone, so every
    approach on the same dataset and split gets the same slice and no test row is ever in it. ``share`` 0 keeps
    every training row for the fit (an empty slice). Returns sorted positions into ``y``: (fit, slice)."""
    from sklearn.model_selection import train_test_split

    train_idx = np.sort(np.asarray(train_idx, dtype=int))
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 0.5:
        raise ValueError(f"the calibration share must be a number from 0 (no slice) to below 0.5, got {share!r}")
    if not share:
        return train_idx, np.array([], dtype=int)
    y_train = np.asarray(y).astype(int).ravel()[train_idx]
    n_slice = int(round(share * len(train_idx)))
    if n_slice < 4 or np.bincount(y_train, minlength=2).min() < 4:
        raise ValueError(
            f"{len(train_idx)} training rows are too few for a calibration slice of {share:.0%} (it needs at least 4 "
            "rows and 2 of each outcome on each side); add rows, or train with a calibration share of 0 (no slice)"
        )
    fit, held = train_test_split(train_idx, test_size=n_slice, random_state=seed, stratify=y_train)
    return np.sort(fit), np.sort(held)


def slice_hash(row_ids) -> str:
    """A fingerprint of a calibration slice: sha256 of its row ids in order (runs with the same hash held out the
    same rows)."""
    import hashlib

    text = "\n".join(str(v) for v in np.asarray(row_ids).tolist())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def time_split(times, y, test_size: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.datetime64]:
    """Out-of-time train/test row positions and the cut-off: the newest ``test_size`` of the rows (as many as
    the stratified split's test part, ``ceil(test_size * n)``) by ``times`` are the test rows. Rows of the same
    time are ordered by their position in the file (a later row is newer), so the split is deterministic and no
    training row is newer than the cut-off (the oldest test row's time)."""
    times = np.asarray(times, dtype="datetime64[s]")
    y = np.asarray(y).astype(int).ravel()
    n = len(y)
    n_test = int(np.ceil(test_size * n))
    if n < 4 or n_test >= n:
        raise ValueError(f"Need at least 4 rows to split by time (got {n}); add rows or use the stratified split")
    order = np.lexsort((np.arange(n), times))  # by time, then by row: ties at the cut-off go by file order
    train_idx, test_idx = np.sort(order[:-n_test]), np.sort(order[-n_test:])
    for part, idx in (("training", train_idx), ("test", test_idx)):
        counts = np.bincount(y[idx], minlength=2)
        if counts.min() < 1:
            raise ValueError(
                f"The {part} part of the time split ({'oldest' if part == 'training' else 'newest'} rows) has "
                f"{counts[1]} converted and {counts[0]} not-converted leads; both are needed. Add rows of the "
                "missing outcome for that period, change the test share, or use the stratified split"
            )
    return train_idx, test_idx, times[order[-n_test]]


def _weighted_metrics(
    y: np.ndarray, p: np.ndarray, W: np.ndarray, starts: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every metric for each row of the weight matrix ``W`` (n_sets, n). ``y`` and ``p`` must be sorted by
    ``p`` ascending; ``starts`` are the first positions of each run of tied scores (None: no ties).
    Weight = how many times a row is drawn; a row of ones gives the plain metrics. Ties are handled like
    scikit-learn (ROC-AUC counts a tie as 1/2; average precision thresholds at each distinct score)."""
    dt = W.dtype
    yf = y.astype(dt)
    total = W.sum(axis=1, dtype=np.float64)
    pred = (p >= 0.5).astype(dt)
    tp = (W @ (pred * yf)).astype(np.float64)
    fp = (W @ (pred * (1 - yf))).astype(np.float64)
    pos = (W @ yf).astype(np.float64)
    fn = pos - tp
    tn = total - tp - fp - fn
    neg = total - pos
    pc = np.clip(p, _EPS, 1 - _EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = (tp + tn) / total
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(pos > 0, tp / pos, np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        brier = (W @ ((p - y) ** 2).astype(dt)).astype(np.float64) / total
        log_loss = -(W @ (y * np.log(pc) + (1 - y) * np.log(1 - pc)).astype(dt)).astype(np.float64) / total

        gpos = W * yf
        gneg = W - gpos
        if starts is not None:
            gpos = np.add.reduceat(gpos, starts, axis=1)
            gneg = np.add.reduceat(gneg, starts, axis=1)
        # ROC-AUC (Mann-Whitney): positives beat the negatives below them, ties count 1/2
        neg_cum = np.cumsum(gneg, axis=1, dtype=np.float64)
        auc_num = np.einsum("ij,ij->i", gpos, neg_cum) - 0.5 * np.einsum("ij,ij->i", gpos, gneg)
        roc_auc = np.where((pos > 0) & (neg > 0), auc_num / (pos * neg), np.nan)
        # average precision: thresholds from high to low at each distinct score
        gpos_r = gpos[:, ::-1]
        tp_at = np.cumsum(gpos_r, axis=1, dtype=np.float64)
        called_at = tp_at + np.cumsum(gneg[:, ::-1], axis=1, dtype=np.float64)
        prec_at = np.divide(tp_at, called_at, out=np.zeros_like(tp_at), where=called_at > 0)
        pr_auc = np.where(pos > 0, np.einsum("ij,ij->i", gpos_r, prec_at) / pos, np.nan)

        # ECE: 10 equal-width bins on [0, 1]
        bins = np.clip((p * 10).astype(int), 0, 9)  # scores outside [0, 1] (ranking-only uses) go to the end bins
        onehot = np.zeros((len(p), 10), dtype=dt)
        onehot[np.arange(len(p)), bins] = 1.0
        sum_p = (W @ (onehot * p[:, None].astype(dt))).astype(np.float64)
        sum_y = (W @ (onehot * yf[:, None])).astype(np.float64)
        ece = np.abs(sum_p - sum_y).sum(axis=1) / total
    return {
        "accuracy": accuracy,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": brier,
        "log_loss": log_loss,
        "ece": ece,
    }


def _sorted_by_score(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The row order by score (ascending, stable) and the starts of tied runs (None: no ties), as
    :func:`_weighted_metrics` takes them."""
    order = np.argsort(p, kind="mergesort")
    ps = p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ps)) + 1]
    return order, (None if len(starts) == len(ps) else starts)


def _bootstrap_weights(n: int, n_boot: int, seed: int):
    """Bootstrap resamples of ``n`` rows as multinomial row weights, in float32 blocks of ~1M cells (they
    stay in cache): yields (size, n) arrays, ``n_boot`` rows in all."""
    rng = np.random.default_rng(seed)
    chunk = max(1, int(1_000_000 // n))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float32)
        done += size


def _percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]  # resamples with one class have no ROC-AUC
    if not len(values):
        return float("nan"), float("nan")
    return float(np.percentile(values, 100 * alpha / 2)), float(np.percentile(values, 100 * (1 - alpha / 2)))


def compute_metrics(y_true, proba, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, dict]:
    """Protocol metrics, each ``{"value", "low", "high"}`` (95 % percentile bootstrap interval).

    ``proba`` is P(convert) per row (or a predict_proba (n, 2) array). Threshold-based metrics use 0.5.
    """
    y, p = _as_arrays(y_true, proba)
    if len(y) == 0:
        raise ValueError("No rows to evaluate; the test split is empty")
    order, starts = _sorted_by_score(y, p)
    ys, ps = y[order], p[order]
    point = _weighted_metrics(ys, ps, np.ones((1, len(y))), starts)
    bootstrap = bool(n_boot and n_boot > 0)
    if bootstrap:
        boots: dict[str, list[np.ndarray]] = {m: [] for m in METRIC_NAMES}
        for W in _bootstrap_weights(len(y), int(n_boot), seed):
            for name, values in _weighted_metrics(ys, ps, W, starts).items():
                boots[name].append(values)
    out: dict[str, dict] = {}
    for name in METRIC_NAMES:
        value = float(point[name][0])
        if bootstrap:
            low, high = _percentile_interval(np.concatenate(boots[name]), alpha)
            # a percentile interval can miss the point estimate on tiny samples; keep it enclosing
            low, high = min(low, value), max(high, value)
        else:
            low = high = value
        out[name] = {"value": value, "low": low, "high": high}
    return out


def paired_difference(
    y_true, proba_a, proba_b, metric: str = "roc_auc", n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> dict[str, float]:
    """``metric`` of ``proba_a`` minus that of ``proba_b`` on the same rows, ``{"value", "low", "high"}``
    with a paired percentile bootstrap interval (each resample weighs the rows alike for both models)."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"metric must be one of {METRIC_NAMES}, not {metric!r}")
    y, p_a = _as_arrays(y_true, proba_a)
    _, p_b = _as_arrays(y_true, proba_b)
    sides = [(order, starts, y[order], p[order]) for p in (p_a, p_b) for order, starts in [_sorted_by_score(y, p)]]

    def difference(W: np.ndarray) -> np.ndarray:
        a, b = (_weighted_metrics(ys, ps, W[:, order], starts)[metric] for order, starts, ys, ps in sides)
        return a - b

    value = float(difference(np.ones((1, len(y))))[0])
    if not n_boot or n_boot <= 0:
        return {"value": value, "low": value, "high": value}
    diffs = np.concatenate([difference(W) for W in _bootstrap_weights(len(y), int(n_boot), seed)])
    low, high = _percentile_interval(diffs, alpha)
    return {"value": value, "low": low, "high": high}


# -- scores and tiers -----------------------------------------------------------------------------
#: The percentiles of the training leads' probabilities a run keeps for its score scale (1st..99th).
SCORE_PERCENTILES = np.arange(1, 100) / 100
#: The lowest score of tiers A, B and C: the upper three quarters of the training leads.
TIER_FLOORS = (75, 50, 25)


class ScoreScale:
    """A run's lead score (1-99) and priority tier (A-D), the one home of both.

    From the percentiles of the run's training leads' probabilities (:meth:`from_training`), the score of a lead
    is how many of those percentiles it reaches: 80 = it scores at least as high as 80 % of the leads the model
    was trained on, at any conversion rate (at 2 % converted the probabilities of most leads are a few tenths of
    a percent, and a probability scale would give nearly all of them 1). Tier A is a score of 75 or more (the
    training leads' top quarter), B 50-74, C 25-49, D below 25, so the tiers split the training leads into
    quarters, a lead never sits in a higher tier than one with a higher probability, and leads with the same
    score share a tier.

    Runs trained before the scale was kept (only ``train_score_quartiles`` in their metrics) keep the old
    scale: ``round(p * 98) + 1`` and tiers by the quartiles compared as scores (:meth:`from_metrics`)."""

    def __init__(self, percentiles=None, quartiles=None):
        self.percentiles = None if percentiles is None else np.asarray(percentiles, dtype=np.float64)
        self.quartiles = None if quartiles is None else np.asarray(quartiles, dtype=np.float64)
        if self.percentiles is not None and (
            self.percentiles.shape != SCORE_PERCENTILES.shape or not _probabilities(self.percentiles)
        ):
            raise ValueError(f"a score scale needs {len(SCORE_PERCENTILES)} percentiles between 0 and 1, in order")
        if self.quartiles is not None and (self.quartiles.shape != (3,) or not _probabilities(self.quartiles)):
            raise ValueError("a score scale needs 3 quartiles between 0 and 1, in order")

    @classmethod
    def from_training(cls, train_proba) -> ScoreScale:
        """The scale of a run from its training leads' probabilities."""
        p = _positive_class(train_proba)
        if not len(p) or not np.isfinite(p).all():
            raise ValueError("a score scale needs the finite probabilities of at least one training lead")
        return cls(percentiles=np.quantile(p, SCORE_PERCENTILES))

    @classmethod
    def from_metrics(cls, metrics: dict) -> ScoreScale | None:
        """The scale a run stored (``train_score_percentiles``, else the older ``train_score_quartiles``); None when
        it stored neither or a damaged one."""
        for key, field in (("train_score_percentiles", "percentiles"), ("train_score_quartiles", "quartiles")):
            values = metrics.get(key) if isinstance(metrics, dict) else None
            if isinstance(values, list):
                try:
                    return cls(**{field: [float(v) for v in values]})
                except (TypeError, ValueError):
                    return None
        return None

    def to_metrics(self) -> dict[str, list[float]]:
        """What a run stores (its metrics' keys): the percentiles and, for older readers, the quartiles."""
        out: dict[str, list[float]] = {}
        if self.percentiles is not None:
            out["train_score_percentiles"] = self.percentiles.tolist()
            out["train_score_quartiles"] = self.percentiles[[24, 49, 74]].tolist()
        elif self.quartiles is not None:
            out["train_score_quartiles"] = self.quartiles.tolist()
        return out

    @property
    def by_rank(self) -> bool:
        """True when the score ranks a lead among the training leads (False: the older probability scale)."""
        return self.percentiles is not None

    def score(self, proba) -> np.ndarray:
        """The 1-99 score of each probability."""
        p = _positive_class(proba)
        if self.percentiles is None:
            return to_score(p)
        return np.clip(np.searchsorted(self.percentiles, p, side="right"), 1, 99).astype(int)

    def tier(self, proba) -> np.ndarray:
        """Tier A-D of each probability."""
        score = self.score(proba)
        if self.percentiles is None and self.quartiles is None:
            raise ValueError("this score scale has no tiers")
        floors = TIER_FLOORS if self.percentiles is not None else tuple(to_score(self.quartiles[::-1]))
        idx = np.where(score >= floors[0], 0, np.where(score >= floors[1], 1, np.where(score >= floors[2], 2, 3)))
        return np.array(TIERS, dtype=object)[idx]


def _positive_class(proba) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    return (p[:, 1] if p.ndim == 2 else p).ravel()


def _probabilities(values: np.ndarray) -> bool:
    return bool(
        np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all() and (np.diff(values) >= 0).all()
    )


def to_score(proba) -> np.ndarray:
    """The older 1-99 score, ``round(p * 98) + 1`` (runs without a :class:`ScoreScale` of their own)."""
    p = _positive_class(proba)
    return np.clip(np.round(p * 98) + 1, 1, 99).astype(int)


# -- curves -----------------------------------------------------------------------------------------
def _downsample(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def _finite_list(values) -> list:
    arr = np.asarray(values, dtype=np.float64)
    return [float(v) if np.isfinite(v) else (1.0 if v > 0 else 0.0) for v in arr]


def curve_data(y_true, proba, max_points: int = 200, scale: ScoreScale | None = None) -> dict[str, Any]:
    """ROC, PR, calibration, gains/lift and score-band data as plain JSON-ready lists (the bands on ``scale``'s
    scores: the run's, or the older probability scale)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    y, p = _as_arrays(y_true, proba)
    out: dict[str, Any] = {}
    if len(np.unique(y)) == 2:
        fpr, tpr, thr = roc_curve(y, p)
        keep = _downsample(len(fpr), max_points)
        out["roc"] = {
            "fpr": _finite_list(fpr[keep]),
            "tpr": _finite_list(tpr[keep]),
            "thresholds": _finite_list(thr[keep]),
        }
        prec, rec, thr = precision_recall_curve(y, p)
        thr = np.r_[thr, 1.0]  # sklearn gives one threshold fewer than points
        keep = _downsample(len(prec), max_points)
        out["pr"] = {
            "precision": _finite_list(prec[keep]),
            "recall": _finite_list(rec[keep]),
            "thresholds": _finite_list(thr[keep]),
            "base_rate": float(y.mean()),
        }
    else:
        out["roc"] = {"fpr": [], "tpr": [], "thresholds": []}
        out["pr"] = {"precision": [], "recall": [], "thresholds": [], "base_rate": float(y.mean())}

    bins = np.minimum((p * 10).astype(int), 9)
    calib = {"bin_low": [], "bin_high": [], "mean_predicted": [], "observed_rate": [], "count": []}
    for b in range(10):
        mask = bins == b
        if mask.any():
            calib["bin_low"].append(b / 10)
            calib["bin_high"].append((b + 1) / 10)
            calib["mean_predicted"].append(float(p[mask].mean()))
            calib["observed_rate"].append(float(y[mask].mean()))
            calib["count"].append(int(mask.sum()))
    out["calibration"] = calib

    # cumulative gains: share of all conversions found in the top k % of leads by score
    order = np.argsort(-p, kind="mergesort")
    cum_pos = np.cumsum(y[order])
    total_pos = max(int(y.sum()), 1)
    n = len(y)

    def gains_at(fractions: np.ndarray) -> dict:
        k = np.maximum(np.ceil(fractions * n).astype(int), 1)
        captured = cum_pos[k - 1] / total_pos
        rate = cum_pos[k - 1] / k
        return {
            "fraction": [float(f) for f in fractions],
            "captured": _finite_list(captured),
            "lift": _finite_list(captured / fractions),
            "conversion_rate": _finite_list(rate),
        }

    out["gains"] = gains_at(np.arange(1, 101) / 100)
    out["deciles"] = gains_at(np.arange(1, 11) / 10)

    scores = scale.score(p) if scale is not None else to_score(p)
    bands = {"band": [], "low": [], "high": [], "count": [], "converted": [], "conversion_rate": []}
    for low, high in SCORE_BANDS:
        mask = (scores >= low) & (scores <= high)
        bands["band"].append(f"{low}-{high}")
        bands["low"].append(low)
        bands["high"].append(high)
        bands["count"].append(int(mask.sum()))
        bands["converted"].append(int(y[mask].sum()))
        bands["conversion_rate"].append(float(y[mask].mean()) if mask.any() else None)
    out["score_bands"] = bands
    out["n"] = int(n)
    out["positives"] = int(y.sum())
    return out


# -- thresholds -------------------------------------------------------------------------------------
def choose_threshold(
    y_true, proba, method: str = "f1", cost_per_call: float = 1.0, value_per_conversion: float = 10.0
) -> float:
    """Pick a decision threshold on P(convert).

    * ``"f1"``: maximise F1;
    * ``"youden"``: maximise TPR - FPR (Youden's J);
    * ``"cost"``: maximise expected profit when every lead at or above the threshold is called:
      ``value_per_conversion * conversions reached - cost_per_call * calls``.
    """
    y, p = _as_arrays(y_true, proba)
    thresholds = np.unique(p)[::-1]  # candidate thresholds, high to low
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    # counts at or above each distinct threshold
    ends = np.searchsorted(-ps, -thresholds, side="right")
    cum_tp = np.r_[0, np.cumsum(ys)]
    tp = cum_tp[ends].astype(np.float64)
    called = ends.astype(np.float64)
    fp = called - tp
    P = max(y.sum(), 1)
    N = max(len(y) - y.sum(), 1)
    if method == "f1":
        fn = y.sum() - tp
        score = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    elif method == "youden":
        score = tp / P - fp / N
    elif method == "cost":
        score = value_per_conversion * tp - cost_per_call * called
        if score.max() <= 0:  # calling nobody is best: threshold above every score
            return float(min(1.0, p.max() + 1e-9))
    else:
        raise ValueError(f"Unknown threshold method {method!r}; use 'f1', 'youden' or 'cost'")
    return float(thresholds[int(np.argmax(score))])


def confusion_at(y_true, proba, threshold: float) -> dict[str, float]:
    """Confusion counts and rates when leads with P(convert) >= threshold are predicted to convert."""
    y, p = _as_arrays(y_true, proba)
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "accuracy": (tp + tn) / len(y) if len(y) else 0.0,
        "called_share": float(pred.mean()) if len(y) else 0.0,
    }


# -- timing -----------------------------------------------------------------------------------------
def time_scoring(approach, X, n_one: int = 20) -> dict[str, float]:
    """Batch throughput over all of ``X`` and the median latency of single-row calls."""
    if len(X) == 0:
        raise ValueError("X is empty; pass at least one row to time scoring")
    approach.predict_proba(X.iloc[:2])  # warm-up (lazy imports, caches)
    start = time.perf_counter()
    approach.predict_proba(X)
    batch = time.perf_counter() - start
    singles = []
    for i in range(min(n_one, len(X))):
        row = X.iloc[[i]]
        start = time.perf_counter()
        approach.predict_proba(row)
        singles.append(time.perf_counter() - start)
    return {"score_rows_per_second": float(len(X) / max(batch, 1e-9)), "score_one_ms": float(np.median(singles) * 1000)}


# -- words for the board ----------------------------------------------------------------------------
#: metric -> (name shown to a user, one line of help). Higher is better except for ``LOWER_IS_BETTER``.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "roc_auc": (
        "ROC-AUC",
        "Chance that a converting lead is ranked above one that does not (0.5 = a coin toss, 1 = perfect). `roc_auc`",
    ),
    "pr_auc": (
        "PR-AUC",
        "How precise the calls stay as you go down the ranked list, averaged over all lengths of "
        "the list; calling at random gives the conversion rate. Average precision, `pr_auc`",
    ),
    "accuracy": (
        "Accuracy",
        "Share of test leads predicted right when leads at or above 50 % are called "
        "'will convert'. Compare it with the base rate: predicting the larger class for every "
        "lead already scores that much. `accuracy`",
    ),
    "f1": ("F1", "Balance of precision and recall at the 50 % threshold (their harmonic mean). `f1`"),
    "precision": (
        "Precision",
        "Of the leads called 'will convert' (50 % or more), the share that converted. `precision`",
    ),
    "recall": (
        "Recall",
        "Of the leads that converted, the share the model called 'will convert' (50 % or more). `recall`",
    ),
    "brier": (
        "Brier score",
        "Mean squared gap between the predicted chance and what happened (0 is perfect; lower is better). `brier`",
    ),
    "log_loss": ("Log loss", "Penalty for confident wrong predictions (lower is better). `log_loss`"),
    "ece": (
        "Calibration error",
        "How far the predicted chances are from the observed conversion rates, averaged over "
        "ten bands of the chance (lower is better). Expected calibration error, `ece`",
    ),
}
#: the board's two groups of metrics: how well leads are ordered and called, and how trustworthy the chances are
RANKING_METRICS = ["roc_auc", "pr_auc"]
CALL_METRICS = ["accuracy", "f1", "precision", "recall"]
CALIBRATION_METRICS = ["brier", "log_loss", "ece"]
LOWER_IS_BETTER = {"brier", "log_loss", "ece"}
#: the parts an approach is made of (``metrics["variants"]``), in a user's words
PART_LABELS = {
    "lr": "logistic regression",
    "rf": "random forest",
    "xgb": "XGBoost",
    "svc": "support-vector machine",
    # the stack's base models as runs saved before they were a list of (name, estimator) name them
    "logistic_regression": "logistic regression",
    "random_forest": "random forest",
    "xgboost": "XGBoost",
    "generic_embeddings": "generic embeddings",
}


def baseline_metrics(base_rate: float) -> dict[str, float]:
    """The metrics of no model at all: every lead gets the conversion rate ``base_rate`` as its chance.

    At the 50 % threshold that predicts the larger class for every lead, so accuracy is the larger class's share
    and precision, recall and F1 are those of calling everyone (base rate >= 0.5) or nobody (0 each). Ranking is a
    coin toss (ROC-AUC 0.5, PR-AUC = the base rate); the chances are right on average (calibration error 0) but
    say nothing about any one lead (Brier = p(1-p), log loss = the entropy of p)."""
    p = float(base_rate)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"base_rate must be a share between 0 and 1, not {base_rate!r}")
    pc = min(max(p, _EPS), 1 - _EPS)
    everyone = p >= 0.5
    return {
        "accuracy": max(p, 1 - p),
        "precision": p if everyone else 0.0,
        "recall": 1.0 if everyone else 0.0,
        "f1": 2 * p / (1 + p) if everyone else 0.0,
        "roc_auc": 0.5,
        "pr_auc": p,
        "brier": p * (1 - p),
        "log_loss": float(-(p * np.log(pc) + (1 - p) * np.log(1 - pc))),
        "ece": 0.0,
    }


def baseline_calls(base_rate: float) -> dict[str, dict[str, float]]:
    """The calls of no model: ``{"nobody": ..., "everyone": ...}``, each with accuracy, F1, precision and recall,
    when no lead or every lead is called (``base_rate``: the share that converted). Calling nobody is right for
    every lead that did not convert; calling everyone finds every conversion at the base rate's precision."""
    p = float(base_rate)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"base_rate must be a share between 0 and 1, not {base_rate!r}")
    return {
        "nobody": {"accuracy": 1 - p, "f1": 0.0, "precision": 0.0, "recall": 0.0},
        "everyone": {"accuracy": p, "f1": 2 * p / (1 + p) if p else 0.0, "precision": p, "recall": 1.0},
    }


def _value(entry) -> float | None:
    v = entry.get("value") if isinstance(entry, dict) else entry
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def _bounds(entry) -> tuple[float, float] | None:
    if not isinstance(entry, dict):
        return None
    low, high = entry.get("low"), entry.get("high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and np.isfinite(low) and np.isfinite(high):
        return float(low), float(high)
    return None


def board_findings(runs: list[dict], metric: str = "roc_auc") -> list[str]:
    """What the board's numbers say, in sentences, best news first.

    ``runs``: one dict per run, ``{"label": str, "approach": str, "untrained_part": the approach's hook
    (optional), "metrics": metrics.json's "metrics",
    "variants": metrics.json's "variants" (optional), "base_rate": share of converting test leads (optional)}``.
    Finds the best run on ``metric`` and its lead over the next (and whether their 95 % intervals overlap), an
    approach that is below one of its own parts (a stack below its random forest, fine-tuned embeddings below
    generic ones), runs trained on other columns than the best one (``"columns"``: the run's training columns,
    optional), runs using columns the leak finder flagged (``"flagged"``, first), and a run whose accuracy is not clearly above that of predicting the larger class for every lead.
    Pure: no files, no Streamlit."""
    name = METRIC_LABELS.get(metric, (metric, ""))[0]
    lower = metric in LOWER_IS_BETTER
    scored = [(r, _value((r.get("metrics") or {}).get(metric))) for r in runs]
    scored = [(r, v) for r, v in scored if v is not None]
    scored.sort(key=lambda rv: rv[1], reverse=not lower)
    out: list[str] = []
    if len(scored) == 1:
        r, v = scored[0]
        out.append(f"{r['label']} has {name} {v:.3f}.")
    elif len(scored) > 1:
        (best, bv), (second, sv) = scored[0], scored[1]
        gap = abs(bv - sv)
        b_int, s_int = _bounds(best["metrics"][metric]), _bounds(second["metrics"][metric])
        if b_int and s_int:
            overlap = b_int[0] <= s_int[1] and s_int[0] <= b_int[1]
            verdict = (
                "their 95 % intervals overlap, so the lead may be chance"
                if overlap
                else "their 95 % intervals do not overlap"
            )
        else:
            verdict = "no intervals to tell whether that is more than chance"
        if gap < 0.0005:
            out.append(f"{best['label']} and {second['label']} are level on {name} ({bv:.3f}).")
        else:
            out.append(
                f"Best on {name}: {best['label']} ({bv:.3f}), {gap:.3f} {'below' if lower else 'above'} "
                f"{second['label']} ({sv:.3f}); {verdict}."
            )
    for r in runs:
        whole = _value((r.get("metrics") or {}).get(metric))
        parts = {k: _value(v.get(metric)) for k, v in (r.get("variants") or {}).items() if isinstance(v, dict)}
        parts = {k: v for k, v in parts.items() if v is not None}
        if whole is None or not parts:
            continue
        part, pv = (min if lower else max)(parts.items(), key=lambda kv: kv[1])
        part_name = PART_LABELS.get(part, part.replace("_", " "))
        worse = pv < whole if lower else pv > whole
        # the part minus the whole on the same test rows, with its paired interval (runs trained since it is kept)
        paired = _bounds(((r.get("variants") or {}).get(part, {}).get("paired_vs_run") or {}).get(metric))
        if round(pv, 3) == round(whole, 3) or (paired and paired[0] <= 0 <= paired[1]):
            within = (
                f" (the paired 95 % interval of the difference, {paired[0]:+.3f} to {paired[1]:+.3f}, holds 0)"
                if paired
                else ""
            )
            out.append(
                f"In {r['label']}, the whole ({whole:.3f}) and its best part, the {part_name} ({pv:.3f}), are the "
                f"same on {name} within the interval{within}."
            )
            continue
        if part == r.get("untrained_part"):  # the approach without its own training (generic embeddings)
            if worse:
                out.append(
                    f"In {r['label']}, the trained model ({whole:.3f}) is below its untrained part, the {part_name} "
                    f"({pv:.3f}), on {name}: its own training did not help on this data."
                )
            continue
        if worse:
            out.append(
                f"{r['label']} ({whole:.3f}) is below its own {part_name} ({pv:.3f}) on {name}: the "
                f"{part_name} alone would rank leads better."
            )
        elif len(parts) > 1:
            out.append(f"{r['label']} ({whole:.3f}) is above its best part, the {part_name} ({pv:.3f}), on {name}.")
    for r in runs:
        flagged = r.get("flagged")
        if isinstance(flagged, dict) and flagged:
            cols = ", ".join(f"'{c}'" for c in list(flagged)[:4]) + (
                f" and {len(flagged) - 4} more" if len(flagged) > 4 else ""
            )
            out.insert(
                0,
                f"{r['label']} uses {cols}, which the leak finder flagged as likely filled in after contact: its "
                f"numbers may not hold on new leads. Exclude {'it' if len(flagged) == 1 else 'them'} on the Data "
                "page and train again.",
            )
    if scored:
        out.extend(_column_differences(scored[0][0], [r for r in runs if r is not scored[0][0]]))
    for r in runs:
        auc = (r.get("metrics") or {}).get("roc_auc")
        bounds, av = _bounds(auc), _value(auc)
        if av is not None and bounds and bounds[0] <= 0.5:
            out.append(
                f"{r['label']}'s ROC-AUC ({av:.3f}, 95 % interval {bounds[0]:.3f} to {bounds[1]:.3f}) includes 0.5: "
                "possibly no better than chance at ranking these leads."
            )
    for r in runs:
        acc, base = (r.get("metrics") or {}).get("accuracy"), r.get("base_rate")
        av = _value(acc)
        if av is None or not isinstance(base, (int, float)):
            continue
        majority = max(float(base), 1 - float(base))
        bounds = _bounds(acc)
        who = "'will not convert'" if base < 0.5 else "'will convert'"
        if av <= majority:
            out.append(
                f"{r['label']}'s accuracy ({av:.3f}) is not above the {majority:.3f} of predicting {who} "
                "for every lead: judge it by how it ranks leads and by the decisions at a threshold."
            )
        elif bounds and bounds[0] <= majority:
            out.append(
                f"{r['label']}'s accuracy ({av:.3f}) is not clearly above the {majority:.3f} of predicting "
                f"{who} for every lead (its interval starts at {bounds[0]:.3f})."
            )
    return out


def _column_differences(best: dict, others: list[dict]) -> list[str]:
    """A sentence for each run trained on other columns than ``best``: a column only one of them used can be what
    sets their numbers apart (a field filled in after contact, most often), so the board does not compare them
    as if they were alike."""

    def listed(columns: list[str]) -> str:
        shown = ", ".join(f"'{c}'" for c in columns[:4])
        return shown + (f" and {len(columns) - 4} more" if len(columns) > 4 else "")

    out = []
    mine = best.get("columns")
    if not isinstance(mine, list):
        return out
    for r in others:
        theirs = r.get("columns")
        if not isinstance(theirs, list) or set(theirs) == set(mine):
            continue
        extra = [c for c in mine if c not in set(theirs)]
        missing = [c for c in theirs if c not in set(mine)]
        what = []
        if extra:
            what.append(f"{best['label']} also used {listed(extra)}")
        if missing:
            what.append(f"{r['label']} also used {listed(missing)}")
        out.append(
            f"{best['label']} and {r['label']} were trained on different columns ({'; '.join(what)}): part of the "
            "difference between them may come from those columns. Check how they are filled in before trusting it."
        )
    return out
