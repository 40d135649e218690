"""Command line: ``python -m engine train | bench | score | serve | runs | prepare-models | demo``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.config import REPO_ROOT

DEMO_LEADS = REPO_ROOT / "data" / "demo_leads_synthetic.csv"
DEMO_TRANSCRIPTS = REPO_ROOT / "data" / "demo_transcripts.jsonl"
BOARD_METRICS = ["accuracy", "roc_auc", "pr_auc", "f1", "brier", "ece"]

# CLI flag (dest) -> approach parameter name. Only flags the user actually gives are passed on,
# and an approach that does not take one says so (see engine.pipeline.build_approach).
PARAM_FLAGS = {
    "epochs": "epochs", "n_pairs": "n_pairs", "classifier_type": "classifier_type", "base_model": "base_model",
    "train_rows": "train_rows", "lr": "learning_rate", "max_length": "max_length", "quantize": "quantize",
    "model_seed": "seed", "batch_size": "batch_size", "grad_accum": "grad_accum", "device": "device",
}


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _params_from_args(args) -> dict:
    params = {}
    for dest, name in PARAM_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            params[name] = value
    for item in getattr(args, "param", None) or []:
        if "=" not in item:
            raise SystemExit(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        params[key.strip()] = _parse_value(value)
    return params


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("approach parameters (only the ones you give are passed on)")
    g.add_argument("--epochs", type=float, help="training epochs (lora, embeddings)")
    g.add_argument("--n_pairs", "--n-pairs", dest="n_pairs", type=int, help="triplets per example (embeddings)")
    g.add_argument("--classifier_type", "--classifier-type", dest="classifier_type", choices=["logistic", "xgboost"],
                   help="classifier on the embeddings")
    g.add_argument("--base-model", dest="base_model", help="LLM folder or hub id in your local cache (lora)")
    g.add_argument("--train-rows", dest="train_rows", type=int, help="cap on training rows (lora)")
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--max-length", dest="max_length", type=int, help="max tokens per example (lora)")
    g.add_argument("--quantize", choices=["4bit"], help="4-bit NF4 base weights with bitsandbytes (lora)")
    g.add_argument("--batch-size", dest="batch_size", type=int)
    g.add_argument("--grad-accum", dest="grad_accum", type=int)
    g.add_argument("--device", help="auto | cpu | cuda")
    g.add_argument("--model-seed", dest="model_seed", type=int, help="seed of the approach itself")
    g.add_argument("--param", action="append", metavar="KEY=VALUE", help="any other approach parameter")


def _metric(metrics: dict, name: str) -> str:
    m = metrics.get(name)
    if m is None:
        return "-"
    if isinstance(m, dict):
        return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
    return f"{m:.3f}"


def format_run(run) -> str:
    m = run.metrics
    lines = [f"run {run.id}  ({run.spec['approach']} on {run.spec.get('dataset')}, {run.spec.get('rows')} rows, "
             f"policy {run.spec.get('policy', '-')})"]
    if run.spec.get("excluded"):
        lines.append(f"  leak policy excluded: {', '.join(run.spec['excluded'])}")
    for name in BOARD_METRICS + ["precision", "recall", "log_loss"]:
        lines.append(f"  {name:<10} {_metric(m.get('metrics', {}), name)}")
    lines.append(f"  fit {m.get('fit_seconds', 0):.1f} s; scoring {m.get('score_rows_per_second', 0):,.0f} rows/s, "
                 f"{m.get('score_one_ms', 0):.1f} ms for one row")
    for name, vm in (m.get("variants") or {}).items():
        lines.append(f"  part {name:<22} roc_auc {_metric(vm, 'roc_auc')}  accuracy {_metric(vm, 'accuracy')}")
    return "\n".join(lines)


def format_board(models: dict[str, dict]) -> str:
    """A text board from the bench JSON's ``models`` mapping."""
    cols = ["accuracy", "roc_auc", "pr_auc", "f1", "brier", "fit_seconds", "score_rows_per_second", "score_one_ms"]
    width = max([len(n) for n in models] + [5]) + 2
    out = ["model".ljust(width) + "".join(c[:12].rjust(13) for c in cols)]
    for name, row in models.items():
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(("-" if v is None else (f"{v:,.0f}" if c == "score_rows_per_second" else f"{v:.4f}")).rjust(13))
        out.append(name.ljust(width) + "".join(cells))
    return "\n".join(out)


# -- commands --------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from engine import pipeline
    from engine.callbacks import default_callbacks

    params = _params_from_args(args)
    if args.preset == "cpu":
        if args.approach != "lora":
            raise ValueError("--preset cpu is for --approach lora (the LLM); the other approaches need no preset")
        from engine.benchmarks.lora import cpu_preset

        params = {**cpu_preset(params.get("precision")), **params}  # flags given explicitly still win
    callbacks = default_callbacks(show_progress=not args.quiet)
    if args.input == "leads":
        data = args.data or DEMO_LEADS
        run = pipeline.train_leads(data, approach=args.approach or "stacking", target=args.target,
                                   leak_policy=args.leak_policy, exclude=args.exclude, include=args.include,
                                   params=params, callbacks=callbacks, dataset_name=args.name,
                                   test_size=args.test_size, seed=args.split_seed)
    else:
        data = args.data or DEMO_TRANSCRIPTS
        run = pipeline.train_transcripts(data, approach=args.approach or "embeddings", params=params,
                                         callbacks=callbacks, dataset_name=args.name,
                                         test_size=args.test_size, seed=args.split_seed)
    print(format_run(run))
    if args.out:
        out = Path(args.out)
        if args.input == "transcripts":
            from engine.benchmarks.transcripts import write_run_outputs

            write_run_outputs(run, out, data=data)
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        print(f"outputs written to {out}")
    print(f"RUN_ID={run.id}")
    return 0


def cmd_bench(args) -> int:
    params = _params_from_args(args)
    if args.input == "leads":
        data = args.data or DEMO_LEADS
        if args.approach == "lora":
            from engine.benchmarks.lora import run_lora_bench

            train_rows = params.pop("train_rows", None)
            epochs = params.pop("epochs", None)
            result = run_lora_bench(data, json_out=args.json, train_rows=train_rows, epochs=epochs, **params)
        else:
            from engine.benchmarks.leads import run_leads_bench

            result = run_leads_bench(data, json_out=args.json, target=args.target, leak_policy=args.leak_policy)
    else:
        from engine.benchmarks.transcripts import run_transcripts_bench

        from engine.approaches.embeddings import EmbeddingApproach

        accepted = set(EmbeddingApproach._param_names()) | {"demo_n", "heldout_n", "setfit"}
        unknown = sorted(set(params) - accepted - {"classifier_type"})
        if unknown:
            raise ValueError(f"bench transcripts does not take {unknown}; it takes {sorted(accepted)}")
        kwargs = {k: int(v) if k == "epochs" else v for k, v in params.items() if k != "classifier_type"}
        result = run_transcripts_bench(args.data, json_out=args.json, **kwargs)
    print(format_board(result["models"]))
    if args.json:
        print(f"written {args.json}")
    return 0


def cmd_score(args) -> int:
    import pandas as pd

    from engine.evaluate import to_score
    from engine.runs import RunStore

    store = RunStore()
    run = store.latest() if args.run == "latest" else store.get(args.run)
    if run is None:
        raise SystemExit("No trained run yet: train one with `python -m engine train leads` first.")
    model = run.load_approach()
    if run.spec["input_kind"] == "leads":
        from engine.data.leads import prepare_features, read_table

        X = prepare_features(read_table(args.data), run.spec["columns"], run.spec["kinds"])
    else:
        from engine.data.transcripts import load_transcripts

        X = load_transcripts(args.data, require_labels=False).X
    proba = model.predict_proba(X)[:, 1]
    out = pd.DataFrame({"probability": proba, "score": to_score(proba)})
    if args.out:
        out.to_csv(args.out, index=False)
        print(f"scored {len(out)} rows with run {run.id}: written {args.out}")
    else:
        print(out.to_string())
    return 0


def cmd_runs(args) -> int:
    from engine.runs import RunStore

    for run in RunStore().list_runs():
        m = run.metrics.get("metrics", {})
        print(f"{run.id}  {run.spec.get('input_kind'):<11} {run.spec.get('dataset', '-'):<24} "
              f"roc_auc {_metric(m, 'roc_auc')}")
    return 0


def cmd_serve(args) -> int:
    from engine.api import serve

    serve(host=args.host, port=args.port)
    return 0


def cmd_prepare_models(args) -> int:
    from engine.models import prepare_models

    for line in prepare_models():
        print(line)
    return 0


def cmd_demo(args) -> int:
    """Train the stack on the embedded demo leads and print its metric board."""
    from engine import pipeline
    from engine.callbacks import default_callbacks

    print("Conversion Lab demo: synthetic demo leads (not real data), stacked generalization")
    run = pipeline.train_leads(DEMO_LEADS, approach="stacking", callbacks=default_callbacks(), dataset_name="demo leads")
    print(format_run(run))
    print(f"RUN_ID={run.id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Conversion Lab engine")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, help_text in (("train", "train, evaluate and store a run"),
                            ("bench", "run every model of an input kind on the protocol split")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("input", choices=["leads", "transcripts"])
        p.add_argument("--data", help="data file (default: the embedded synthetic demo data)")
        p.add_argument("--approach", choices=["stacking", "lora", "embeddings"])
        p.add_argument("--target", help="target column (default: Converted, found by itself)")
        p.add_argument("--leak-policy", dest="leak_policy", default="default", choices=["default", "none", "strict"])
        p.add_argument("--exclude", action="append", help="also exclude this column (repeatable)")
        p.add_argument("--include", action="append", help="keep this column even if the policy excludes it")
        _add_model_flags(p)
        if name == "train":
            p.add_argument("--name", help="dataset name shown on the board")
            p.add_argument("--out", help="also write outputs (models, plots, metrics) to this folder")
            p.add_argument("--test-size", dest="test_size", type=float, default=0.3)
            p.add_argument("--split-seed", dest="split_seed", type=int, default=42)
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument("--preset", choices=["cpu"],
                           help="lora only: the settings measured to train within 30 minutes on 2 CPU cores "
                                "(adapters on the top 10 layers; every row for 2 epochs in bf16 on a CPU with "
                                "native bf16, 4,000 rows for 1 epoch in fp32 otherwise) instead of the reference "
                                "setup (3 epochs on every row), which takes hours without a GPU")
            p.set_defaults(func=cmd_train)
        else:
            p.add_argument("--json", help="write the results as JSON here")
            p.set_defaults(func=cmd_bench)

    p = sub.add_parser("score", help="score a file with a stored run")
    p.add_argument("--run", default="latest")
    p.add_argument("--data", required=True)
    p.add_argument("--out")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("runs", help="list stored runs")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("serve", help="start the FastAPI scoring service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("prepare-models", help="convert and cache the offline models (idempotent)")
    p.set_defaults(func=cmd_prepare_models)

    p = sub.add_parser("demo", help="train the stack on the demo leads and print its board")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        # Bad input: one clear line naming the problem (the message says the fix), no traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
