"""Benchmark of the stacking approach on a lead table, with its base models and two peers.

``run_leads_bench(data, json_out)`` loads the table (``engine.data.leads.load_leads``), makes the
protocol split, fits the stack on the training rows and scores on the test rows:

* ``stacking`` — the shipped approach;
* ``lr``, ``rf``, ``xgb``, ``svc`` (the stack's base models by name) — its base models standalone
  (probabilities from the stack's own refit; ``fit_seconds`` from refitting each alone);
* ``peer_sklearn_stacking`` — scikit-learn's ``StackingClassifier`` with the same four base models on the
  same preprocessing and a logistic-regression meta-model;
* ``peer_xgboost_default`` — a default ``XGBClassifier()`` on the same preprocessed features.

Prints a board table and writes JSON ``{"dataset", "rows", "policy", "split", "models": {...}}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.evaluate import calibration_slice, compute_metrics, protocol_split, time_scoring

BOARD_KEYS = ["accuracy", "roc_auc", "pr_auc", "f1", "brier"]


class _FixedFeatureModel:
    """A fitted sklearn-style classifier behind the stack's fitted preprocessing (for timing peers)."""

    def __init__(self, features, model):
        self.features = features
        self.model = model

    def predict_proba(self, X):
        return self.model.predict_proba(self.features.transform(X))


class _BaseModelView:
    """One base model of a fitted stack, seen as an approach (for timing)."""

    def __init__(self, stack, name: str):
        self.stack = stack
        self.name = name

    def predict_proba(self, X):
        p = self.stack.base_predict_proba(X, models=[self.name])[self.name]
        return np.column_stack([1 - p, p])


def _row(
    y, proba, fit_seconds: float, timing: dict[str, float], n_boot: int, fit_cpu_seconds: float | None = None
) -> dict[str, Any]:
    metrics = compute_metrics(y, proba, n_boot=n_boot)
    row: dict[str, Any] = {key: metrics[key]["value"] for key in BOARD_KEYS}
    row["intervals"] = {key: [metrics[key]["low"], metrics[key]["high"]] for key in BOARD_KEYS}
    row["fit_seconds"] = float(fit_seconds)
    if fit_cpu_seconds is not None:  # CPU time of this process: comparable on a shared machine
        row["fit_cpu_seconds"] = float(fit_cpu_seconds)
    row.update({k: float(v) for k, v in timing.items()})
    return row


def _dataset_name(data) -> str:
    if isinstance(data, (str, Path)):
        return str(data)
    if isinstance(data, (bytes, bytearray)):
        return "upload"
    return str(getattr(data, "name", type(data).__name__))


def table_summary(data, table, train_idx, test_idx, seed: int, y_test) -> dict[str, Any]:
    """What a lead bench's JSON says of its table and split (the stack's and the LLM's benches alike)."""
    return {
        "dataset": _dataset_name(data),
        "rows": int(len(table.y)),
        "features": int(table.X.shape[1]),
        "policy": table.policy,
        "excluded": list(table.excluded),
        "split": {
            "protocol": "stratified",
            "test_size": 0.3,
            "seed": seed,
            "train_rows": int(len(train_idx)),
            "test_rows": int(len(test_idx)),
            "test_positive_rate": float(np.mean(y_test)),
        },
    }


def _load_average() -> list[float] | None:
    """The machine's 1/5/15-minute load: timings on a shared machine need it to be read."""
    try:
        import os

        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def print_board(result: dict) -> None:
    header = f"{'model':<24}{'acc':>7}{'auc':>7}{'pr_auc':>8}{'f1':>7}{'brier':>7}{'fit s':>8}{'rows/s':>10}{'1 ms':>7}"
    print(f"{result['dataset']}  rows={result['rows']}  policy={result['policy']}  split={result['split']}")
    print(header)
    print("-" * len(header))
    for name, m in result["models"].items():
        print(
            f"{name:<24}{m['accuracy']:>7.4f}{m['roc_auc']:>7.4f}{m['pr_auc']:>8.4f}{m['f1']:>7.4f}"
            f"{m['brier']:>7.4f}{m['fit_seconds']:>8.1f}{m['score_rows_per_second']:>10.0f}{m['score_one_ms']:>7.1f}"
        )


def run_leads_bench(
    data,
    json_out: str | Path | None = None,
    target: str | None = None,
    leak_policy: str = "default",
    seed: int = 42,
    params: dict | None = None,
    n_boot: int = 200,
    verbose: bool = True,
    calibration_share: float = 0.0,
) -> dict:
    """Fit and score the stack, its base models and two peers on the protocol split; see module doc.
    ``calibration_share``: the training rows a lead run keeps out of its fit for blends
    (:func:`engine.evaluate.calibration_slice`; 0, the default here, fits on every training row)."""
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from xgboost import XGBClassifier

    from engine.approaches.stacking import StackingApproach  # heavy: loads scikit-learn
    from engine.benchmarks.api import machine_summary  # heavy: loads scikit-learn
    from engine.data.leads import load_leads  # heavy: loads pandas

    table = load_leads(data, target=target, leak_policy=leak_policy)
    X, y = table.X, table.y
    train_idx, test_idx = protocol_split(y, seed=seed)
    train_idx, held = calibration_slice(y, train_idx, calibration_share, seed=seed)
    Xtr, Xte, ytr, yte = X.iloc[train_idx], X.iloc[test_idx], y[train_idx], y[test_idx]
    models: dict[str, dict] = {}

    stack = StackingApproach(**(params or {}))
    start, cpu = time.perf_counter(), time.process_time()
    stack.fit(Xtr, ytr)
    stack_fit, stack_cpu = time.perf_counter() - start, time.process_time() - cpu
    proba = stack.predict_proba(Xte)[:, 1]
    models["stacking"] = _row(yte, proba, stack_fit, time_scoring(stack, Xte), n_boot, stack_cpu)
    if verbose:
        print(f"stacking fitted in {stack_fit:.1f}s", flush=True)

    # base models standalone: probabilities from the stack's refit, fit time from refitting alone
    # the same preprocessing state as the stack's refit (deterministic), fitted into a separate object
    features = stack._features()
    Zfit = features.fit_transform(Xtr, ytr)
    base = stack.base_predict_proba(Xte)
    for name in stack.base_names_:
        model = stack.make_base_models()[name]
        start = time.perf_counter()
        stack._fit_one(name, model, Zfit, ytr)
        fit_s = time.perf_counter() - start
        models[name] = _row(yte, base[name], fit_s, time_scoring(_BaseModelView(stack, name), Xte), n_boot)

    # peers on the same preprocessing
    estimators = list(stack.make_base_models().items())
    peer = StackingClassifier(
        estimators=estimators,
        final_estimator=LogisticRegression(max_iter=1000),
        cv=StratifiedKFold(stack.n_folds, shuffle=True, random_state=stack.seed),
        n_jobs=1,
    )
    start, cpu = time.perf_counter(), time.process_time()
    peer.fit(Zfit, ytr)
    peer_fit, peer_cpu = time.perf_counter() - start, time.process_time() - cpu
    view = _FixedFeatureModel(features, peer)
    models["peer_sklearn_stacking"] = _row(
        yte, view.predict_proba(Xte)[:, 1], peer_fit, time_scoring(view, Xte), n_boot, peer_cpu
    )

    xgb = XGBClassifier()
    start = time.perf_counter()
    xgb.fit(Zfit, ytr)
    xgb_fit = time.perf_counter() - start
    view = _FixedFeatureModel(features, xgb)
    models["peer_xgboost_default"] = _row(yte, view.predict_proba(Xte)[:, 1], xgb_fit, time_scoring(view, Xte), n_boot)

    result = {
        **table_summary(data, table, train_idx, test_idx, seed, yte),
        "calibration_rows_held_out": int(len(held)),
        "params": stack.stored_params(),
        "models": models,
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
        "load": _load_average(),
    }
    if verbose:
        print_board(result)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2))
    return result
