"""Pieces the tests share: the small stack (as parameters and as CLI flags), demo lead files, the keys of a
bench's model rows, and copies of a trained run into fresh stores. Imported as ``from support import ...``
(pytest puts tests/ on the path: there is no tests/__init__.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from engine.approaches.stacking import SMALL_PARAMS
from engine.runs import Run, RunStore

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The small stack with a cheap explanation (10 background rows, 2 permutations): what stored-run tests train.
SMALL_STACK = {**SMALL_PARAMS, "explain_background": 10, "explain_permutations": 2}

#: What every model row of a bench reports (leads and transcripts benches).
BENCH_ROW_KEYS = (
    "accuracy",
    "roc_auc",
    "pr_auc",
    "f1",
    "brier",
    "fit_seconds",
    "score_rows_per_second",
    "score_one_ms",
)


def cli_params(params: dict) -> list[str]:
    """``--param name=value`` flags for ``engine train`` (each value as JSON, as the CLI reads it)."""
    return [flag for name, value in params.items() for flag in ("--param", f"{name}={json.dumps(value)}")]


def demo_leads_csv(n: int = 600, seed: int = 0) -> bytes:
    """Synthetic demo leads as the bytes of a CSV upload."""
    from engine.data.demo import demo_leads

    return demo_leads(n=n, seed=seed).to_csv(index=False).encode("utf-8")


def copy_run(src: Path, root: Path, run_id: str | None = None) -> Path:
    """Copy the run folder ``src`` into the store at ``root`` (as ``run_id`` when given); tests that damage or add
    runs work on copies, so one trained run serves them all."""
    dst = Path(root) / (run_id or src.name)
    shutil.copytree(src, dst)
    if run_id:
        spec = json.loads((dst / "spec.json").read_text())
        (dst / "spec.json").write_text(json.dumps({**spec, "run_id": run_id}))
    return dst


def store_with(run: Run, root: Path) -> RunStore:
    """A fresh run store at ``root`` holding a copy of ``run``."""
    copy_run(run.path, root)
    return RunStore(root)


def wait_for_log(runner, job_id: int, pattern: str, timeout: float = 30, tick: bool = False) -> re.Match:
    """Wait until the log of ``job_id`` holds ``pattern`` (a regular expression, ``^``/``$`` per line) and return its
    match; ``tick`` ticks the runner while waiting (a Ray job's log comes through the ticks)."""
    deadline = time.monotonic() + timeout
    while not (found := re.search(pattern, runner.log_tail(job_id), re.M)):
        assert time.monotonic() < deadline, f"job {job_id} did not log {pattern!r} in {timeout} s"
        time.sleep(0.1)
        if tick:
            runner.tick()
    return found


#: A job whose process starts a grandchild (which a kill of the process alone would leave running), prints both
#: process ids, then works on.
GRANDCHILD_JOB = (
    "import os, subprocess, sys, time;"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
    "print('PIDS=%d,%d' % (os.getpid(), g.pid), flush=True); time.sleep(120)"
)


def start_job_with_grandchild(runner) -> tuple[int, int, int]:
    """Submit and start :data:`GRANDCHILD_JOB`: (job id, its process id, the grandchild's id) once both run."""
    job_id = runner.submit_command([sys.executable, "-c", GRANDCHILD_JOB])
    runner.tick()
    found = wait_for_log(runner, job_id, r"^PIDS=(\d+),(\d+)$")
    return job_id, int(found.group(1)), int(found.group(2))


#: Ways to damage a workspace's job table: a row whose JSON column (argv, params or progress) holds ``{bad``, a
#: truncated ``jobs.sqlite``, or ``jobs/`` (the job folders) a plain file.
JOB_TABLE_DAMAGE = ("argv", "params", "progress", "truncated_db", "jobs_folder_is_a_file")


def damaged_job_table(root: Path, damage: str) -> int | None:
    """Give the workspace at ``root`` a job table of three finished command jobs, then damage it one way
    (:data:`JOB_TABLE_DAMAGE`). Returns the id of the damaged row, or None when the whole table is unusable."""
    import sqlite3

    from engine.jobs import JobRunner

    runner = JobRunner(root)
    ids = [runner.submit_command([sys.executable, "-c", "1"], name=f"finished job {i}") for i in range(3)]
    con = sqlite3.connect(runner.db_path)
    with con:
        con.execute("UPDATE jobs SET state = 'succeeded', started = 1.0, finished = 2.0, returncode = 0")
        if damage in ("argv", "params", "progress"):
            con.execute(f"UPDATE jobs SET {damage} = '{{bad' WHERE id = ?", (ids[1],))
    con.close()
    if damage in ("argv", "params", "progress"):
        return ids[1]
    if damage == "truncated_db":
        data = runner.db_path.read_bytes()
        runner.db_path.write_bytes(data[: len(data) // 2])
    elif damage == "jobs_folder_is_a_file":
        shutil.rmtree(root / "jobs")
        (root / "jobs").write_text("not a folder")
    else:
        raise ValueError(damage)
    return None


def start_cli_training(workspace: Path, data: Path, **params) -> subprocess.Popen:
    """``python -m engine train leads`` of the small stack (with ``params`` on top) on ``data``, in its own process
    with ``CLAB_WORKSPACE`` set: a training a test can kill."""
    env = {**os.environ, "CLAB_WORKSPACE": str(workspace)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "engine", "train", "leads", "--data", str(data), "--quiet"]
    return subprocess.Popen(
        argv + cli_params({**SMALL_STACK, **params}),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_staging(runs: Path, proc: subprocess.Popen, timeout: float = 60) -> Path:
    """The staging folder (``.incomplete-<run id>-p<pid>``) of the training ``proc`` once it exists (under that
    name it holds its lock), i.e. once it is training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(runs.glob(f".incomplete-*-p{proc.pid}")) if runs.exists() else []
        if found:
            return found[0]
        assert proc.poll() is None, f"the training ended ({proc.returncode}) before it staged a run"
        time.sleep(0.02)
    raise AssertionError(f"no staging folder of process {proc.pid} in {runs} after {timeout} s")


#: Specs that parse but hold wrong types (the run must be skipped and named, never picked as latest): name ->
#: (the damage, as a change to a real run's spec, and the field the reason names).
SPEC_WRONG_TYPES = {
    "columns_text": (lambda s: {**s, "columns": "Lead Origin"}, "columns"),
    "columns_numbers": (lambda s: {**s, "columns": [1, 2, 3]}, "columns"),
    "columns_missing": (lambda s: {k: v for k, v in s.items() if k != "columns"}, "columns"),
    "kinds_list": (lambda s: {**s, "kinds": list(s["kinds"])}, "kinds"),
    "kinds_unknown_kind": (lambda s: {**s, "kinds": {c: "weird" for c in s["kinds"]}}, "kinds"),
    "split_text": (lambda s: {**s, "split": "stratified holdout"}, "split"),
    "split_test_size_text": (lambda s: {**s, "split": {**s["split"], "test_size": "0.3"}}, "split.test_size"),
    "hash_list": (lambda s: {**s, "data_hash": [s["data_hash"]]}, "data_hash"),
    "hash_path": (lambda s: {**s, "data_hash": "../../etc"}, "data_hash"),
    "missing_values_text": (lambda s: {**s, "missing_values": {"TotalVisits": "999"}}, "missing_values"),
    "missing_values_list": (lambda s: {**s, "missing_values": [999]}, "missing_values"),
    "input_kind_unknown": (lambda s: {**s, "input_kind": "images"}, "input_kind"),
    "input_kind_number": (lambda s: {**s, "input_kind": 1}, "input_kind"),
    "approach_list": (lambda s: {**s, "approach": ["stacking"]}, "approach"),
    "dropped_list": (lambda s: {**s, "dropped": ["Prospect ID"]}, "dropped"),
    "excluded_text": (lambda s: {**s, "excluded": "Tags"}, "excluded"),
    "target_number": (lambda s: {**s, "target": 1}, "target"),
    "created_text": (lambda s: {**s, "created": "yesterday"}, "created"),
}


def damage_spec(folder: Path, corruption: str) -> str:
    """Rewrite ``folder``'s spec.json with one of :data:`SPEC_WRONG_TYPES`; returns the field its reason names."""
    change, field = SPEC_WRONG_TYPES[corruption]
    spec = json.loads((folder / "spec.json").read_text())
    (folder / "spec.json").write_text(json.dumps(change(spec)))
    return field


class CountingReceive:
    """ASGI wrapper counting the body bytes the app pulls from the server."""

    def __init__(self, app):
        self.app, self.pulled = app, 0

    async def __call__(self, scope, receive, send):
        async def counted():
            message = await receive()
            self.pulled += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


class PlantedPickle:
    """A pickle an attacker plants: unpickling it creates ``marker``, proof that code from the file ran (the hostile
    tests check that no such file is ever loaded)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")
