"""Command line: ``python -m engine train | bench | score | deploy | live | outcomes | serve | runs | prepare-models | demo``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from engine.approaches.registry import approach_names
from engine.callbacks import default_callbacks
from engine.cli_blend import add_commands as add_blend
from engine.cli_join import add_commands as add_join
from engine.cli_live import add_commands as add_live
from engine.cli_live import run_and_model
from engine.cli_loop import add_commands as add_loop
from engine.cli_outcomes import add_commands as add_outcomes
from engine.cli_outcomes import score_shadows, shadow_runs, store_scored
from engine.cli_paths import input_kind_of, readable_data, refuse_clashes, writable_folder, writable_out
from engine.cli_score import add_flags as add_chunk_flags
from engine.cli_score import score_in_chunks, wants_chunks
from engine.cli_store import add_commands as add_store
from engine.cli_values import (
    add_split_flags,
    add_use_flag,
    first_line,
    kind_value,
    missing_value_flag,
    number,
    parse_value,
    whole,
)
from engine.cli_values import (
    metric_text as _metric,
)
from engine.cli_values import short_text as _short
from engine.config import DEMO_LEADS
from engine.jobspec import DEMO_DATA, RESULT_FILE, TrainSpec, read_spec, run_spec
from engine.models import prepare_models
from engine.runs import BrokenRun, RunStore
from engine.storage import write_json

BOARD_METRICS = ["accuracy", "roc_auc", "pr_auc", "f1", "brier", "ece"]

# CLI flag (dest) -> approach parameter name. Only flags the user actually gives are passed on,
# and an approach that does not take one says so (see engine.pipeline.build_approach).
PARAM_FLAGS = {
    "epochs": "epochs",
    "n_pairs": "n_pairs",
    "classifier_type": "classifier_type",
    "base_model": "base_model",
    "train_rows": "train_rows",
    "lr": "learning_rate",
    "max_length": "max_length",
    "quantize": "quantize",
    "model_seed": "seed",
    "batch_size": "batch_size",
    "grad_accum": "grad_accum",
    "device": "device",
    "pooling": "pooling",
}


def _params_from_args(args) -> dict:
    params = {}
    for dest, name in PARAM_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            params[name] = value
    for item in getattr(args, "param", None) or []:
        if "=" not in item:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        params[key.strip()] = parse_value(value)
    return params


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("approach parameters (only the ones you give are passed on)")
    g.add_argument("--epochs", type=number, help="training epochs (lora, embeddings)")
    g.add_argument("--n_pairs", "--n-pairs", dest="n_pairs", type=whole, help="triplets per example (embeddings)")
    g.add_argument(
        "--classifier_type",
        "--classifier-type",
        dest="classifier_type",
        choices=["logistic", "xgboost", "hybrid"],
        help="classifier on the embeddings",
    )
    g.add_argument(
        "--pooling",
        choices=["mean", "max", "speakers"],
        help="embeddings: how a call's windows are pooled (speakers: the customer's and the agent's turns apart)",
    )
    g.add_argument("--base-model", dest="base_model", help="LLM folder or hub id in your local cache (lora)")
    g.add_argument("--train-rows", dest="train_rows", type=whole, help="cap on training rows (lora)")
    g.add_argument("--lr", type=number, help="learning rate")
    g.add_argument("--max-length", dest="max_length", type=whole, help="max tokens per example (lora)")
    g.add_argument("--quantize", choices=["4bit"], help="4-bit NF4 base weights with bitsandbytes (lora)")
    g.add_argument("--batch-size", dest="batch_size", type=whole)
    g.add_argument("--grad-accum", dest="grad_accum", type=whole)
    g.add_argument("--device", help="auto | cpu | cuda")
    g.add_argument("--model-seed", dest="model_seed", type=whole, help="seed of the approach itself")
    g.add_argument("--param", action="append", metavar="KEY=VALUE", help="any other approach parameter")


def format_run(run) -> str:
    from engine.data.uses import use_name

    m, settings = run.metrics, run.settings
    use = use_name(settings.use, settings.kinds)  # table only | text only | table + text: on a table with text
    lines = [
        f"run {run.id}  ({settings.approach} on {settings.dataset}{f', {use}' if use else ''}, {settings.rows} rows, "
        f"policy {settings.policy or '-'})"
    ]
    if settings.excluded:
        lines.append(f"  leak policy excluded: {', '.join(settings.excluded)}")
    for name in BOARD_METRICS + ["precision", "recall", "log_loss"]:
        lines.append(f"  {name:<10} {_metric(m.get('metrics', {}), name)}")
    lines.append(
        f"  fit {m.get('fit_seconds', 0):.1f} s; scoring {m.get('score_rows_per_second', 0):,.0f} rows/s, "
        f"{m.get('score_one_ms', 0):.1f} ms for one row"
    )
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
            cells.append(
                ("-" if v is None else (f"{v:,.0f}" if c == "score_rows_per_second" else f"{v:.4f}")).rjust(13)
            )
        out.append(name.ljust(width) + "".join(cells))
    return "\n".join(out)


# -- commands --------------------------------------------------------------------------------------
def _spec_from_args(args):
    return TrainSpec(
        input_kind=args.input,
        data=args.data,
        approach=args.approach,
        params=_params_from_args(args),
        target=args.target,
        leak_policy=args.leak_policy,
        exclude=list(args.exclude or []),
        include=list(args.include or []),
        dataset_name=args.name,
        preset=args.preset,
        missing_values=_missing_values_from_args(args),
        test_size=args.test_size,
        split_seed=args.split_seed,
        calibration_share=args.calibration_share,
        split=args.split,
        time_column=args.time_column,
        kinds=_kinds_from_args(args),
        use=args.use,
    )


def _kinds_from_args(args) -> dict[str, str]:
    """``--kind COLUMN=KIND`` flags as a mapping; a column given twice with two kinds is refused."""
    out: dict[str, str] = {}
    for column, kind in getattr(args, "kind", None) or []:
        if out.get(column, kind) != kind:
            raise ValueError(f"--kind names {column!r} twice ({out[column]} and {kind}). Fix: give it once.")
        out[column] = kind
    return out


def cmd_train(args) -> int:
    """``train`` builds the same :class:`engine.jobspec.TrainSpec` a dashboard job hands over, and runs it."""
    out = writable_folder(args.out)  # before the training: never a file, never a folder of the workspace
    spec = _spec_from_args(args)
    with _terminate_as_exit():
        run = run_spec(spec, default_callbacks(show_progress=not args.quiet))
    print(format_run(run))
    if out is not None:
        if args.input == "transcripts":
            from engine.benchmarks.transcripts import write_run_outputs  # heavy: loads pandas

            write_run_outputs(run, out, data=spec.data or DEMO_DATA["transcripts"])
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        print(f"outputs written to {out}")
    print(f"RUN_ID={run.id}")
    return 0


def cmd_run_job(args) -> int:
    """The child of a training job: ``spec.json`` in the job folder -> a run -> ``result.json`` there (the run
    id, or the error in the user's words); the job runner reads that file, never this process's output."""
    folder = Path(args.folder)
    try:
        spec = read_spec(folder)
        with _terminate_as_exit():
            run = run_spec(spec, default_callbacks(show_progress=False))
    except (ValueError, FileNotFoundError, KeyError) as exc:  # bad input: the message names the fix
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        write_json(folder / RESULT_FILE, {"error": first_line(message) if "Traceback" in message else message})
        raise
    except Exception as exc:  # noqa: BLE001 - a crash: say what broke; the log keeps the traceback
        write_json(folder / RESULT_FILE, {"error": f"training failed: {type(exc).__name__}: {first_line(str(exc))}"})
        raise
    write_json(folder / RESULT_FILE, {"run_id": run.id})
    print(format_run(run))
    return 0


@contextmanager
def _terminate_as_exit():
    """While training, SIGTERM (a job being cancelled or killed) raises SystemExit, so the pipeline removes
    the half-made run folder as it does for any other failure."""

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, _exit)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bench_stack(args, data, params: dict) -> dict:
    """Every lead approach but the LLM on the protocol split (engine.benchmarks.leads)."""
    from engine.benchmarks.leads import run_leads_bench  # heavy: loads NumPy

    return run_leads_bench(
        data,
        json_out=args.json,
        target=args.target,
        leak_policy=args.leak_policy,
        calibration_share=args.calibration_share or 0.0,
    )


def _bench_llm(args, data, params: dict) -> dict:
    """The LLM approach with its CPU preset (engine.benchmarks.lora)."""
    from engine.benchmarks.lora import run_lora_bench  # heavy: loads NumPy

    train_rows, epochs = params.pop("train_rows", None), params.pop("epochs", None)
    return run_lora_bench(data, json_out=args.json, train_rows=train_rows, epochs=epochs, **params)


#: ``bench leads --approach NAME``: the benchmark that times that approach (the stack's by default).
LEAD_BENCHES = {"stacking": _bench_stack, "lora": _bench_llm}


def cmd_bench(args) -> int:
    if args.input in ("curve", "scale"):  # reached only with flags before the word (main() hands them over)
        raise ValueError(
            f"give bench {args.input}'s flags after the word {args.input}: python -m engine bench {args.input} --help"
        )
    if args.input == "api" and args.memory:
        from engine.benchmarks.api import default_json_out, run_api_memory_bench  # heavy: loads scikit-learn

        out = args.json or default_json_out("api_memory")
        result = run_api_memory_bench(json_out=out, loads=args.loads)
        print(json.dumps(result, indent=2))
        print(f"written {out}")
        return 0
    if args.input == "api":
        from engine.benchmarks.api import run_api_bench  # heavy: loads scikit-learn

        result = run_api_bench(json_out=args.json, requests=args.requests, concurrency=args.concurrency)
        print(json.dumps(result, indent=2))
        if args.json:
            print(f"written {args.json}")
        return 0
    if args.input == "score" and args.chunked:
        from engine.benchmarks.score_chunks import run_chunked_score_bench  # heavy: loads pandas

        result = run_chunked_score_bench(
            data=args.data,
            json_out=args.json,
            rows=args.rows,
            ray=args.ray,
            chunk_rows=args.chunk_rows,
            run_id=args.run,
        )
        print(json.dumps(result, indent=2, default=str))
        return 0
    if args.input == "score":
        from engine.benchmarks.score import run_score_bench  # heavy: loads pandas

        result = run_score_bench(data=args.data, json_out=args.json, rows=args.rows, explain_rows=args.explain_rows)
        print(json.dumps(result, indent=2, default=str))
        return 0
    params = _params_from_args(args)
    if args.input == "leads" and getattr(args, "use", None):  # table / text / both: what the text is worth
        from engine.benchmarks.leads_use import run_use_bench  # heavy: loads NumPy

        approach = args.approach or "stacking"
        run_use_bench(
            args.data,
            args.use,
            [approach],
            json_out=args.json,
            target=args.target,
            leak_policy=args.leak_policy,
            params={approach: params},
        )
        return 0
    if args.input == "leads":
        data = args.data or DEMO_LEADS
        bench = LEAD_BENCHES.get(args.approach or "stacking", LEAD_BENCHES["stacking"])
        result = bench(args, data, params)
    else:
        from engine.approaches.embeddings import EmbeddingApproach  # heavy: loads scikit-learn
        from engine.benchmarks.transcripts import run_transcripts_bench  # heavy: loads pandas

        accepted = set(EmbeddingApproach._param_names()) | {"demo_n", "heldout_n", "setfit", "demo"}
        unknown = sorted(set(params) - accepted - {"classifier_type"})
        if unknown:
            raise ValueError(f"bench transcripts does not take {unknown}; it takes {sorted(accepted)}")
        kwargs = {k: int(v) if k == "epochs" else v for k, v in params.items() if k != "classifier_type"}
        result = run_transcripts_bench(args.data, json_out=args.json, **kwargs)
    print(format_board(result["models"]))
    if args.json:
        print(f"written {args.json}")
    return 0


def _column_list(columns: list[str], limit: int = 12) -> str:
    shown = ", ".join(map(str, columns[:limit]))
    return shown + (f" ... ({len(columns)} in all)" if len(columns) > limit else "")


def _check_kind(run, data: Path) -> None:
    """Refuse transcripts given to a leads run (and the other way round) before reading them as a table."""
    kind = run.settings.input_kind
    if kind == "leads" and input_kind_of(data) == "transcripts":
        columns = run.settings.columns
        raise ValueError(
            f"{data.name} holds transcripts, but run {run.id} scores leads with the columns: "
            f"{_column_list(columns)}. Fix: give a lead table with those columns, or score it "
            "with a transcripts run (--run latest takes the newest one)."
        )


def _explain_arg(text: str):
    if text == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--explain takes a number of rows or 'all', not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("--explain takes a number of rows (0 or more) or 'all'")
    return value


def cmd_score(args) -> int:
    """Score a file with a run through :mod:`engine.scoring` (the Score page's and the API's path): the
    file's own columns, then rank, probability, score, tier and reasons, ranked; the validation report and,
    for lead runs, the shift check on stderr and in the JSON report."""
    from engine.scoring import explain_budget, read_rows, score_frame, shift_check  # heavy: loads pandas

    data = readable_data(args.data, "the lead table or transcripts file to score")
    out_path = writable_out(args.out)
    report_path = (
        writable_out(args.report, "--report")
        if args.report
        else (out_path.with_name(out_path.stem + ".report.json") if out_path else None)
    )
    refuse_clashes(
        ("--data", data, "the file being scored"), ("--out", out_path, "the ranked list"), ("--report", report_path, "")
    )
    notes: list[str] = []
    run, model = run_and_model(RunStore(), args.run, data, notes, family=args.family)
    _check_kind(run, data)
    if wants_chunks(args, run, data):  # over the memory budget: read, scored and written in chunks
        return score_in_chunks(args, run, model, data, out_path, report_path, notes)
    if args.shadow:  # challengers scored beside the run, checked before anything is scored
        shadowing = shadow_runs(RunStore(), run, args.shadow, args.no_store)
    try:
        raw = read_rows(run, data, filename=data.name)
    except OSError as exc:
        raise ValueError(f"--data {data} cannot be read ({exc.strerror or exc}).") from None

    def progress(done: int, total: int) -> None:
        if total > 10_000:
            print(f"scored {done:,} / {total:,} rows", file=sys.stderr)

    explain = args.explain if args.explain is not None else explain_budget(run.settings.approach)
    scored = score_frame(run, raw, model=model, explain=explain, progress=progress, source=data.name)
    report = {"run_id": run.id, "source": str(data), **scored.summary}
    for line in [*notes, *scored.report.messages()]:
        print(f"note: {line}", file=sys.stderr)
    if scored.metrics:
        m = scored.metrics
        print(
            f"outcomes in the file ({scored.outcome_rows:,} rows): "
            + ", ".join(f"{name} {_metric(m, name)}" for name in ("roc_auc", "accuracy", "pr_auc"))
        )
    shift, problem = shift_check(run, raw, data.name)
    if problem:
        report["shift_not_checked"] = problem
        print(f"warning: {problem}", file=sys.stderr)
    if shift is not None:
        report["shift"] = shift
        shifted = ", ".join(
            f"{c['column']} (PSI {c['psi']:.2f})" for c in shift["columns"][:3] if c["level"] != "stable"
        )
        auc = shift.get("adversarial_auc")
        print(
            f"shift check: {shift['verdict']}"
            + (f" (adversarial ROC-AUC {auc:.2f})" if auc is not None else "")
            + (f"; most shifted: {shifted}" if shifted else ""),
            file=sys.stderr,
        )
    print(
        f"reasons for {scored.explained_rows:,} of {len(scored.table):,} rows (the top of the list; "
        "--explain N or all for more)",
        file=sys.stderr,
    )
    if out_path:
        try:
            scored.to_csv(out_path)
        except OSError as exc:
            raise ValueError(
                f"--out {out_path} cannot be written ({exc.strerror or exc}). Fix: write the scores somewhere else."
            ) from None
        print(f"scored {len(scored.table)} rows with run {run.id}: written {out_path}")
    else:
        print(scored.table.head(50).to_string())
    shadows = {}
    if args.shadow:  # kept with the list (engine/cli_outcomes.py)
        shadows = score_shadows(shadowing, data)
        report["shadow_runs"] = list(shadows)
    if not args.no_store:  # kept for the outcomes that come back (engine/cli_outcomes.py)
        report["stored_list"] = store_scored(scored, data, report.get("shift"), shadows)
    if report_path:
        write_json(report_path, report)
        print(f"report written to {report_path}")
    return 0


def cmd_audit(args) -> int:
    """Leak finder: each column of a lead table on its own (and its missingness) against the target."""
    from engine.audit import audit_leads  # heavy: loads pandas

    data = readable_data(args.data, "the lead table to audit")
    out = writable_out(args.json, "--json")
    refuse_clashes(("--data", data, "the lead table"), ("--json", out, ""))
    report = audit_leads(data, target=args.target, leak_policy=args.leak_policy, filename=data.name)
    print(
        f"{report['rows']:,} leads, target {report['target']!r}, leak policy {report['policy']!r}: "
        f"{len(report['flagged'])} column(s) flagged in {report['seconds']:.1f} s"
    )
    width = max([len(str(c["column"])) for c in report["columns"]] + [6]) + 2
    print("column".ljust(width) + "   auc  missing  unique  flag")
    for c in report["columns"]:
        auc = "-" if c.get("auc") is None else f"{c['auc']:.3f}"
        miss = "-" if c.get("missing_auc") is None else f"{c['missing_auc']:.3f}"
        unique = c.get("drop_cost") if c.get("drop_cost") is not None else c.get("unique_cost")
        unique = "-" if unique is None else f"{unique:.3f}"
        flag = "LEAK? " + str(c.get("reason") or "") if c.get("flagged") else ""
        flag = flag or ("check: " + c["check"] if c.get("check") else "")
        print(_short(c["column"], 60).ljust(width) + auc.rjust(6) + miss.rjust(9) + unique.rjust(8) + "  " + flag)
    if report["flagged"]:
        print(
            "Likely post-outcome fields; to leave them out: "
            + " ".join(f"--exclude {json.dumps(c)}" for c in report["flagged"])
        )
    if report.get("check"):
        print("Check how these are filled in: " + ", ".join(report["check"]))
    if out:
        write_json(out, report)
        print(f"written {out}")
    return 0


def cmd_serve(args) -> int:
    from engine.api import serve  # heavy: loads FastAPI

    serve(host=args.host, port=args.port, no_auth=args.no_auth)
    return 0


def cmd_prepare_models(args) -> int:
    for line in prepare_models():
        print(line)
    from engine import onnx_encoder  # heavy: loads NumPy

    if onnx_encoder.available():  # MiniLM's int8 ONNX graph for fast embedding, exported once
        from engine.approaches.embeddings import generic_onnx_graph  # heavy: loads scikit-learn

        started = time.monotonic()
        print(f"all-MiniLM-L6-v2 int8 ONNX: {generic_onnx_graph()} ({time.monotonic() - started:.1f}s)")
    return 0


def cmd_demo(args) -> int:
    """Train the stack on the embedded demo leads and print its metric board."""
    from engine import pipeline  # heavy: loads scikit-learn

    print("Conversion Lab demo: synthetic demo leads (not real data), stacked generalization")
    run = pipeline.train_leads(
        DEMO_LEADS, approach="stacking", callbacks=default_callbacks(), dataset_name="demo leads"
    )
    print(format_run(run))
    print(f"RUN_ID={run.id}")
    return 0


def _missing_values_from_args(args) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for column, value in getattr(args, "missing_value", None) or []:
        out.setdefault(column, []).append(value)
    return out


def _command(sub, name: str, func, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """The subcommand ``name``, which runs ``func(args)``; its flags are added to the parser returned."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    return p


def _train_and_bench_parsers(sub) -> None:
    """``train`` and ``bench`` (the same data flags; bench adds its timing flags)."""
    for name, help_text in (
        ("train", "train, evaluate and store a run"),
        ("bench", "run every model of an input kind on the protocol split"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "input",
            choices=["leads", "transcripts"] + (["api", "score", "curve", "scale"] if name == "bench" else []),
            help="what to train on"
            if name == "train"
            else "leads | transcripts: every model on the protocol split; api: load-test the scoring "
            "service; score: time the scoring service on a large lead file; curve: learning curves "
            "(its own flags: bench curve --help); scale: the stack's fit at growing sizes (bench scale --help)",
        )
        p.add_argument("--data", help="data file (default: the embedded synthetic demo data)")
        p.add_argument("--approach", choices=approach_names(), help="approach (plugged-in ones too)")
        p.add_argument("--target", help="target column (default: Converted, found by itself)")
        p.add_argument("--leak-policy", dest="leak_policy", default="default", choices=["default", "none", "strict"])
        p.add_argument("--exclude", action="append", help="also exclude this column (repeatable)")
        p.add_argument("--include", action="append", help="keep this column even if the policy excludes it")
        _add_model_flags(p)
        if name == "train":
            p.add_argument("--name", help="dataset name shown on the board")
            p.add_argument("--out", help="also write outputs (models, plots, metrics) to this folder")
            p.add_argument("--test-size", dest="test_size", type=number, default=0.3)
            p.add_argument("--split-seed", dest="split_seed", type=whole, default=42)
            p.add_argument(
                "--calibration-share",
                dest="calibration_share",
                type=number,
                help="leads: training rows kept out of the fit for blends (default 0.1; 0 for none)",
            )
            add_split_flags(p)
            add_use_flag(p)
            p.add_argument("--quiet", action="store_true", help="no progress bar")
            p.add_argument(
                "--missing-value",
                dest="missing_value",
                action="append",
                type=missing_value_flag,
                metavar="COLUMN=NUMBER",
                help="leads: read this number of a numeric column as missing, with a 0/1 flag column "
                "'COLUMN was NUMBER' (a code such as 999 for 'never'; repeatable)",
            )
            p.add_argument(
                "--kind",
                action="append",
                type=kind_value,
                metavar="COLUMN=KIND",
                help="leads: read COLUMN as KIND instead of the kind inferred (text, categorical, high_cardinality or "
                "identifier; e.g. --kind Notes=text; repeatable)",
            )
            p.add_argument(
                "--preset",
                choices=["cpu"],
                help="lora only: the settings measured to train within 30 minutes on 2 CPU cores "
                "(adapters on the top 10 layers; every row for 2 epochs in bf16 on a CPU with "
                "native bf16, 4,000 rows for 1 epoch in fp32 otherwise) instead of the reference "
                "setup (3 epochs on every row), which takes hours without a GPU",
            )
            p.set_defaults(func=cmd_train)
        else:
            p.add_argument("--json", help="write the results as JSON here")
            p.add_argument(
                "--calibration-share",
                dest="calibration_share",
                type=number,
                help="leads (stack): training rows kept out of the fit, as a lead run's calibration slice (default 0)",
            )
            add_use_flag(p, several=True)
            p.add_argument("--requests", type=int, default=2000, help="api only: requests to send (default 2000)")
            p.add_argument("--concurrency", type=int, default=16, help="api only: concurrent clients (default 16)")
            p.add_argument(
                "--memory",
                action="store_true",
                help="api only: instead of the load test, the API's RSS over --loads model loads with 4 models "
                "kept (JSON, default assets/bench/api_memory_<date>.json)",
            )
            p.add_argument("--loads", type=int, default=50, help="api --memory only: model loads (default 50)")
            p.add_argument("--rows", type=int, default=100_000, help="score only: rows to score (default 100,000)")
            p.add_argument(
                "--explain-rows",
                dest="explain_rows",
                type=int,
                default=10_000,
                help="score only: rows to explain (default 10,000)",
            )
            p.add_argument(
                "--chunked",
                action="store_true",
                help="score only: time `score` on a --rows-row CSV read in chunks (peak memory, rows/s, time to the "
                "first ranked rows); JSON default assets/bench/score_chunked_<date>.json",
            )
            p.add_argument("--chunk-rows", dest="chunk_rows", type=whole, help="score --chunked only: rows a chunk")
            p.add_argument("--ray", action="store_true", help="score --chunked only: score the chunks on RAY_ADDRESS")
            p.add_argument("--run", help="score --chunked only: the stack run to time (default: one trained first)")
            p.set_defaults(func=cmd_bench)


def _score_parser(sub) -> None:
    """``score``: a file ranked with a stored run (the live one by default)."""
    p = _command(
        sub,
        "score",
        cmd_score,
        help="score a file with a stored run",
        description="Score every row of a lead table or transcripts file with a stored run: the "
        "file's own columns, then rank, probability of conversion, 1-99 score, tier "
        "(A-D, the quarter of the run's training leads) and the top reasons, ranked.",
    )
    p.add_argument(
        "--run",
        default=None,
        help="live (default: the live run of the file's kind, see `python -m engine live`; the newest when none "
        "is set), latest: the newest run of the file's kind whose model loads (transcripts for .json/.jsonl/"
        ".ndjson or a CSV with a transcript column, leads otherwise), or a run id from `python -m engine runs`",
    )
    p.add_argument(
        "--family",
        help="with --run live: the dataset family whose live run scores (needed when several are live; "
        "`python -m engine live` lists them)",
    )
    p.add_argument("--data", required=True, help="file to score: lead table (CSV, Excel, Parquet) or transcripts")
    p.add_argument(
        "--out", help="write the scored table to this CSV file (its folder must exist); default: print the top 50 rows"
    )
    p.add_argument(
        "--report",
        help="write the validation report, outcome metrics and shift check as JSON here "
        "(default with --out: OUT.report.json beside it)",
    )
    p.add_argument(
        "--explain",
        type=_explain_arg,
        default=None,
        help="rows (from the top) that get reasons, or all; default: the approach's budget (stacking "
        "10,000, LLM 20, embeddings 20)",
    )
    p.add_argument("--no-store", dest="no_store", action="store_true", help="do not keep the list for outcomes")
    p.add_argument(
        "--shadow",
        action="append",
        metavar="RUN_ID",
        help="also score the file with this run (a challenger; repeatable) and keep its scores with the list, so "
        "that outcomes compare it with the run on the same leads (`python -m engine outcomes --top N`)",
    )
    add_chunk_flags(p)


def _run_job_and_audit_parsers(sub) -> None:
    """``run-job`` (the job runner's) and ``audit`` (the leak finder)."""
    p = _command(
        sub,
        "run-job",
        cmd_run_job,
        help="run a queued training job from its folder (used by the job runner)",
        description="Read spec.json in a job folder, train, and write result.json there.",
    )
    p.add_argument("folder", help="the job's folder (holds spec.json)")

    p = _command(
        sub,
        "audit",
        cmd_audit,
        help="find columns that give the outcome away (likely post-contact fields)",
        description="Leak finder: a small cross-validated model on each column alone, and on its "
        "missingness alone; columns that predict the outcome far too well are flagged "
        "with a reason.",
    )
    p.add_argument("input", choices=["leads"], help="what to audit")
    p.add_argument("--data", required=True, help="lead table (CSV, Excel, Parquet)")
    p.add_argument("--target", help="target column (default: Converted, found by itself)")
    p.add_argument(
        "--leak-policy",
        dest="leak_policy",
        default="none",
        choices=["default", "none", "strict"],
        help="columns to leave out before auditing (default none: audit every column)",
    )
    p.add_argument("--json", help="write the report as JSON here")


def _serve_parser(sub) -> None:
    """``serve``: the FastAPI scoring service."""
    p = _command(
        sub,
        "serve",
        cmd_serve,
        help="start the FastAPI scoring service",
        description="Start the FastAPI scoring service (set CLAB_API_KEY to require an API key).",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; any other address, such as 0.0.0.0, "
        "exposes it to the network and is refused unless CLAB_API_KEY is set or --no-auth is given)",
    )
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--no-auth",
        dest="no_auth",
        action="store_true",
        help="serve beyond loopback without CLAB_API_KEY (every path open to the network; prints a warning)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Conversion Lab engine")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_and_bench_parsers(sub)
    _score_parser(sub)
    _run_job_and_audit_parsers(sub)
    add_store(sub, _command)  # runs, delete
    _serve_parser(sub)
    add_live(sub, _command)
    add_outcomes(sub, _command)
    add_blend(sub, _command)
    add_join(sub, _command)
    _command(sub, "prepare-models", cmd_prepare_models, help="convert and cache the offline models (idempotent)")
    add_loop(sub, _command, cmd_demo)  # demo (and demo --weekly), retrain
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["bench", "curve"]:  # learning curves: their flags and errors are their module's
        from engine.benchmarks.curve import main as curve_main  # heavy: loads pandas

        return curve_main(argv[2:])
    if argv[:2] == ["bench", "scale"]:  # the stack's growth with the rows: its flags are its module's
        from engine.benchmarks.scale import main as scale_main  # heavy: loads pandas

        return scale_main(argv[2:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        # Bad input: one clear line naming the problem (the message says the fix), no traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if isinstance(exc, BrokenRun):  # a library's error inside can carry a whole native backtrace
            msg = f"run {exc.run_id} cannot be used: {first_line(exc.problem)}"
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
