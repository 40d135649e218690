"""Command line: ``blend``, stored lead runs combined into a blend run (:mod:`engine.blend`)."""

from __future__ import annotations


def cmd_blend(args) -> int:
    from engine.blend import blend_runs  # heavy: loads NumPy

    run = blend_runs(args.runs, method=args.method, name=args.name)
    m = run.metrics
    auc = m["metrics"]["roc_auc"]
    info = m["blend"]
    print(f"blend run {run.id}: {info['method']} on {info['calibration_rows']:,} calibration rows of its parts")
    for part in info["parts"]:
        print(f"  {part['run_id']}  {part['approach']:<16} weight {part['weight']:+.3f}  roc_auc {part['roc_auc']:.4f}")
    d = info["paired_vs_best"]
    print(
        f"roc_auc {auc['value']:.4f} [{auc['low']:.4f}, {auc['high']:.4f}] on the test rows; minus the best single "
        f"run ({info['best_part']}): {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] (paired bootstrap, 95 %)"
    )
    return 0


def add_commands(sub, command) -> None:
    """Register ``blend`` on the subparsers ``sub`` with cli.py's helper ``command``."""
    p = command(
        sub,
        "blend",
        cmd_blend,
        help="combine stored lead runs into a blend run",
        description="Blend two or more stored lead runs on the same dataset and split: a logistic regression on "
        "their logits (or weights summing to 1) fitted on their shared calibration slice only, never on test rows; "
        "evaluated on the test rows like any run, with a paired bootstrap interval of its ROC-AUC minus the best "
        "single run's. The blend scores and explains new leads through its parts (which must stay in the store).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_ID", help="lead runs to blend (`python -m engine runs`)")
    p.add_argument("--method", choices=["logistic", "weights"], default="logistic", help="default: logistic")
    p.add_argument("--name", help="the blend's name on the board")
