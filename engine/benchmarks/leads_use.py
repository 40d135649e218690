"""``bench leads --use table,text,both``: what the text of a lead table is worth, per approach.

``run_use_bench(data, uses, approaches)`` loads the table once (:func:`engine.data.leads.load_leads`), makes the
protocol split (stratified 70/30, seed 42: the same test rows for every variant), and for each approach fits it on
the table's fields only (``table``), its text columns only (``text``) and both (:mod:`engine.data.uses`), scoring
each on the test rows with the protocol's metrics and 95 % intervals. For each approach run on all three it adds the
paired bootstrap difference of ROC-AUC *both minus the better part* (:func:`engine.evaluate.paired_difference`, the
same the board and the blends use): an interval above 0 says the combination beats either part.

Without ``data`` it runs on the demo leads with text (:func:`engine.data.demo_lead_text.demo_joined`: the demo
leads' fields, call notes and their calls joined as ``call``), labelled synthetic in the JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.benchmarks.leads import BOARD_KEYS, _load_average
from engine.evaluate import compute_metrics, protocol_split
from engine.text_worth import both_vs_best_part

DEMO_NAME = "demo leads with call notes and calls (synthetic)"


def _metrics_row(y, proba, fit_seconds: float, n_boot: int) -> dict[str, Any]:
    metrics = compute_metrics(y, proba, n_boot=n_boot)
    row: dict[str, Any] = {key: metrics[key]["value"] for key in BOARD_KEYS}
    row["intervals"] = {key: [metrics[key]["low"], metrics[key]["high"]] for key in BOARD_KEYS}
    row["fit_seconds"] = float(fit_seconds)
    return row


def run_use_bench(
    data=None,
    uses: list[str] | tuple[str, ...] = ("table", "text", "both"),
    approaches: list[str] | tuple[str, ...] = ("stacking",),
    json_out: str | Path | None = None,
    target: str | None = None,
    leak_policy: str = "default",
    seed: int = 42,
    params: dict[str, dict] | None = None,
    n_boot: int = 200,
    demo_n: int = 2000,
    verbose: bool = True,
) -> dict:
    """Each approach on each part of the table; see the module doc. ``params``: ``{approach: {name: value}}``."""
    from engine.approaches.base import Approach  # noqa: F401 - the registry's base, loaded before building
    from engine.benchmarks.api import machine_summary  # heavy: loads scikit-learn
    from engine.data.leads import load_leads  # heavy: loads pandas
    from engine.data.uses import apply_use, check_use
    from engine.pipeline import build_approach

    uses = [check_use(u) for u in uses]
    if data is None:
        from engine.data.demo_lead_text import demo_joined

        frame = demo_joined(int(demo_n), seed=0)
        table = load_leads(frame, target=target, leak_policy=leak_policy)
        name = DEMO_NAME
    else:
        table = load_leads(data, target=target, leak_policy=leak_policy)
        name = str(data) if isinstance(data, (str, Path)) else str(getattr(data, "name", "upload"))
    y = table.y
    train_idx, test_idx = protocol_split(y, seed=seed)
    yte = y[test_idx]
    results: dict[str, dict] = {}
    for approach in approaches:
        rows: dict[str, dict] = {}
        probas: dict[str, np.ndarray] = {}
        for use in uses:
            part = apply_use(table, use)
            model = build_approach(approach, (params or {}).get(approach), "leads")
            X = part.X
            start = time.perf_counter()
            model.fit(X.iloc[train_idx], y[train_idx])
            fit_s = time.perf_counter() - start
            probas[use] = np.asarray(model.predict_proba(X.iloc[test_idx]))[:, 1]
            rows[use] = {**_metrics_row(yte, probas[use], fit_s, n_boot), "columns": list(X.columns)}
            if verbose:
                print(f"{approach:<12}{use:<7}roc_auc {rows[use]['roc_auc']:.4f}  fit {fit_s:.1f}s", flush=True)
        results[approach] = {
            "uses": rows,
            "both_vs_best_part": both_vs_best_part(yte, probas),
            "params_given": dict((params or {}).get(approach) or {}),  # the rest at the approach's defaults
        }
    result = {
        "dataset": name,
        "synthetic": data is None,
        "rows": int(len(y)),
        "text_columns": [c for c, k in table.kinds.items() if k == "text"],
        "policy": table.policy,
        "split": {
            "protocol": "stratified",
            "test_size": 0.3,
            "seed": seed,
            "train_rows": int(len(train_idx)),
            "test_rows": int(len(test_idx)),
            "test_positive_rate": float(np.mean(yte)),
        },
        "approaches": results,
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
        "load": _load_average(),
    }
    if verbose:
        print(format_use_board(result))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2))
    return result


def format_use_board(result: dict) -> str:
    """The bench as a text table: approach, part, ROC-AUC with its interval, fit time; then both minus the best."""
    lines = [f"{result['dataset']}  rows={result['rows']}  text columns={result['text_columns']}"]
    lines.append(f"{'approach':<12}{'use':<7}{'roc_auc':>8}  {'95% interval':<17}{'pr_auc':>7}{'fit s':>8}")
    for approach, entry in result["approaches"].items():
        for use, m in entry["uses"].items():
            low, high = m["intervals"]["roc_auc"]
            lines.append(
                f"{approach:<12}{use:<7}{m['roc_auc']:>8.4f}  [{low:.3f}, {high:.3f}]   {m['pr_auc']:>7.4f}"
                f"{m['fit_seconds']:>8.1f}"
            )
        worth = entry.get("both_vs_best_part")
        if worth:
            lines.append(
                f"{approach:<12}both - {worth['both_minus']}: {worth['value']:+.4f} "
                f"[{worth['low']:+.4f}, {worth['high']:+.4f}] (paired bootstrap, ROC-AUC): {worth['verdict']}"
            )
    return "\n".join(lines)
