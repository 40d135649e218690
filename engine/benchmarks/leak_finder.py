"""Measure the leak finder on the real export and on synthetic tables with planted leaks.

``python -m engine.benchmarks.leak_finder [--leads PATH] [--json OUT] [--drop]`` audits X Education's
Leads.csv (leak policy ``none``, then without Tags, then the default policy) and every synthetic table of
:mod:`engine.data.leak_tables` (two schemas x conversion rates 2 %, 11 %, 40 % x clean / leaks of several
kinds and strengths), and prints per table: the flagged columns, the planted column's single-column ROC-AUC
and permutation cost, and the largest cost among the other columns. ``--drop`` adds drop-column costs
(one refit per column; slow) for comparison. The numbers behind docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

TABLES: list[tuple[str, str | None, float]] = [
    (schema, leak, strength)
    for schema in ("bank", "saas")
    for leak, strength in ((None, 0.0), ("numeric", 0.72), ("numeric", 0.81), ("numeric", 0.90))
    + (("category", 0.78), ("date", 0.78))
]
RATES = (0.02, 0.11, 0.40)


def _summary(name: str, report: dict[str, Any], planted: str | None) -> dict[str, Any]:
    cols = {c["column"]: c for c in report["columns"] if c["auc"] is not None}
    others = [c for c in cols.values() if c["column"] != planted]
    top_other = max(others, key=lambda c: c["drop_cost"] if c["drop_cost"] is not None else -1.0)
    best_single = max(others, key=lambda c: c["auc"])
    leak = cols.get(planted) if planted else None
    return {
        "table": name,
        "model_auc": report.get("model_auc"),
        "flagged": report["flagged"],
        "check": report.get("check", []),
        "planted": planted,
        "planted_auc": leak and leak["auc"],
        "planted_cost": leak and leak["unique_cost"],
        "planted_drop": leak and leak["drop_cost"],
        "planted_drop_se": leak and leak.get("drop_se"),
        "planted_flagged": bool(leak and leak["flagged"]),
        "top_other": top_other["column"],
        "top_other_cost": top_other["unique_cost"],
        "top_other_drop": top_other["drop_cost"],
        "top_other_drop_se": top_other.get("drop_se"),
        "top_other_auc": top_other["auc"],
        "best_single_other": best_single["column"],
        "best_single_other_auc": best_single["auc"],
        "seconds": report["seconds"],
        "columns": [
            {
                k: c.get(k)
                for k in ("column", "auc", "unique_cost", "drop_cost", "drop_se", "missing_auc", "flagged", "reason")
            }
            for c in report["columns"]
        ],
    }


def run(leads: Path | None, n: int = 20_000, drop: bool = False) -> list[dict[str, Any]]:
    from engine.audit import audit_leads  # heavy: loads pandas
    from engine.data.leak_tables import LEAK_COLUMNS, leak_table  # heavy: loads pandas

    results = []
    if leads is not None and leads.exists():
        for name, options in (
            ("Leads.csv, policy none", {"leak_policy": "none"}),
            ("Leads.csv, none without Tags", {"leak_policy": "none", "exclude": ["Tags"]}),
            ("Leads.csv, policy default", {"leak_policy": "default"}),
        ):
            results.append(_summary(name, audit_leads(leads, **options), None))
            print(_line(results[-1]), flush=True)
    for rate in RATES:
        for schema, leak, strength in TABLES:
            frame = leak_table(schema, n=n, rate=rate, leak=leak, strength=strength or 0.8, seed=7)
            planted = LEAK_COLUMNS[schema][leak] if leak else None
            name = f"{schema} {rate:.0%} " + (f"{leak} {strength:.2f}" if leak else "clean")
            report = audit_leads(frame, target="converted")
            results.append(_summary(name, report, planted))
            if drop:
                results[-1]["drop_costs"] = _drop(frame)
            print(_line(results[-1]), flush=True)
    return results


def _drop(frame) -> dict[str, float]:
    from engine.audit_model import date_days, drop_costs  # heavy: loads pandas

    X = frame.drop(columns=["converted"])
    for col, days in date_days(X).items():
        X[col] = days
    return {k: round(v, 4) for k, v in drop_costs(X, frame["converted"].to_numpy()).items()}


def _line(r: dict[str, Any]) -> str:
    planted = (
        f"planted {r['planted']} auc {r['planted_auc']:.3f} perm {r['planted_cost']:.3f} "
        f"drop {r['planted_drop'] if r['planted_drop'] is not None else float('nan'):.3f} "
        f"(se {r['planted_drop_se'] if r['planted_drop_se'] is not None else float('nan'):.3f}) "
        f"{'FLAGGED' if r['planted_flagged'] else 'missed'}; "
        if r["planted"]
        else ""
    )
    return (
        f"{r['table']:<34} model {r['model_auc']:.3f} | {planted}top other {r['top_other']} "
        f"perm {r['top_other_cost']:.3f} drop {r['top_other_drop'] or 0.0:.3f} "
        f"(se {r['top_other_drop_se'] or 0.0:.3f}; auc {r['top_other_auc']:.3f}); best single other "
        f"{r['best_single_other']} {r['best_single_other_auc']:.3f} | flagged {r['flagged']} "
        f"check {r['check']} | {r['seconds']:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=Path, default=Path("/work/shared/data/leads/Leads.csv"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--drop", action="store_true", help="also measure drop-column costs (slow)")
    args = parser.parse_args(argv)
    results = run(args.leads, n=args.rows, drop=args.drop)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0 if np.isfinite([r["model_auc"] or 0 for r in results]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
