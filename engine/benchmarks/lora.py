"""Benchmark of the LoRA approach on a lead table (default base: the shipped SmolLM2-135M-Instruct).

``run_lora_bench(data, json_out)`` loads the table (``engine.data.leads.load_leads``, default leak policy),
makes the protocol split (``engine.evaluate.protocol_split``: stratified 70/30, seed 42), fine-tunes on the
training rows (``train_rows`` caps them with a stratified sample; the left-over training rows calibrate),
scores every test row and writes JSON ``{"dataset", "rows", "policy", "split", "models": {"lora": {...}}}``
with accuracy, ROC-AUC, PR-AUC, F1, Brier (plus 95% bootstrap intervals), fit seconds, seconds per training
step, scoring throughput / single-lead latency and peak memory.
"""

from __future__ import annotations

import os

from engine.benchmarks.leads import table_summary
from engine.evaluate import compute_metrics, protocol_split

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: don't spin-wait in OpenMP barriers

import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.approaches.lora_presets import (  # noqa: F401 - CPU_PRESET, BF16_CPU_PRESET are read from here too
    BF16_CPU_PRESET,
    CPU_PRESET,
    cpu_preset,
)

BOARD_KEYS = ["accuracy", "roc_auc", "pr_auc", "f1", "brier"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_lora_bench(
    data,
    json_out: str | Path | None = None,
    train_rows: int | None = None,
    epochs: int | None = None,
    target: str | None = None,
    leak_policy: str = "default",
    seed: int = 42,
    test_rows: int | None = None,
    n_boot: int = 1000,
    n_one: int = 5,
    preset: str | None = "cpu",
    callbacks: list | None = None,
    verbose: bool = True,
    **params: Any,
) -> dict:
    """Fit LoRA on the protocol training split of ``data`` and score its test split.

    ``preset="cpu"`` starts from :func:`cpu_preset` (fits in ~30 min on 2 CPU cores); ``preset=None`` starts
    from the approach defaults. ``train_rows``, ``epochs`` and any other ``LoraApproach`` keyword in
    ``params`` override the preset. ``test_rows`` scores only a stratified subset of the test split
    (quick looks only: the board compares full test splits).
    """
    import torch

    from engine.approaches.lora import LoraApproach  # heavy: loads scikit-learn
    from engine.data.leads import load_leads  # heavy: loads pandas

    table = load_leads(data, target=target, leak_policy=leak_policy)
    X, y = table.X, np.asarray(table.y).astype(int)
    train_idx, test_idx = protocol_split(y, test_size=0.3, seed=seed)
    settings: dict[str, Any] = cpu_preset(params.get("precision")) if preset == "cpu" else {}
    if preset not in (None, "cpu"):
        raise ValueError(f"Unknown preset {preset!r}; use 'cpu' or None.")
    settings.update({k: v for k, v in params.items() if v is not None})
    if train_rows is not None:
        settings["train_rows"] = int(train_rows)
    if epochs is not None:
        settings["epochs"] = int(epochs)
    settings.setdefault("seed", seed)
    model = LoraApproach(**{k: v for k, v in settings.items() if k in LoraApproach._param_names()})

    Xtr, ytr = X.iloc[train_idx].reset_index(drop=True), y[train_idx]
    Xte, yte = X.iloc[test_idx].reset_index(drop=True), y[test_idx]
    if test_rows is not None and int(test_rows) < len(yte):
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(yte)), train_size=int(test_rows), stratify=yte, random_state=seed)
        keep = np.sort(keep)
        Xte, yte = Xte.iloc[keep].reset_index(drop=True), yte[keep]

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model.fit(Xtr, ytr, callbacks=callbacks)
    fit_seconds = time.perf_counter() - start

    start = time.perf_counter()
    proba = model.predict_proba(Xte)[:, 1]
    score_seconds = time.perf_counter() - start
    singles = []
    for i in range(min(n_one, len(Xte))):
        t0 = time.perf_counter()
        model.predict_proba(Xte.iloc[[i]])
        singles.append(time.perf_counter() - t0)

    metrics = compute_metrics(yte, proba, n_boot=n_boot)
    row: dict[str, Any] = {key: metrics[key]["value"] for key in BOARD_KEYS}
    row["intervals"] = {key: [metrics[key]["low"], metrics[key]["high"]] for key in BOARD_KEYS}
    row.update(
        {
            "fit_seconds": float(fit_seconds),
            "train_seconds": float(getattr(model, "train_seconds_", fit_seconds)),
            "step_seconds": model.step_seconds_,
            "steps": len(model.loss_history_),
            "final_loss": float(np.mean([h["loss"] for h in model.loss_history_[-10:]]))
            if model.loss_history_
            else None,
            "score_rows_per_second": float(len(yte) / max(score_seconds, 1e-9)),
            "score_ms_per_row_batched": float(score_seconds / max(len(yte), 1) * 1000),
            "score_one_ms": float(np.median(singles) * 1000) if singles else None,
            "peak_rss_mb": _peak_rss_mb(),
            "device": str(model.device_),
            "dtype": str(model.dtype_).replace("torch.", ""),
            "torch_threads": torch.get_num_threads(),
            "n_train_rows": model.n_train_rows_,
            "n_calibration_rows": model.n_calibration_rows_,
            "calibration": model.calibration_,
        }
    )
    if torch.cuda.is_available() and model.device_.type == "cuda":
        row["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result = table_summary(data, table, train_idx, test_idx, seed, yte)
    result["split"]["scored_test_rows"] = int(len(yte))
    result |= {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()},
        "text_columns": list(model.columns_),
        "models": {"lora": row},
    }
    if verbose:
        m = row
        print(f"{result['dataset']}  rows={result['rows']}  policy={result['policy']}  split={result['split']}")
        print(
            f"lora: acc {m['accuracy']:.4f}  auc {m['roc_auc']:.4f}  pr_auc {m['pr_auc']:.4f}  f1 {m['f1']:.4f}  "
            f"brier {m['brier']:.4f}  fit {m['fit_seconds'] / 60:.1f} min  step {m['step_seconds']:.2f}s  "
            f"{m['score_ms_per_row_batched']:.0f} ms/lead batched  {m['score_one_ms']:.0f} ms single"
        )
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2, default=str))
    return result
