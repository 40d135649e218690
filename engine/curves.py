"""Learning curves: each approach fitted on nested, stratified subsets of the protocol's training rows and scored
on the same test rows at every size.

* **Subsets** (:func:`nested_order`): for each seed, one order of the training rows whose every prefix holds the
  training rows' share of converted leads (within one row); the subset of ``n`` rows is the first ``n`` rows of
  that order, so the subsets of one seed are nested (50 rows inside 100 inside 300...). Seed 0 at every size;
  sizes below ``seeded_below`` also get seeds 1... (their spread across draws is large: the curve reports it).
* **Points** (:func:`fit_point`): ``clone(approach)`` fitted on the subset's rows only (an approach that
  calibrates takes its calibration slice out of those rows: it is given nothing else), scored on the test rows:
  ROC-AUC and accuracy with 95 % bootstrap intervals, fit time and scoring speed.
* **Where they run** (:func:`run_points`): here, one after the other (quick approaches first, the ones that want a
  GPU after), or with a Ray address as parallel Ray tasks, each asking for one CPU (one GPU for an approach that
  wants one, when the cluster has GPUs); every finished point is handed to ``on_point`` as it lands.

The JSON file a curve is written to, and resuming from it, are :mod:`engine.benchmarks.curve`'s.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.callbacks import Callback, Progress, TrainingCancelled
from engine.config import REPO_ROOT
from engine.evaluate import compute_metrics

#: How subsets are drawn (a curve written with another version is not resumed: its subsets would differ).
SUBSETS_VERSION = 1
DEFAULT_SIZES: tuple[int | str, ...] = (50, 100, 300, 1000, 3000, "all")
#: Draws (seeds) of each size below :data:`SEEDED_BELOW` rows; larger sizes get one.
DEFAULT_SEEDS = 3
SEEDED_BELOW = 1000
#: Single-row scoring calls timed per point (the median is reported).
ONE_ROW_CALLS = 5


@dataclass(frozen=True, order=True)
class PointKey:
    approach: str
    size: int
    seed: int

    def words(self) -> str:
        return f"{self.approach} on {self.size:,} rows (seed {self.seed})"


def nested_order(y_train, seed: int) -> np.ndarray:
    """Positions ``0..len(y_train)-1`` in an order whose every prefix of ``n`` rows holds ``round(n * rate)``
    converted rows (``rate``: their share in ``y_train``): stratified at every size, nested by construction. The
    converted and the other rows are each shuffled with ``seed``, then interleaved (exact integer arithmetic)."""
    y = np.asarray(y_train).astype(int).ravel()
    n_rows, n_pos = len(y), int(y.sum())
    rng = np.random.default_rng(seed)
    positives, negatives = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    prefix = np.arange(n_rows + 1, dtype=np.int64)
    due = (2 * prefix * n_pos + n_rows) // (2 * n_rows)  # round(n * n_pos / n_rows), halves up
    is_positive = np.diff(due) == 1
    order = np.empty(n_rows, dtype=np.int64)
    order[is_positive] = positives
    order[~is_positive] = negatives
    return order


def resolve_sizes(sizes: Iterable[int | str], n_train: int) -> tuple[list[int], list[str]]:
    """Sizes as row counts (``"all"``: every training row), ascending and once each, and notes for the sizes above
    the training rows (each capped at all of them). A size below 1 or that is not a whole number is refused."""
    out, notes = set(), []
    for size in sizes:
        if isinstance(size, str) and size.strip().lower() == "all":
            out.add(n_train)
            continue
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise ValueError(f"size {size!r} is not a whole number of rows; give e.g. 50,100,300,all")
        if size < 1:
            raise ValueError(f"size {size} is below 1 row; give sizes of at least 1 row, e.g. 50,100,300,all")
        if size > n_train:
            notes.append(f"size {size:,} is above the {n_train:,} training rows: capped at all of them")
        out.add(min(int(size), n_train))
    if not out:
        raise ValueError("no sizes given; give e.g. 50,100,300,all")
    return sorted(out), notes


def seeds_for(size: int, n_train: int, seeds: int, seeded_below: int) -> list[int]:
    """The draws of a size: ``seeds`` of them below ``seeded_below`` rows (and below every training row: all of
    them are one draw), seed 0 alone otherwise."""
    return list(range(max(1, int(seeds)))) if size < min(seeded_below, n_train) else [0]


def rows_fingerprint(positions) -> str:
    """sha256 of row positions: names a split (or a subset) in a curve's JSON."""
    return hashlib.sha256(np.asarray(positions, dtype=np.int64).tobytes()).hexdigest()


@dataclass
class Curve:
    """What the points of a curve share: the table, the split, and the per-seed orders of the training rows."""

    X: pd.DataFrame
    y: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray

    def __post_init__(self):
        self._orders: dict[int, np.ndarray] = {}

    @property
    def y_train(self) -> np.ndarray:
        return self.y[self.train_idx]

    def subset(self, size: int, seed: int) -> np.ndarray:
        """Row positions (into ``X``) of the subset of ``size`` training rows drawn with ``seed``."""
        if seed not in self._orders:
            self._orders[seed] = nested_order(self.y_train, seed)
        if not 1 <= size <= len(self.train_idx):
            raise ValueError(f"size {size} is outside 1..{len(self.train_idx)} training rows")
        return self.train_idx[self._orders[seed][:size]]

    def check_sizes(self, approaches: dict[str, Any], sizes: list[int]) -> None:
        """Refuse, before any fit, a size whose subset holds fewer rows of a class than an approach needs."""
        rate = float(self.y_train.mean())
        for size in sizes:
            n_pos = (2 * size * int(self.y_train.sum()) + len(self.y_train)) // (2 * len(self.y_train))
            fewest = min(n_pos, size - n_pos)
            for name, estimator in approaches.items():
                need = int(estimator._min_per_class()) if hasattr(estimator, "_min_per_class") else 2
                if fewest < need:
                    smallest = int(np.ceil(need / max(min(rate, 1 - rate), 1e-9)))
                    raise ValueError(
                        f"size {size} holds only {fewest} rows of the rarer class; the {name} approach needs "
                        f"{need} of each class. Give sizes of at least {smallest} rows."
                    )


def fit_point(
    estimator, X_fit: pd.DataFrame, y_fit, X_test: pd.DataFrame, y_test, n_boot: int, callbacks=None
) -> dict[str, Any]:
    """``clone(estimator)`` fitted on ``X_fit`` only and scored on the test rows: the numbers of one point."""
    from sklearn.base import clone

    model = clone(estimator)
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(X_fit, y_fit, callbacks=callbacks)
    fit_seconds, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    model.predict_proba(X_test.iloc[:2])  # warm-up (lazy imports, caches), as time_scoring does
    started = time.perf_counter()
    proba = np.asarray(model.predict_proba(X_test))[:, 1]
    batch = time.perf_counter() - started
    singles = []
    for i in range(min(ONE_ROW_CALLS, len(X_test))):
        started = time.perf_counter()
        model.predict_proba(X_test.iloc[[i]])
        singles.append(time.perf_counter() - started)
    metrics = compute_metrics(y_test, proba, n_boot=n_boot)
    return {
        "roc_auc": metrics["roc_auc"]["value"],
        "roc_auc_ci": [metrics["roc_auc"]["low"], metrics["roc_auc"]["high"]],
        "accuracy": metrics["accuracy"]["value"],
        "accuracy_ci": [metrics["accuracy"]["low"], metrics["accuracy"]["high"]],
        "pr_auc": metrics["pr_auc"]["value"],
        "fit_seconds": float(fit_seconds),
        "fit_cpu_seconds": float(fit_cpu),
        "score_rows_per_second": float(len(X_test) / max(batch, 1e-9)),
        "score_one_ms": float(np.median(singles) * 1000) if singles else None,
        "positives": int(np.sum(y_fit)),
    }


def _fit_point_task(estimator, X_fit, y_fit, X_test, y_test, n_boot):  # pragma: no cover - runs in a Ray worker
    return fit_point(estimator, X_fit, y_fit, X_test, y_test, n_boot)


def point_order(keys: Iterable[PointKey], approaches: dict[str, Any]) -> list[PointKey]:
    """Quick approaches first (all their sizes, smallest first), then the ones that want a GPU (the LLM's long
    points), smallest first: a curve shows its quick lines early."""
    names = list(approaches)

    def slow(name: str) -> bool:
        return bool(getattr(approaches[name], "wants_gpu", False))

    return sorted(keys, key=lambda k: (slow(k.approach), k.size, names.index(k.approach), k.seed))


class _CancelCheck(Callback):
    """Forwards an approach's progress to the curve's (which writes the job's progress file and raises
    :class:`engine.callbacks.TrainingCancelled` when the job is cancelled)."""

    def __init__(self, report: Callable[[Progress | None], None]):
        self.report = report

    def on_step_end(self, progress: Progress) -> None:
        self.report(progress)


def run_points(
    curve: Curve,
    approaches: dict[str, Any],
    keys: list[PointKey],
    on_point: Callable[[PointKey, dict], None],
    *,
    n_boot: int = 1000,
    callbacks: list[Callback] | None = None,
    ray_address: str | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Fit every point of ``keys`` (in :func:`point_order`) and hand each to ``on_point`` as it lands; here, or as
    Ray tasks when ``ray_address`` is given. ``callbacks`` get a ``curve`` progress report per point (and the
    approach's own steps here); a callback raising :class:`~engine.callbacks.TrainingCancelled` stops the curve
    (the points handed over so far stay)."""
    keys = point_order(keys, approaches)
    total, done = len(keys), 0

    def report(done: int, inner: Progress | None = None) -> None:
        extra = {"points_done": done, "points": total}
        if inner is not None:
            extra.update(point_step=inner.step, point_total=inner.total, point_stage=inner.stage)
        progress = Progress(step=done, total=total, stage="curve", extra=extra)
        for cb in callbacks or []:
            cb.on_step_end(progress)

    if not keys:
        return
    X_test, y_test = curve.X.iloc[curve.test_idx], curve.y[curve.test_idx]
    if ray_address:
        _run_on_ray(curve, approaches, keys, on_point, n_boot, ray_address, report, log)
        return
    for key in keys:
        report(done)
        rows = curve.subset(key.size, key.seed)
        log(f"[{done + 1}/{total}] fitting {key.words()}")
        point = fit_point(
            approaches[key.approach],
            curve.X.iloc[rows],
            curve.y[rows],
            X_test,
            y_test,
            n_boot,
            callbacks=[_CancelCheck(functools.partial(report, done))],
        )
        done += 1
        on_point(key, point)
    report(done)


def ray_init_address(address: str) -> str:
    """What ``ray.init`` takes for ``address``: ``host:port``, ``ray://...`` and ``auto`` as they are; the
    dashboard's ``http(s)://`` address (the one the job runner submits to) as ``auto``, the cluster this machine
    belongs to (a curve job that Ray runs is on one of its nodes)."""
    return "auto" if address.startswith(("http://", "https://")) else address


def _ray_env() -> dict[str, str]:
    """The variables Ray workers need to import this engine and its plug-ins and to stay offline."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env = {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for name in ("CLAB_APPROACHES", "CLAB_CACHE"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _run_on_ray(curve, approaches, keys, on_point, n_boot, address, report, log) -> None:
    import ray

    init_address = ray_init_address(address)
    saved = os.environ.pop("RAY_ADDRESS", None)  # ray.init reads it before its argument: the http one would win
    try:
        ray.init(address=init_address, runtime_env={"env_vars": _ray_env()}, log_to_driver=False)
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0)) > 0
        task = ray.remote(_fit_point_task)
        X_test = ray.put(curve.X.iloc[curve.test_idx])
        y_test = ray.put(curve.y[curve.test_idx])
        pending = {}
        for key in keys:
            rows = curve.subset(key.size, key.seed)
            wants_gpu = gpus and bool(getattr(approaches[key.approach], "wants_gpu", False))
            options = {"num_cpus": 1, "num_gpus": 1 if wants_gpu else 0, "max_retries": 0}
            ref = task.options(**options).remote(
                approaches[key.approach], curve.X.iloc[rows], curve.y[rows], X_test, y_test, n_boot
            )
            pending[ref] = key
        log(f"{len(pending)} points sent to Ray at {address} as tasks")
        done = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            try:
                report(done)
            except TrainingCancelled:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
            for ref in ready:
                key = pending.pop(ref)
                done += 1
                log(f"[{done}/{len(keys)}] {key.words()} came back from Ray")
                on_point(key, ray.get(ref))
        report(done)
    finally:
        ray.shutdown()
