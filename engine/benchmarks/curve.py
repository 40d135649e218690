"""``python -m engine bench curve``: learning curves of lead approaches (:mod:`engine.curves`), written to a JSON
file point by point, resumable.

``python -m engine bench curve --data PATH --approaches stacking,lora,embeddings --sizes 50,100,300,1000,3000,all
--json OUT`` writes ``{"dataset", "test_rows", "points": [{"approach", "size", "seed", "roc_auc", "roc_auc_ci",
"accuracy", "fit_seconds", ...}], "spread": [...], ...}``:

* every finished point is written at once (the whole file, atomically, under a lock: a reader sees the curve
  grow; two writers lose nothing);
* run again with the same ``--json`` (a job that was cancelled, a curve given more sizes or approaches), it keeps
  the points it holds and fits only the missing ones. It refuses a JSON of another dataset, split or subset draw
  (its points are not comparable) and points of an approach fitted with other parameters, saying which;
* ``spread``: per approach and size, the seeds drawn and the mean, lowest and highest ROC-AUC across them;
* with ``RAY_ADDRESS`` set (or ``--executor ray``), the points run as parallel Ray tasks.

As a job: ``JobRunner.submit("bench-curve", ["bench", "curve", ...])`` (:func:`submit_curve`); cancelled and
submitted again with the same arguments, it resumes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import curves
from engine.approaches.registry import approach_names, input_kinds
from engine.benchmarks.leads import _dataset_name
from engine.callbacks import TrainingCancelled, default_callbacks
from engine.cli_paths import readable_data
from engine.cli_values import parse_value, whole
from engine.config import DEMO_LEADS
from engine.data.leads import load_leads
from engine.evaluate import protocol_split
from engine.storage import CorruptFile, jsonable, locked, read_json, write_json
from engine.words import plural

KIND = "learning_curve"


# -- command line -------------------------------------------------------------------------------
def _sizes(text: str) -> list[int | str]:
    """``--sizes 50,100,all`` -> [50, 100, "all"]; argparse reports a bad one with this message."""
    out: list[int | str] = []
    for item in str(text).split(","):
        item = item.strip()
        if item.lower() == "all":
            out.append("all")
            continue
        try:
            size = whole(item)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"size {item!r} is not a whole number of rows or 'all'. Fix: e.g. --sizes 50,100,300,all"
            ) from None
        if size < 1:
            raise argparse.ArgumentTypeError(
                f"size {size} is below 1 row. Fix: give sizes of at least 1 row, e.g. --sizes 50,100,300,all"
            )
        out.append(size)
    return out


def _names(text: str) -> list[str]:
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no approach named. Fix: e.g. --approaches stacking,embeddings")
    known = [n for n in approach_names() if "leads" in input_kinds(n)]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown approach {', '.join(map(repr, unknown))}; the approaches for lead tables are: {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


def _approach_param(text: str) -> tuple[str, str, Any]:
    name, sep, rest = str(text).partition(".")
    key, eq, value = rest.partition("=")
    if not sep or not eq or not name.strip() or not key.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not APPROACH.KEY=VALUE. Fix: e.g. --param stacking.n_folds=3 --param embeddings.epochs=1"
        )
    return name.strip(), key.strip(), parse_value(value)


def build_parser(prog: str = "python -m engine bench curve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Learning curves: each approach fitted on nested, stratified subsets of the protocol's "
        "training rows and scored on the same test rows, each point with its 95 %% bootstrap interval, fit time "
        "and scoring speed, written to --json as it lands (run again to resume).",
    )
    p.add_argument("--data", help="lead table (CSV, Excel, Parquet; default: the synthetic demo leads)")
    p.add_argument("--approaches", type=_names, default=["stacking", "embeddings"], help="comma-separated")
    p.add_argument(
        "--sizes",
        type=_sizes,
        default=list(curves.DEFAULT_SIZES),
        help="training rows of each point, comma-separated, 'all' for every training row (default "
        "50,100,300,1000,3000,all; a size above the training rows is capped at all of them, with a note)",
    )
    p.add_argument("--json", required=True, help="the curve's JSON file (written as points land; resumed from)")
    p.add_argument(
        "--seeds",
        type=whole,
        default=curves.DEFAULT_SEEDS,
        help=f"draws of each size below --seeded-below rows (default {curves.DEFAULT_SEEDS})",
    )
    p.add_argument("--seeded-below", dest="seeded_below", type=whole, default=curves.SEEDED_BELOW)
    p.add_argument("--n-boot", dest="n_boot", type=whole, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--target", help="target column (default: Converted, found by itself)")
    p.add_argument("--leak-policy", dest="leak_policy", default="default", choices=["default", "none", "strict"])
    p.add_argument("--exclude", action="append", help="also exclude this column (repeatable)")
    p.add_argument("--include", action="append", help="keep this column even if the policy excludes it")
    p.add_argument("--test-size", dest="test_size", type=float, default=0.3)
    p.add_argument("--split-seed", dest="split_seed", type=whole, default=42)
    p.add_argument(
        "--param",
        action="append",
        type=_approach_param,
        default=[],
        metavar="APPROACH.KEY=VALUE",
        help="a parameter of one approach (repeatable), e.g. stacking.n_folds=3",
    )
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="local: one point after another here; ray: parallel Ray tasks at RAY_ADDRESS (default: ray when "
        "RAY_ADDRESS is set)",
    )
    return p


def main(argv: list[str]) -> int:
    """``bench curve`` (called by :func:`engine.cli.main`); bad input is one line on stderr and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        run_curve_from_args(args)
    except TrainingCancelled:
        print(f"cancelled: the points finished are in {args.json}; run the same command again to resume", flush=True)
        return 130
    except (ValueError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


def run_curve_from_args(args) -> dict:
    data = readable_data(args.data, "a lead table (CSV, Excel or Parquet)") if args.data else DEMO_LEADS
    params: dict[str, dict] = {}
    for name, key, value in args.param:
        if name not in args.approaches:
            raise ValueError(f"--param {name}.{key}: {name} is not in --approaches ({', '.join(args.approaches)})")
        params.setdefault(name, {})[key] = value
    executor = args.executor or ("ray" if os.environ.get("RAY_ADDRESS") else "local")
    if executor == "ray" and not os.environ.get("RAY_ADDRESS"):
        raise ValueError(
            "--executor ray needs RAY_ADDRESS (e.g. 127.0.0.1:6379, ray://host:10001, or the dashboard's http://127.0.0.1:8265 on a node of the cluster)"
        )
    return run_curve(
        data,
        args.json,
        approaches=args.approaches,
        sizes=args.sizes,
        params=params,
        seeds=args.seeds,
        seeded_below=args.seeded_below,
        n_boot=args.n_boot,
        target=args.target,
        leak_policy=args.leak_policy,
        exclude=args.exclude,
        include=args.include,
        test_size=args.test_size,
        split_seed=args.split_seed,
        ray_address=os.environ.get("RAY_ADDRESS") if executor == "ray" else None,
        callbacks=default_callbacks(show_progress=False),
    )


def submit_curve(runner, argv: list[str], name: str | None = None) -> int:
    """Queue ``python -m engine bench curve ARGV`` as one job of ``runner`` (:class:`engine.jobs.JobRunner`)."""
    build_parser().parse_args(argv)  # refused here, before it is queued
    return runner.submit("bench-curve", ["bench", "curve", *argv], name=name or "learning curve")


# -- the curve's JSON ---------------------------------------------------------------------------
def _check_out(out: Path) -> None:
    if out.is_dir():
        raise ValueError(f"--json {out} is a folder. Fix: give a file name, e.g. --json {out / 'curve.json'}")
    if not out.parent.is_dir():
        raise ValueError(f"--json {out}: the folder {out.parent} does not exist. Fix: create it first.")


def read_curve(out: Path) -> dict | None:
    """The curve JSON at ``out``, None when there is none; a file that is not one is refused (never replaced)."""
    if not out.exists():
        return None
    try:
        payload = read_json(out)
    except CorruptFile as exc:
        raise ValueError(
            f"--json {out} exists and is not a learning curve ({exc.problem}); it is left as it is. "
            "Fix: give another file name."
        ) from None
    if payload.get("kind") != KIND or not isinstance(payload.get("points"), list):
        raise ValueError(
            f"--json {out} exists and is not a learning curve written by bench curve; it is left as it is. "
            "Fix: give another file name."
        )
    return payload


def check_resumable(old: dict, header: dict, params: dict[str, dict], out: Path) -> None:
    """Refuse to add points to a curve of another dataset, split or subset draw, or whose points of one of the
    approaches were fitted with other parameters."""
    for field, words in (
        ("data_hash", "dataset"),
        ("split", "test split"),
        ("table", "table (target, leak policy, columns)"),
        ("settings", "settings (bootstrap, subset draw)"),
    ):
        if old.get(field) != header[field]:
            raise ValueError(
                f"--json {out} holds a curve of another {words} ({old.get('dataset')!r}: {old.get(field)} here "
                f"{header[field]}); its points are not comparable, so it is not resumed. Fix: give another --json."
            )
    for name, entry in (old.get("approaches") or {}).items():
        if name in params and entry.get("params") != params[name]:
            changed = sorted(
                k
                for k in set(entry.get("params", {})) | set(params[name])
                if entry.get("params", {}).get(k) != params[name].get(k)
            )
            raise ValueError(
                f"--json {out} holds {name} points fitted with other parameters ({', '.join(changed)}); it is not "
                "resumed. Fix: give the same parameters, or another --json."
            )


def spread(points: list[dict]) -> list[dict]:
    """Per approach and size: the seeds drawn and the mean, lowest and highest ROC-AUC (the draws' spread)."""
    groups: dict[tuple[str, int], list[float]] = {}
    for p in points:
        groups.setdefault((p["approach"], int(p["size"])), []).append(float(p["roc_auc"]))
    return [
        {
            "approach": name,
            "size": size,
            "seeds": len(values),
            "roc_auc_mean": float(np.mean(values)),
            "roc_auc_min": float(np.min(values)),
            "roc_auc_max": float(np.max(values)),
            "roc_auc_sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        }
        for (name, size), values in sorted(groups.items())
    ]


def _key(point: dict) -> tuple[str, int, int]:
    return point["approach"], int(point["size"]), int(point["seed"])


def add_point(out: Path, header: dict, point: dict) -> dict:
    """Add one point to the curve at ``out`` (read, merge, write atomically under the file's lock: a point another
    process added meanwhile stays) and return the curve as written."""
    with locked(out):
        current = read_curve(out) or {**header, "points": []}
        if current.get("points"):
            check_resumable(current, header, {n: a["params"] for n, a in header["approaches"].items()}, out)
        points = [p for p in current["points"] if _key(p) != _key(point)] + [point]
        points.sort(key=_key)
        approaches = {**(current.get("approaches") or {}), **header["approaches"]}
        payload = {**current, **header, "approaches": approaches, "points": points, "spread": spread(points)}
        payload["notes"] = list(dict.fromkeys([*(current.get("notes") or []), *header.get("notes", [])]))
        write_json(out, jsonable(payload))
    return payload


def run_curve(
    data,
    json_out: str | Path,
    approaches: list[str],
    sizes: list[int | str] = curves.DEFAULT_SIZES,
    params: dict[str, dict] | None = None,
    *,
    seeds: int = curves.DEFAULT_SEEDS,
    seeded_below: int = curves.SEEDED_BELOW,
    n_boot: int = 1000,
    target: str | None = None,
    leak_policy: str = "default",
    exclude: list[str] | None = None,
    include: list[str] | None = None,
    test_size: float = 0.3,
    split_seed: int = 42,
    ray_address: str | None = None,
    callbacks: list | None = None,
    log=print,
) -> dict:
    """The learning curve of ``approaches`` on the lead table ``data``, written to ``json_out`` point by point and
    resumed from it; returns the curve as written (see the module doc)."""
    from engine.benchmarks.api import machine_summary  # heavy: loads scikit-learn
    from engine.pipeline import build_approach  # heavy: loads scikit-learn

    out = Path(json_out)
    _check_out(out)
    if n_boot < 1:
        raise ValueError(f"--n-boot {n_boot}: give at least 1 bootstrap resample (1000 is the protocol's)")
    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: give at least 1 draw per size")
    old = read_curve(out)  # a file that is not a curve is refused before any work
    params = {name: dict((params or {}).get(name) or {}) for name in approaches}
    estimators = {name: build_approach(name, params[name], "leads") for name in approaches}
    table = load_leads(data, target=target, leak_policy=leak_policy, exclude=exclude, include=include)
    train_idx, test_idx = protocol_split(table.y, test_size=test_size, seed=split_seed)
    curve = curves.Curve(table.X, np.asarray(table.y).astype(int), train_idx, test_idx)
    row_sizes, notes = curves.resolve_sizes(sizes, len(train_idx))
    curve.check_sizes(estimators, row_sizes)
    header = {
        "kind": KIND,
        "dataset": Path(data).name if isinstance(data, (str, Path)) else _dataset_name(data),
        "data_hash": table.data_hash,
        "rows": int(len(table.y)),
        "table": {"target": table.target, "policy": table.policy, "excluded": list(table.excluded)},
        "split": {
            "protocol": "stratified",
            "test_size": test_size,
            "seed": split_seed,
            "train_rows": int(len(train_idx)),
            "test_rows_sha256": curves.rows_fingerprint(test_idx),
        },
        "test_rows": int(len(test_idx)),
        "test_positive_rate": float(np.mean(curve.y[test_idx])),
        "settings": {"n_boot": int(n_boot), "subsets": curves.SUBSETS_VERSION},
        "approaches": {name: {"params": jsonable(estimators[name].get_params(), fallback=str)} for name in approaches},
        "seeds_note": f"{seeds} draws (seeds) of each size below {min(seeded_below, len(train_idx)):,} rows, one "
        "above; each draw nests its sizes",
        "notes": notes,
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if old is not None:
        check_resumable(old, header, header_params(header), out)
    for note in notes:
        log(f"note: {note}")
    wanted = [
        curves.PointKey(name, size, seed)
        for name in approaches
        for size in row_sizes
        for seed in curves.seeds_for(size, len(train_idx), seeds, seeded_below)
    ]
    have = {_key(p) for p in (old or {}).get("points", [])}
    todo = [k for k in wanted if (k.approach, k.size, k.seed) not in have]
    if have:
        log(f"resuming {out}: {len(wanted) - len(todo)} of {len(wanted)} points already there, {len(todo)} to fit")
    written: dict = old or {}

    def on_point(key: curves.PointKey, numbers: dict) -> None:
        nonlocal written
        point = {"approach": key.approach, "size": key.size, "seed": key.seed, **numbers}
        written = add_point(out, header, point)
        low, high = point["roc_auc_ci"]
        log(
            f"  {key.words()}: ROC-AUC {point['roc_auc']:.3f} [{low:.3f}, {high:.3f}], "
            f"accuracy {point['accuracy']:.3f}, fit {point['fit_seconds']:.1f} s"
        )

    curves.run_points(
        curve, estimators, todo, on_point, n_boot=n_boot, callbacks=callbacks, ray_address=ray_address, log=log
    )
    log(f"written {out} ({plural(len(written.get('points', [])), 'point')})")
    return written


def header_params(header: dict) -> dict[str, dict]:
    return {name: entry["params"] for name, entry in header["approaches"].items()}
