"""Load benchmark of the scoring API: single-lead ``POST /predict/lead`` from concurrent clients on loopback.

``run_api_bench(json_out=None, requests=2000, concurrency=16, run_id=None)``:

1. picks the lead run to score with: ``run_id``, else the newest lead run of the workspace that loads; a
   workspace with none gets a small stack trained on ``data/demo_leads_synthetic.csv`` (the parameters the
   tests use, a few seconds);
2. starts the service (``python -m uvicorn --factory engine.api:create_app``) in a subprocess on
   127.0.0.1 on a free port, over the same workspace, and waits for ``/health``;
3. sends one warm-up request (it loads the model; not counted), then exactly ``requests`` requests, each one
   raw demo lead (rows cycled), from ``concurrency`` threads, each with its own ``httpx.Client``
   (keep-alive); every request has a 30 s timeout and the whole run a deadline;
4. stops the server and returns (and writes to ``json_out``, when given) ``{"requests", "concurrency",
   "errors", "p50_ms", "p99_ms", "requests_per_second", "machine", "date", ...}``. ``errors`` counts
   responses other than 200 and failed requests; the latencies are client-side, per request.

``run_api_memory_bench(json_out=None, loads=50, keep=4)`` (``bench api --memory``): the app's RSS over
``loads`` model loads with ``keep`` kept, each load evicting one: flat once the cache is full when evicted
models give their memory back.

The clients run in this process and the server in another, on the same machine: on a 2-core machine the
clients' own CPU time is part of what is measured.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine import pipeline
from engine.approaches.stacking import SMALL_PARAMS
from engine.config import DEMO_LEADS, REPO_ROOT, workspace
from engine.runs import RunStore
from engine.storage import write_json

REQUEST_TIMEOUT_S = 30.0
DEADLINE_S = 900.0
FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma")


def machine_summary() -> str:
    """``"<cpu model>, <n> cores, <flags of note>"`` from /proc/cpuinfo (the platform where there is none)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    noted = [f for f in FLAGS_OF_NOTE if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(noted) or 'none of ' + '/'.join(FLAGS_OF_NOTE)}"


def _lead_run(run_id: str | None) -> str:
    store = RunStore()
    if run_id:
        run = store.get(run_id)
        if run.settings.input_kind != "leads":
            raise ValueError(f"run {run_id} scores {run.settings.input_kind}, not leads; pick a lead run")
        return run.id
    found = store.latest_loadable(input_kind="leads")
    if found is not None:
        return found[0].id
    return pipeline.train_leads(DEMO_LEADS, params=SMALL_PARAMS, dataset_name="api bench (demo leads)").id


def _payloads(n: int = 200) -> list[bytes]:
    import pandas as pd

    rows = pd.read_csv(DEMO_LEADS, nrows=n).drop(columns=["Converted"])
    return [json.dumps({"leads": lead}).encode() for lead in json.loads(rows.to_json(orient="records"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, workers: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "engine.api:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "CLAB_WORKSPACE": str(workspace())}
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of the process ``pid`` and its children (uvicorn's workers)."""
    import psutil

    total = 0.0
    try:
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
    except psutil.Error:
        pass
    return total


def _wait_ready(base: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            raise RuntimeError(
                f"the API server exited with {server.returncode}: "
                f"{server.stderr.read().decode(errors='replace')[-2000:]}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API server did not answer /health within {timeout:.0f} s")


def run_api_bench(
    json_out: str | Path | None = None,
    requests: int = 2000,
    concurrency: int = 16,
    run_id: str | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Benchmark single-lead scoring through the HTTP service; see the module docstring."""
    import httpx
    import numpy as np

    if requests < 1 or concurrency < 1:
        raise ValueError("requests and concurrency must be at least 1")
    concurrency = min(concurrency, requests)
    run_id = _lead_run(run_id)
    payloads = _payloads()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start_server(port, workers)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + DEADLINE_S

    def take() -> int | None:
        nonlocal issued
        with lock:
            if issued >= requests or time.monotonic() > deadline:
                return None
            issued += 1
            return issued - 1

    def client() -> None:
        with httpx.Client(
            base_url=base,
            timeout=REQUEST_TIMEOUT_S,
            headers={"content-type": "application/json", "x-api-key": os.environ.get("CLAB_API_KEY", "")},
        ) as http:
            while (i := take()) is not None:
                body = payloads[i % len(payloads)].replace(b'{"leads"', f'{{"run_id": "{run_id}", "leads"'.encode(), 1)
                t0 = time.perf_counter()
                try:
                    r = http.post("/predict/lead", content=body)
                    problem = None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    if problem is None:
                        latencies.append(elapsed)
                    else:
                        failures[problem] = failures.get(problem, 0) + 1

    try:
        _wait_ready(base, server)
        warm = httpx.post(
            f"{base}/predict/lead",
            content=payloads[0].replace(b'{"leads"', f'{{"run_id": "{run_id}", "leads"'.encode(), 1),
            timeout=120,
            headers={"content-type": "application/json", "x-api-key": os.environ.get("CLAB_API_KEY", "")},
        )
        if warm.status_code != 200:
            raise RuntimeError(f"the warm-up request failed: HTTP {warm.status_code}: {warm.text[:500]}")
        threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
        server_cpu0, client_cpu0 = _cpu_seconds(server.pid), time.process_time()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE_S + REQUEST_TIMEOUT_S)
        wall = time.perf_counter() - t0
        server_cpu, client_cpu = _cpu_seconds(server.pid) - server_cpu0, time.process_time() - client_cpu0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    done = len(latencies) + sum(failures.values())
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    result = {
        "requests": done,
        "concurrency": concurrency,
        "errors": sum(failures.values()) + (requests - done),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "requests_per_second": round(done / wall, 1) if wall > 0 else None,
        "mean_ms": round(float(np.mean(lat)), 2),
        "max_ms": round(float(np.max(lat)), 2),
        "wall_seconds": round(wall, 2),
        "run_id": run_id,
        "workers": workers,
        "server_cpu_ms_per_request": round(server_cpu / max(done, 1) * 1000, 2),
        "client_cpu_ms_per_request": round(client_cpu / max(done, 1) * 1000, 2),
        "error_kinds": dict(sorted(failures.items(), key=lambda kv: -kv[1])[:10]),
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if json_out:
        write_json(json_out, result)
    return result


def default_json_out(kind: str = "api") -> Path:
    """``assets/bench/<kind>_<date>.json``, the CLI's default output (``api_memory`` for ``--memory``)."""
    return REPO_ROOT / "assets" / "bench" / f"{kind}_{time.strftime('%Y-%m-%d')}.json"


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def run_api_memory_bench(
    json_out: str | Path | None = None, loads: int = 50, keep: int = 4, run_id: str | None = None
) -> dict[str, Any]:
    """RSS of the scoring app (in this process) over ``loads`` model loads with a cache of ``keep`` models:
    the lead run (``run_id``, else as :func:`run_api_bench` picks it) copied under ``loads`` distinct run ids
    into a temporary store, then one single-lead ``POST /predict/lead`` for each copy in turn, so every
    request past the first ``keep`` loads a model and evicts one. Returns (and writes to ``json_out``)
    ``{"loads", "kept", "rss_mb": [after each load], "rss_start_mb", "rss_end_mb", "growth_after_warmup_mb",
    ...}``; ``growth_after_warmup_mb`` is the RSS after the last load minus the RSS once the cache first
    held ``keep`` models (about 0 when evicted models give their memory back)."""
    import shutil
    import tempfile

    import numpy as np
    from fastapi.testclient import TestClient

    from engine.api import create_app  # heavy: loads FastAPI

    if loads < 1 or keep < 1:
        raise ValueError("loads and keep must be at least 1")
    source = RunStore().get(_lead_run(run_id))
    lead = json.loads(_payloads(1)[0])
    with tempfile.TemporaryDirectory(prefix="clab-api-memory-") as tmp:
        root = Path(tmp) / "runs"
        ids = [f"{source.id[:15]}-{source.id.split('-')[1]}-{i:06x}" for i in range(loads)]
        for rid in ids:
            shutil.copytree(source.path, root / rid)
        client = TestClient(create_app(RunStore(root), max_models=keep))
        rss_start = _rss_mb()
        rss, seconds = [], []
        for rid in ids:
            t0 = time.perf_counter()
            r = client.post("/predict/lead", json={**lead, "run_id": rid})
            seconds.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"scoring with {rid} failed: HTTP {r.status_code}: {r.text[:300]}")
            rss.append(round(_rss_mb(), 1))
        cached = len(client.app.state.cache)
        del client
    warm = rss[min(keep, loads) - 1]
    result = {
        "loads": loads,
        "kept": keep,
        "cached_at_end": cached,
        "run_id": source.id,
        "rss_start_mb": round(rss_start, 1),
        "rss_mb": rss,
        "rss_end_mb": rss[-1],
        "rss_max_mb": max(rss),
        "growth_after_warmup_mb": round(rss[-1] - warm, 1),
        "growth_per_load_kb": round(float(np.polyfit(range(len(rss) - keep), rss[keep:], 1)[0]) * 1000, 1)
        if loads - keep >= 2
        else None,
        "load_seconds_median": round(float(sorted(seconds)[len(seconds) // 2]), 3),
        "machine": machine_summary(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if json_out:
        write_json(json_out, result)
    return result
