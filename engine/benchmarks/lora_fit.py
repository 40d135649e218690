"""Whole-process timing of the LoRA fit on the CPU preset: two code trees run alternately (A B A B ...).

Each run is a fresh ``python`` process with ``PYTHONPATH`` set to one code tree; it fits the CPU preset on a
small fixed sample of the demo leads (``train_rows`` of the protocol training split, 1 epoch, the preset's batch
and accumulation), scores ``test_rows`` of the protocol test split, and prints the per-step training losses, the
test ROC-AUC and its own fit seconds. The parent times the whole process (start-up, model load, fit,
calibration, scoring). Used to compare the LoRA fit on transformers' ``Trainer`` with the hand-written loop it
replaced (the old tree is a ``git archive`` of the commit before the switch)::

    git archive ab9b905 | tar -x -C /tmp/lora-hand
    python -m engine.benchmarks.lora_fit --a /tmp/lora-hand --b . --pairs 3 \\
        --json assets/bench/lora_fit_trainer_vs_loop_<date>.json

Only APIs both trees have are used in the child (``run_lora_bench`` and its ``callbacks``), so the same file
times either tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from engine.callbacks import Callback
from engine.config import DEMO_LEADS

DEMO = DEMO_LEADS


def _child(args) -> None:
    from engine.benchmarks.lora import run_lora_bench  # heavy: loads NumPy

    class Losses(Callback):
        def __init__(self):
            self.losses = []

        def on_step_end(self, progress):
            if progress.stage == "train" and progress.loss is not None:
                self.losses.append(float(progress.loss))

    seen = Losses()
    params = json.loads(args.params)
    result = run_lora_bench(
        args.data,
        train_rows=args.train_rows,
        epochs=args.epochs,
        test_rows=args.test_rows,
        n_boot=50,
        n_one=0,
        callbacks=[seen],
        verbose=False,
        **params,
    )
    row = result["models"]["lora"]
    out = {
        "roc_auc": row["roc_auc"],
        "fit_seconds": row["fit_seconds"],
        "train_seconds": row["train_seconds"],
        "step_seconds": row["step_seconds"],
        "steps": row["steps"],
        "losses": seen.losses,
        "dtype": row["dtype"],
        "torch_threads": row["torch_threads"],
    }
    print("RESULT " + json.dumps(out))


def _run(tree: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--data",
        args.data,
        "--train-rows",
        str(args.train_rows),
        "--epochs",
        str(args.epochs),
        "--test-rows",
        str(args.test_rows),
        "--params",
        args.params,
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(Path(tree).resolve()))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{done.stderr[-3000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return {**json.loads(line[len("RESULT ") :]), "process_seconds": wall}


def _check_args(parser, args) -> None:
    """Refuse what cannot run, naming it and the fix, before any child is started."""
    for side in ("a", "b"):
        tree = getattr(args, side)
        if not tree:
            parser.error(f"--{side} is needed: the folder of a code tree (the one holding engine/)")
        if not (Path(tree) / "engine" / "__init__.py").is_file():
            parser.error(f"--{side} {tree!r} holds no engine/ package; pass the root of a Conversion Lab checkout")
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1, got {args.pairs}")
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        parser.error(f"--params is not JSON ({exc.msg}); pass an object such as '{{\"warmup_ratio\": 0}}'")
    if not isinstance(params, dict):
        parser.error(f"--params must be a JSON object of LoraApproach parameters, got {type(params).__name__}")
    if not Path(args.data).is_file():
        parser.error(f"--data {args.data!r} is not a file; pass a lead table (CSV, Excel or Parquet)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--a", help="code tree A (e.g. the hand-written loop)")
    p.add_argument("--b", help="code tree B (e.g. the Trainer)")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--data", default=str(DEMO))
    p.add_argument("--train-rows", dest="train_rows", type=int, default=200)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--test-rows", dest="test_rows", type=int, default=300)
    p.add_argument("--params", default="{}", help="extra LoraApproach parameters as JSON (e.g. warmup_ratio)")
    p.add_argument("--a-label", dest="a_label", default="A", help="what tree A is, for the JSON and RESULTS.md")
    p.add_argument("--b-label", dest="b_label", default="B", help="what tree B is, for the JSON and RESULTS.md")
    p.add_argument("--json", help="write the runs and their summary here")
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    _check_args(p, args)
    runs = {"a": [], "b": []}
    for k in range(args.pairs):
        for side in ("a", "b"):
            r = _run(getattr(args, side), args)
            runs[side].append(r)
            print(
                f"pair {k + 1} {side}: process {r['process_seconds']:.1f}s fit {r['fit_seconds']:.1f}s "
                f"step {r['step_seconds']:.3f}s auc {r['roc_auc']:.4f} loss[0..2] {r['losses'][:3]}",
                flush=True,
            )
    ratios = [b["process_seconds"] / a["process_seconds"] for a, b in zip(runs["a"], runs["b"])]
    fit_ratios = [b["fit_seconds"] / a["fit_seconds"] for a, b in zip(runs["a"], runs["b"])]
    first_a, first_b = runs["a"][0]["losses"], runs["b"][0]["losses"]
    summary = {
        side: {
            key: statistics.median(r[key] for r in runs[side])
            for key in ("process_seconds", "fit_seconds", "train_seconds", "step_seconds", "roc_auc")
        }
        for side in ("a", "b")
    }
    summary["process_ratio_b_over_a_per_pair"] = ratios
    summary["fit_ratio_b_over_a_per_pair"] = fit_ratios
    summary["median_process_ratio"] = statistics.median(ratios)
    summary["max_abs_loss_difference"] = (
        max(abs(x - y) for x, y in zip(first_a, first_b)) if len(first_a) == len(first_b) else None
    )
    print(json.dumps(summary, indent=2))
    if args.json:
        payload = {
            "what": "LoRA fit, CPU preset, whole process per run, A and B alternated",
            "a": str(args.a),
            "b": str(args.b),
            "a_label": args.a_label,
            "b_label": args.b_label,
            "date": time.strftime("%Y-%m-%d"),
            "load": list(os.getloadavg()),
            "data": str(args.data),
            "train_rows": args.train_rows,
            "epochs": args.epochs,
            "test_rows": args.test_rows,
            "params": json.loads(args.params),
            "machine": os.environ.get("BENCH_MACHINE", ""),
            "summary": summary,
            "runs": runs,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # run as a file (the child): engine/benchmarks/ must not shadow top-level modules
    sys.exit(main())
