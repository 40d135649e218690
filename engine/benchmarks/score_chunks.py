"""Benchmark of scoring a lead file larger than memory: ``bench score --chunked --rows 5000000``.

1. takes the stack run ``run_id``, else trains one with the DEFAULT parameters on ``data`` (default: the demo
   leads ``data/demo_leads_synthetic.csv``);
2. writes a ``rows``-row CSV (the file's rows drawn with replacement, seed 0, without the target; each lead id made
   unique) in a temporary folder, a chunk at a time;
3. runs ``python -m engine score --data BIG.csv --out RANKED.csv --no-store`` (``--ray`` with ``ray``) as a child
   process, the product's own command, and measures its wall time and peak memory (the child's maximum resident
   set size, from ``wait4``); the command's report gives the time to the first ranked rows written;
4. returns and writes JSON (``json_out``, default ``assets/bench/score_chunked_<date>.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.config import DEMO_LEADS, REPO_ROOT
from engine.runs import RunStore

WRITE_ROWS = 100_000


def write_big_csv(source, target: str | None, id_columns: list[str], rows: int, path: Path) -> int:
    """``rows`` rows of ``source`` drawn with replacement (seed 0) written to ``path`` a chunk at a time, the target
    left out and each id made unique (``<id>-<row>``); returns the file's size in bytes."""
    import pandas as pd

    base = source.drop(columns=[c for c in [target] if c and c in source.columns]).reset_index(drop=True)
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8", newline="") as f:
        for start in range(0, rows, WRITE_ROWS):
            n = min(WRITE_ROWS, rows - start)
            part = base.iloc[rng.integers(0, len(base), size=n)].reset_index(drop=True)
            for col in id_columns:
                part[col] = part[col].astype(str) + "-" + pd.Series(np.arange(start, start + n)).astype(str)
            part.to_csv(f, index=False, header=start == 0)
    return path.stat().st_size


def run_chunked_score_bench(
    data=None,
    json_out=None,
    rows: int = 5_000_000,
    run_id: str | None = None,
    ray: bool = False,
    chunk_rows: int | None = None,
    work: str | None = None,
    verbose: bool = True,
) -> dict:
    """Time ``score`` on a ``rows``-row CSV read in chunks (see the module doc); returns the JSON dict."""
    import pandas as pd

    from engine.benchmarks.api import machine_summary  # heavy: loads scikit-learn
    from engine.pipeline import train_leads  # heavy: loads scikit-learn
    from engine.scoring import identifier_columns
    from engine.scoring_chunks import DEFAULT_MEMORY_MB, MEMORY_ENV, chunk_rows_for, memory_budget

    say = print if verbose else (lambda *a, **k: None)
    data = Path(data) if data is not None else DEMO_LEADS
    source = pd.read_csv(data)
    if run_id:
        run = RunStore().get(run_id)
    else:
        say(f"training the stack with default parameters on {data.name} ...")
        run = train_leads(data)
    folder = Path(tempfile.mkdtemp(prefix="clab-bench-score-", dir=work))
    try:
        big, out, report = folder / "leads.csv", folder / "ranked.csv", folder / "ranked.report.json"
        started = time.perf_counter()
        size = write_big_csv(source, run.settings.target, identifier_columns(run, source.columns), rows, big)
        say(f"wrote {rows:,} rows ({size / 2**20:,.0f} MB) in {time.perf_counter() - started:.0f} s")
        cmd = [sys.executable, "-m", "engine", "score", "--run", run.id, "--data", str(big), "--out", str(out)]
        cmd += ["--report", str(report), "--no-store"] + (["--ray"] if ray else [])
        chunk_rows = chunk_rows or chunk_rows_for(big)  # the budget's size, and chunked whatever the file's size
        cmd += ["--chunk-rows", str(chunk_rows)]
        load_before = [round(v, 2) for v in os.getloadavg()]
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        log = child.stdout.read().decode(errors="replace")
        child.stdout.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"score failed:\n{log[-3000:]}")
        scored = json.loads(report.read_text())
        out_size = out.stat().st_size
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = scored["seconds"]
    result = {
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "load": [round(v, 2) for v in os.getloadavg()],  # at the end: the 5- and 15-minute ones span the run
        "run_id": run.id,
        "data": data.name,
        "rows": int(scored["rows"]),
        "file_mb": round(size / 2**20, 1),
        "out_mb": round(out_size / 2**20, 1),
        "memory_budget_mb": memory_budget() // 2**20,
        "memory_budget_from": MEMORY_ENV if os.environ.get(MEMORY_ENV) else f"default {DEFAULT_MEMORY_MB}",
        "chunk_rows": scored["chunked"]["chunk_rows"],
        "chunks": scored["chunked"]["chunks"],
        "ray": bool(ray),
        "explained_rows": int(scored["explained_rows"]),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "wall_seconds": round(wall, 1),
        "seconds": seconds,
        "rows_per_second": round(scored["rows"] / seconds["total"], 1),
        "first_ranked_rows_seconds": seconds["first_rows"],
    }
    target = json_out or REPO_ROOT / "assets" / "bench" / f"score_chunked_{result['date']}.json"
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(result, indent=2))
    say(f"written {target}")
    return result
