"""The job runner under concurrency, for real: several runner processes and threads ticking one table,
real job processes, a real ``kill -9``. No mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from support import start_job_with_grandchild

from engine.jobs import JobRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
N_JOBS = 30

# A short job: records when it started and ended (time.time) in its own job folder.
INTERVAL_JOB = """
import json, os, time
folder = os.path.dirname(os.environ['CLAB_PROGRESS_FILE'])
start = time.time()
time.sleep(0.2)
with open(os.path.join(folder, 'interval.json'), 'w') as fh:
    json.dump([start, time.time()], fh)
"""

# A runner process: ticks a JobRunner on the workspace until no job is queued, starting or running.
RUNNER_LOOP = """
import sys, time
from engine.jobs import JobRunner
runner = JobRunner(sys.argv[1], max_concurrent=1)
print(runner.token, flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    runner.tick()
    if all(job.done for job in runner.list()):
        break
    time.sleep(0.02)
"""


def _submit_interval_jobs(runner: JobRunner) -> list[int]:
    return [runner.submit_command([PY, "-c", INTERVAL_JOB], name=f"interval {i}") for i in range(N_JOBS)]


def _check_all_succeeded_one_at_a_time(runner: JobRunner, ids: list[int]) -> list:
    jobs = [runner.get(i) for i in ids]
    states = {j.id: (j.state, j.error) for j in jobs if j.state != "succeeded"}
    assert not states, f"jobs not succeeded (false failures): {states}"
    intervals = sorted(json.loads((j.folder / "interval.json").read_text()) for j in jobs)
    assert len(intervals) == N_JOBS
    overlaps = [(a, b) for a, b in zip(intervals, intervals[1:]) if b[0] < a[1]]
    assert not overlaps, f"{len(overlaps)} jobs ran while another was running (max_concurrent=1): {overlaps[:3]}"
    return jobs


def test_two_runner_processes_never_exceed_max_concurrent_nor_fail_live_jobs(tmp_path):
    runner = JobRunner(tmp_path, max_concurrent=1)
    ids = _submit_interval_jobs(runner)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    procs = [
        subprocess.Popen(
            [PY, "-c", RUNNER_LOOP, str(tmp_path), "120"],
            cwd=str(REPO_ROOT),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=150) for p in procs]
    for p, (_out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    jobs = _check_all_succeeded_one_at_a_time(runner, ids)
    tokens = {out.strip() for out, _err in outputs}
    # both runners really took part: each claimed (started) jobs of the shared table
    assert {j.claimed_by for j in jobs} == tokens, {j.claimed_by for j in jobs}


def test_one_runner_ticked_from_two_threads(tmp_path):
    runner = JobRunner(tmp_path, max_concurrent=1)
    ids = _submit_interval_jobs(runner)
    errors = []

    def loop():
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and not all(runner.get(i).done for i in ids):
                runner.tick()
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    assert not errors, errors
    _check_all_succeeded_one_at_a_time(runner, ids)


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def _group_live(pgid: int) -> list[int]:
    live = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and _live(proc.pid):
                live.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return live


def test_kill_9_of_the_recorded_pid_fails_the_job_and_ends_its_process_group(tmp_path):
    runner = JobRunner(tmp_path, kill_grace=2)
    # the "training" (a child of the wrapper) starts a grandchild of its own, then works on
    job_id, child, grandchild = start_job_with_grandchild(runner)
    job = runner.get(job_id)
    assert job.state == "running" and job.pgid == job.pid
    assert set(_group_live(job.pgid)) == {job.pid, child, grandchild}

    os.kill(job.pid, signal.SIGKILL)  # `kill -9 <pid>` of the pid the job table shows
    deadline = time.monotonic() + 30
    while runner.get(job_id).state == "running" and time.monotonic() < deadline:
        runner.tick()
        time.sleep(0.05)
    job = runner.get(job_id)
    assert job.state == "failed", job.state
    assert "without an exit status" in job.error and "were ended" in job.error
    assert not _live(child) and not _live(grandchild)  # the training did not go on
    assert _group_live(job.pgid) == []
    runner.tick()
    assert runner.get(job_id).state == "failed"
