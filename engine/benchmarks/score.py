"""Benchmark of the daily job: scoring a lead file with the stack, with and without reasons.

``run_score_bench(data=None, json_out=None, rows=100_000, explain_rows=10_000, run_id=None)``:

1. takes the stack run ``run_id`` from the workspace's run store, else trains one with the DEFAULT parameters
   on ``data`` (default: the real export ``../shared/data/leads/Leads.csv`` when it exists, else
   ``data/demo_leads_synthetic.csv``) through :func:`engine.pipeline.train_leads`;
2. builds a ``rows``-row table by resampling the file's rows with replacement (seed 0), without the target;
3. times, through the product's scoring service :func:`engine.scoring.score_frame` (the model loaded once,
   before the clock): all ``rows`` rows without reasons (target 10 s), the first ``explain_rows`` rows with
   reasons for every row (target 60 s), and the first 10,000 rows without reasons (the Score page's first
   ranked list, target 5 s);
4. breaks the costs down: ``prepare_rows``, ``predict_proba``, ``explain`` and ``top_factors`` on their own,
   and each part of the fast explanation (``StackingApproach.explain_matrix(costs=...)``) in ms a lead, plus
   the permutation path's cost a lead on a few rows;
5. returns and writes JSON (``json_out``, default ``assets/bench/score_<date>.json``) with ``machine``,
   ``date``, ``load`` (1/5/15-minute load average: timings on a shared machine need it), ``rows``,
   ``score_seconds``, ``score_rows_per_second``, ``explain_rows``, ``explain_seconds``,
   ``first_list_10k_seconds``, ``targets``, ``met`` and ``costs``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import DEMO_LEADS, REPO_ROOT
from engine.runs import RunStore
from engine.scoring import prepare_rows, score_frame, top_factors

REAL_LEADS = REPO_ROOT.parent / "shared" / "data" / "leads" / "Leads.csv"
#: Seconds: the whole file without reasons, reasons for ``explain_rows``, the first ranked list of 10,000.
TARGETS = {"score_seconds": 10.0, "explain_seconds": 60.0, "first_list_10k_seconds": 5.0}


def default_data() -> Path:
    return REAL_LEADS if REAL_LEADS.exists() else DEMO_LEADS


def _read(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    path = Path(data)
    if path.suffix.lower() in (".xlsx", ".xls"):
        return pd.read_excel(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=None, engine="python")


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_score_bench(
    data=None,
    json_out=None,
    rows: int = 100_000,
    explain_rows: int = 10_000,
    run_id: str | None = None,
    verbose: bool = True,
) -> dict:
    """Time the scoring service on a resampled lead file (see the module doc); returns the JSON dict."""
    from engine.benchmarks.api import machine_summary  # heavy: loads scikit-learn
    from engine.pipeline import train_leads  # heavy: loads scikit-learn

    say = print if verbose else (lambda *a, **k: None)
    data = default_data() if data is None else data
    source = _read(data)
    if run_id:
        run = RunStore().get(run_id)
        trained_seconds = None
    else:
        say(f"training the stack with default parameters on {getattr(data, 'name', data)} ...")
        run, trained_seconds = _timed(train_leads, source if isinstance(data, pd.DataFrame) else data)
    from engine.approaches.stacking import StackingApproach  # heavy: loads scikit-learn

    if run.settings.approach != StackingApproach.name:
        raise ValueError(f"run {run.id} is a {run.settings.approach!r} run; the score benchmark times the stack")
    target = run.settings.target
    base = source.drop(columns=[c for c in [target] if c in source.columns])
    rng = np.random.default_rng(0)
    raw = base.iloc[rng.integers(0, len(base), size=int(rows))].reset_index(drop=True)
    model, load_seconds = _timed(run.load_approach)

    _, score_seconds = _timed(score_frame, run, raw, model=model, explain=0)
    say(f"scored {len(raw):,} rows in {score_seconds:.2f} s")
    head = raw.head(int(explain_rows))
    explained, explain_seconds = _timed(score_frame, run, head, model=model, explain="all")
    say(f"reasons for {len(head):,} rows in {explain_seconds:.2f} s")
    _, first_seconds = _timed(score_frame, run, raw.head(10_000), model=model, explain=0)
    say(f"first ranked list of {min(len(raw), 10_000):,} rows in {first_seconds:.2f} s")

    # where the time goes
    (X_all, _), prepare_seconds = _timed(prepare_rows, run, raw)
    _, predict_seconds = _timed(model.predict_proba, X_all)
    X_head = X_all.head(len(head))
    table, explain_only = _timed(model.explain, X_head)
    _, factors_seconds = _timed(top_factors, table)
    parts: dict[str, float] = {}
    _, matrix_seconds = _timed(model.explain_matrix, X_head, costs=parts)
    small = X_head.head(5)
    _, perm_seconds = _timed(model.explain_matrix, small, method="permutation")
    n_head = max(len(X_head), 1)
    costs = {
        "fast_ms_per_lead": {k: round(1000 * v / n_head, 4) for k, v in parts.items()},
        "fast_explain_matrix_ms_per_lead": round(1000 * matrix_seconds / n_head, 4),
        "explain_table_ms_per_lead": round(1000 * (explain_only - matrix_seconds) / n_head, 4),
        "permutation_ms_per_lead": round(1000 * perm_seconds / max(len(small), 1), 2),
        "permutation_settings": {
            "explain_background": model.explain_background,
            "explain_permutations": model.explain_permutations,
        },
        "score_frame_parts_seconds": {
            f"prepare_rows_{len(raw)}": round(prepare_seconds, 3),
            f"predict_proba_{len(raw)}": round(predict_seconds, 3),
            f"explain_{len(X_head)}": round(explain_only, 3),
            f"top_factors_{len(X_head)}": round(factors_seconds, 3),
        },
        "model_load_seconds": round(load_seconds, 3),
    }
    result = {
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
        "load": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "run_id": run.id,
        "dataset": str(run.settings.dataset),
        "trained_seconds": trained_seconds,
        "explain_method": model.explain_method,
        "rows": int(len(raw)),
        "score_seconds": round(score_seconds, 3),
        "score_rows_per_second": round(len(raw) / score_seconds, 1) if score_seconds > 0 else None,
        "explain_rows": int(len(head)),
        "explain_seconds": round(explain_seconds, 3),
        "explained_rows": int(explained.explained_rows),
        "first_list_10k_seconds": round(first_seconds, 3),
        "targets": dict(TARGETS),
        "met": {
            "score_seconds": score_seconds <= TARGETS["score_seconds"],
            "explain_seconds": explain_seconds <= TARGETS["explain_seconds"],
            "first_list_10k_seconds": first_seconds <= TARGETS["first_list_10k_seconds"],
        },
        "costs": costs,
    }
    out = Path(json_out) if json_out is not None else REPO_ROOT / "assets" / "bench" / f"score_{result['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    say(json.dumps({k: result[k] for k in ("score_seconds", "explain_seconds", "first_list_10k_seconds", "met")}))
    return result
