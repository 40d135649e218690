"""``score`` on a lead CSV larger than the memory budget (or with ``--chunk-rows`` / ``--ray``): read, scored and
written in chunks by :func:`engine.scoring_chunks.score_file`; the scored-list store keeps the top
:data:`engine.scoring_chunks.STORE_TOP_ROWS` rows of such a list."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from engine.storage import write_json


def chunk_rows_arg(text: str) -> int:
    """``--chunk-rows``' value: a whole number of rows, 1 or more."""
    import argparse

    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--chunk-rows takes a whole number of rows, 1 or more, not {str(text)[:40]!r}"
        )
    return value


def add_flags(p) -> None:
    """``score``'s flags for the chunked path."""
    p.add_argument(
        "--chunk-rows",
        dest="chunk_rows",
        type=chunk_rows_arg,
        default=None,
        help="read the lead CSV in chunks of this many rows (default: a CSV over the memory budget, "
        "CLAB_SCORE_MEMORY_MB, is read in chunks sized to it; others whole); needs --out",
    )
    p.add_argument(
        "--ray",
        action="store_true",
        help="score the chunks on the Ray cluster at RAY_ADDRESS (Ray Data, the run loaded once per worker; the "
        "workers must see this workspace); the same output as without it",
    )


def wants_chunks(args, run, data: Path) -> bool:
    """Whether ``score`` reads ``data`` in chunks: asked for (``--chunk-rows``, ``--ray``), or a lead CSV over the
    memory budget or over the in-memory row limit (:mod:`engine.scoring_chunks`)."""
    from engine.scoring_chunks import needs_chunks, over_row_limit  # heavy: loads pandas

    if args.chunk_rows or args.ray:
        return True
    return run.settings.input_kind == "leads" and (needs_chunks(data) or over_row_limit(data))


def check_chunk_args(args, run, data: Path, out_path: Path | None) -> str | None:
    """The Ray address for ``--ray`` (None without it); ValueError naming the fix for what the chunked path cannot do."""
    from engine.scoring_chunks import is_csv  # heavy: loads pandas

    if run.settings.input_kind != "leads":
        raise ValueError(
            f"run {run.id} scores transcripts: only lead tables are scored in chunks (--chunk-rows, --ray). Fix: drop "
            "those flags."
        )
    if not is_csv(data):
        raise ValueError(
            f"{data.name} is not a CSV file: only CSV is read in chunks (--chunk-rows, --ray). Fix: export it as CSV, "
            "or drop those flags."
        )
    if out_path is None:
        raise ValueError(
            f"{data.name} is scored in chunks (a file over the memory budget, or --chunk-rows / --ray), so the list "
            "is written to a file, not printed. Fix: give --out ranked.csv."
        )
    if args.shadow:
        raise ValueError(
            "--shadow is not offered for a file scored in chunks. Fix: score the file with each run apart, or a "
            "shorter file with --shadow."
        )
    if not args.ray:
        return None
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address:
        raise ValueError(
            "--ray scores the chunks on a Ray cluster, and RAY_ADDRESS is not set. Fix: set RAY_ADDRESS to the "
            "cluster's address (e.g. 127.0.0.1:6379), or drop --ray."
        )
    return address


def score_in_chunks(args, run, model, data: Path, out_path: Path, report_path: Path | None, notes: list[str]) -> int:
    """``score`` through :func:`engine.scoring_chunks.score_file`: progress, the report and the stored top rows."""
    from engine.scoring_chunks import STORE_TOP_ROWS, score_file  # heavy: loads pandas

    address = check_chunk_args(args, run, data, out_path)
    shown = {"read": 0, "score": 0, "write": 0}

    def progress(stage: str, done: int, total: int) -> None:
        step = 1_000_000 if stage == "read" else max(total // 10, 1)
        if done - shown[stage] >= step or (total and done == total):
            shown[stage] = done
            print(f"{stage}: {done:,}" + (f" / {total:,}" if total else "") + " rows", file=sys.stderr)

    store = not args.no_store
    top_file = None
    if store:
        fd, name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".top", dir=out_path.parent)
        os.close(fd)
        top_file = Path(name)
    try:
        scored = score_file(
            run,
            data,
            out_path,
            model=model,
            explain=args.explain,
            chunk_rows=args.chunk_rows,
            ray_address=address,
            label=data.name,
            progress=progress,
            top_out=top_file,
            top_rows=STORE_TOP_ROWS if store else 0,
        )
        report = {"run_id": run.id, "source": str(data), **scored.summary, "seconds": scored.seconds}
        for line in [*notes, *scored.report.messages()]:
            print(f"note: {line}", file=sys.stderr)
        if scored.metrics:
            from engine.cli_values import metric_text

            print(
                f"outcomes in the file ({scored.outcome_rows:,} rows): "
                + ", ".join(f"{m} {metric_text(scored.metrics, m)}" for m in ("roc_auc", "accuracy", "pr_auc"))
            )
        if scored.shift_problem:
            report["shift_not_checked"] = scored.shift_problem
            print(f"warning: {scored.shift_problem}", file=sys.stderr)
        if scored.shift is not None:
            report["shift"] = scored.shift
            print(f"shift check (a sample of the rows): {scored.shift['verdict']}", file=sys.stderr)
        print(
            f"reasons for {scored.explained_rows:,} of {scored.rows:,} rows (the top of the list); read in "
            f"{scored.chunks:,} chunks of {scored.chunk_rows:,} rows" + (" on Ray" if scored.ray else ""),
            file=sys.stderr,
        )
        print(f"scored {scored.rows} rows with run {run.id}: written {out_path}")
        if store:
            report["stored_list"] = _store_top(scored, data, top_file, report.get("shift"))
    finally:
        if top_file is not None:
            top_file.unlink(missing_ok=True)
    if report_path:
        write_json(report_path, report)
        print(f"report written to {report_path}")
    return 0


def _store_top(scored, data: Path, top_file: Path, shift: dict | None) -> str:
    """Keep the top of the list in the scored-list store (:func:`engine.scoring_chunks.store_top`); said on stderr."""
    from engine.scoring_chunks import store_top  # heavy: loads pandas

    meta = store_top(scored, data.name, top_file, shift)
    print(
        f"list stored for outcomes ({meta['sha256'][:12]}; run {meta['run_id']}; {meta['kept']}): `python -m engine "
        "outcomes --data won_lost.csv` matches outcomes to it (--no-store to skip)",
        file=sys.stderr,
    )
    return meta["sha256"]
