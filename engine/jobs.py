"""Job runner: long work (training) runs outside the caller as its own process.

A job is an argv with persisted state in SQLite (``<workspace>/jobs.sqlite``, WAL mode) and a folder
``<workspace>/jobs/<id>/`` holding its log, its progress file (written by
:class:`engine.callbacks.JsonProgressFile` through ``CLAB_PROGRESS_FILE``) and its exit status. A training
job (:meth:`JobRunner.submit_train`) hands over a spec, not arguments: its folder holds ``spec.json``
(:class:`engine.jobspec.TrainSpec`), its argv is ``python -m engine run-job <folder>`` (the same on Ray),
and the child writes ``result.json`` (the run id, or the error in the user's words), which is what the job
records.

There is no long-lived thread: callers (the dashboard on each refresh, the CLI, tests) call
:meth:`JobRunner.tick`, which starts queued jobs in FIFO order up to ``max_concurrent`` and
records the ones that finished. Any number of runners (processes, or threads sharing one runner)
may tick the same table. Two executors share it:

* ``local``: a subprocess in its own session and process group (``start_new_session=True``): a
  ``/bin/sh`` wrapper (the recorded pid, leader of the group) runs the argv and writes its exit
  status to ``exit_code``, so any runner, even one started later, can tell success from failure;
* ``ray``: the same entry point submitted through Ray's Job Submission API
  (``RAY_ADDRESS`` or ``executor="ray"``); status and logs are read back from Ray.

States: ``queued`` -> ``starting`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``.

* Claiming is one SQLite ``BEGIN IMMEDIATE`` transaction: it counts the ``starting`` and ``running``
  jobs and, only if fewer than ``max_concurrent``, moves the oldest queued job to ``starting``; so two
  runners can never both pass the check, and ``max_concurrent`` holds across processes and threads.
* The claiming runner launches the process and records pid, process group and process start time
  together with ``running`` in one UPDATE. A ``starting`` job is never judged dead by anyone; only
  after :data:`STARTING_TIMEOUT` seconds without a pid (its runner died while launching it) it is
  marked failed, saying so.
* A ``running`` job whose wrapper is gone (or is another process now: the start time is compared)
  is finished from its ``exit_code`` file; without one (the wrapper was killed), it is judged dead:
  its whole process group is ended (SIGTERM, then SIGKILL) before it is marked failed, so no
  training goes on unseen.

Jobs never see the caller's secrets: :func:`job_env` drops ``CLAB_API_KEY``,
``CLAB_DASHBOARD_PASSWORD`` and every variable whose name contains one of :data:`SECRET_MARKERS`
(``PASSWORD``, ``PASSWD``, ``SECRET``, ``TOKEN``, ``API_KEY``, ``APIKEY``; so ``HF_TOKEN`` too:
jobs read models from the local cache).

Platform: POSIX (Linux, macOS): process groups, ``os.killpg`` and the ``/bin/sh`` wrapper.
Process checks use ``psutil``.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from engine.config import REPO_ROOT, workspace

STATES = ("queued", "starting", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("starting", "running")
FINISHED = ("succeeded", "failed", "cancelled")
STARTING_TIMEOUT = 60.0  # seconds a job may stay claimed without a recorded process
SECRET_ENV = ("CLAB_API_KEY", "CLAB_DASHBOARD_PASSWORD")
SECRET_MARKERS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    argv TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    gpu INTEGER NOT NULL DEFAULT 0,
    executor TEXT NOT NULL DEFAULT 'local',
    state TEXT NOT NULL DEFAULT 'queued',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    pid INTEGER,
    proc_start TEXT,
    returncode INTEGER,
    run_id TEXT,
    error TEXT,
    progress TEXT,
    ray_id TEXT,
    pgid INTEGER,
    claimed_by TEXT
)
"""
# columns added after the first release: older jobs.sqlite files gain them when opened
_ADDED_COLUMNS = {"proc_start": "TEXT", "ray_id": "TEXT", "pgid": "INTEGER", "claimed_by": "TEXT"}
_ACTIVE_SQL = "state IN ('starting', 'running')"


@dataclass
class Job:
    """One row of the job table, plus paths. ``progress`` is the latest progress payload."""

    id: int
    name: str
    kind: str
    argv: list[str]
    params: dict
    gpu: bool
    executor: str
    state: str
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    returncode: int | None
    run_id: str | None
    error: str | None
    progress: dict = field(default_factory=dict)
    ray_id: str | None = None
    folder: Path | None = None
    pgid: int | None = None  # process group of a local job (its wrapper leads it)
    proc_start: str | None = None  # start time of the recorded process, to tell a reused pid apart
    claimed_by: str | None = None  # the runner that started it

    @property
    def exit_path(self) -> Path:
        return self.folder / "exit_code"

    @property
    def log_path(self) -> Path:
        return self.folder / "job.log"

    @property
    def progress_path(self) -> Path:
        return self.folder / "progress.json"

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    @property
    def active(self) -> bool:
        """Claimed and not finished: ``starting`` or ``running`` (show both as running)."""
        return self.state in ACTIVE

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


# -- GPU --------------------------------------------------------------------------------------
_GPU_CACHE: dict | None = None


def gpu_info(refresh: bool = False) -> dict:
    """Whether a CUDA GPU is usable here, found cheaply (``nvidia-smi`` first, torch only if
    already imported). Returns ``{"cuda": bool, "device": "cuda"|"cpu", "name": str, "detail": str}``.
    """
    global _GPU_CACHE
    if _GPU_CACHE is not None and not refresh:
        return dict(_GPU_CACHE)
    info = {"cuda": False, "device": "cpu", "name": "", "detail": "no NVIDIA driver found (nvidia-smi missing): CPU"}
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        info["detail"] = "CUDA_VISIBLE_DEVICES is empty: CPU"
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=5)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                info = {"cuda": True, "device": "cuda", "name": names[0],
                        "detail": f"{len(names)} GPU(s): " + "; ".join(names)}
            else:
                info["detail"] = "nvidia-smi found no usable GPU: CPU"
        except (OSError, subprocess.SubprocessError) as exc:
            info["detail"] = f"nvidia-smi failed ({exc}): CPU"
    if not info["cuda"] and "torch" in sys.modules:  # already paid for: ask torch too
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                info = {"cuda": True, "device": "cuda", "name": torch.cuda.get_device_name(0),
                        "detail": "torch sees CUDA"}
        except Exception:  # noqa: BLE001 - a broken driver means CPU
            pass
    _GPU_CACHE = info
    return dict(info)


# -- process helpers --------------------------------------------------------------------------
def _start_time(pid: int) -> str | None:
    """Start time of a process (seconds since the epoch, as text), to tell a reused pid apart."""
    try:
        return f"{psutil.Process(pid).create_time():.3f}"
    except psutil.Error:
        return None


def _same_start(recorded: str | None, actual: float) -> bool:
    """Whether ``actual`` is the start time ``recorded``; rows from before start times were kept as
    epoch seconds (clock ticks, no decimal point) cannot be compared and count as the same."""
    if not recorded or "." not in recorded:
        return True
    try:
        return abs(float(recorded) - actual) < 0.5
    except ValueError:
        return True


def _alive(pid: int | None, proc_start: str | None) -> bool:
    """True while the process exists, is not a zombie, and is the one we started."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        return _same_start(proc_start, proc.create_time())
    except psutil.Error:
        return False


def _group_is_ours(pgid: int | None, proc_start: str | None) -> bool:
    """Whether process group ``pgid`` is still the job's: its leader is the recorded process (alive or
    a zombie), or the leader is gone (a pid is not reused while a group of that number has members)."""
    if not pgid:
        return False
    try:
        return _same_start(proc_start, psutil.Process(pgid).create_time())
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def _kill_group(pgid: int, grace: float = 5.0) -> bool:
    """End process group ``pgid``: SIGTERM, then SIGKILL what is left after ``grace`` seconds.
    Returns whether any process of the group was still alive."""
    if not _group_members(pgid):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pgid)
            if not _group_members(pgid):
                return True
            time.sleep(0.05)
    return True


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a finished child of this process (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def _is_secret(name: str) -> bool:
    upper = name.upper()
    return upper in SECRET_ENV or any(marker in upper for marker in SECRET_MARKERS)


def job_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without its secrets: ``CLAB_API_KEY``,
    ``CLAB_DASHBOARD_PASSWORD`` and any variable whose name contains one of :data:`SECRET_MARKERS`."""
    base = dict(os.environ if base is None else base)
    return {k: v for k, v in base.items() if not _is_secret(k)}


def tail_text(path: Path, n: int = 40, max_bytes: int = 256_000) -> str:
    """The last ``n`` lines of a text file (progress-bar carriage returns become new lines)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - max_bytes, 0))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in data.replace("\r", "\n").split("\n") if line.strip()]
    return "\n".join(lines[-n:])


# -- the runner -------------------------------------------------------------------------------
class JobRunner:
    """Persisted job queue. Create one per process (it is cheap); all share the SQLite table, and one
    runner may be ticked from several threads."""

    def __init__(self, workspace_dir: str | Path | None = None, max_concurrent: int = 1,
                 executor: str | None = None, ray_address: str | None = None, kill_grace: float = 5.0):
        self.root = Path(workspace_dir) if workspace_dir is not None else workspace()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(exist_ok=True)
        self.db_path = self.root / "jobs.sqlite"
        self.max_concurrent = max(1, int(max_concurrent))
        self.ray_address = ray_address or os.environ.get("RAY_ADDRESS")
        if executor is None:
            executor = "ray" if self.ray_address else "local"
        if executor not in ("local", "ray"):
            raise ValueError(f"executor must be 'local' or 'ray', not {executor!r}")
        if executor == "ray" and not self.ray_address:
            raise ValueError("executor='ray' needs a Ray address: set RAY_ADDRESS (e.g. http://127.0.0.1:8265) "
                             "or pass ray_address=")
        self.executor = executor
        self.kill_grace = kill_grace
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # names this runner in claimed_by
        self._ray_client = None
        self._procs: dict[int, subprocess.Popen] = {}  # the processes this runner started (to reap them)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute(_SCHEMA)
            self._migrate(con)

    # -- storage -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Add the columns an older ``jobs.sqlite`` lacks (in a write transaction: two runners may open it)."""
        have = {r["name"] for r in con.execute("PRAGMA table_info(jobs)")}
        if set(_ADDED_COLUMNS) <= have:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            have = {r["name"] for r in con.execute("PRAGMA table_info(jobs)")}
            for name, decl in _ADDED_COLUMNS.items():
                if name not in have:
                    con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _update(self, job_id: int, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as con:
            con.execute(f"UPDATE jobs SET {cols} WHERE id = ?", [*values.values(), job_id])

    def _row_to_job(self, row: sqlite3.Row) -> Job:
        return Job(id=row["id"], name=row["name"], kind=row["kind"], argv=json.loads(row["argv"]),
                   params=json.loads(row["params"] or "{}"), gpu=bool(row["gpu"]), executor=row["executor"],
                   state=row["state"], created=row["created"], started=row["started"], finished=row["finished"],
                   pid=row["pid"], returncode=row["returncode"], run_id=row["run_id"], error=row["error"],
                   progress=json.loads(row["progress"]) if row["progress"] else {}, ray_id=row["ray_id"],
                   folder=self.root / "jobs" / str(row["id"]), pgid=row["pgid"], proc_start=row["proc_start"],
                   claimed_by=row["claimed_by"])

    def job_dir(self, job_id: int) -> Path:
        return self.root / "jobs" / str(job_id)

    # -- public API ----------------------------------------------------------------------------
    def submit_command(self, argv: list[str], kind: str = "command", gpu: bool = False, name: str | None = None,
                       params: dict | None = None) -> int:
        """Queue an arbitrary argv as a job; returns its id. Call :meth:`tick` to start it."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings, e.g. [sys.executable, '-m', 'engine', ...]")
        with self._connect() as con:
            cur = con.execute(
                "INSERT INTO jobs (name, kind, argv, params, gpu, executor, state, created) VALUES (?,?,?,?,?,?,?,?)",
                (name or kind, kind, json.dumps(argv), json.dumps(params or {}), int(bool(gpu)), self.executor,
                 "queued", time.time()))
            job_id = int(cur.lastrowid)
        self.job_dir(job_id).mkdir(parents=True, exist_ok=True)
        return job_id

    def submit(self, kind: str, args: list[str], gpu: bool = False, name: str | None = None,
               params: dict | None = None) -> int:
        """Queue ``python -m engine <args...>`` (e.g. ``args=["train", "leads", "--data=..."]``)."""
        return self.submit_command([sys.executable, "-m", "engine", *args], kind=kind, gpu=gpu, name=name,
                                   params=params)

    def submit_train(self, input_kind: str, data: str | Path, approach: str, params: dict | None = None,
                     target: str | None = None, leak_policy: str | None = None, exclude: list[str] | None = None,
                     dataset_name: str | None = None, gpu: bool | None = None, name: str | None = None,
                     include: list[str] | None = None, preset: str | None = None) -> int:
        """Queue a training job. Its folder gets ``spec.json`` (:class:`engine.jobspec.TrainSpec`) and the job runs
        ``python -m engine run-job <folder>``, which writes ``result.json``. ``gpu=None`` asks for a GPU for
        the LLM approach (``lora``) when one is available."""
        from engine.jobspec import TrainSpec

        if gpu is None:
            gpu = approach == "lora"
        params = {k: v for k, v in (params or {}).items() if v is not None}
        if gpu and self._gpu_available():
            params.setdefault("device", "cuda")
        spec = TrainSpec(input_kind=input_kind, data=str(data), approach=approach, params=params, target=target,
                         leak_policy=leak_policy or "default", exclude=list(exclude or []),
                         include=list(include or []), dataset_name=dataset_name, preset=preset)
        return self.submit_spec(spec, gpu=bool(gpu), name=name or f"{approach} on {dataset_name or Path(str(data)).name}")

    def submit_spec(self, spec, gpu: bool = False, name: str | None = None) -> int:
        """Queue ``python -m engine run-job <job folder>`` for a :class:`engine.jobspec.TrainSpec`. The row, the
        folder and its ``spec.json`` are made in one transaction: no runner can claim the job before its spec
        exists."""
        from engine.jobspec import write_spec

        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            cur = con.execute(
                "INSERT INTO jobs (name, kind, argv, params, gpu, executor, state, created) VALUES (?,?,?,?,?,?,?,?)",
                (name or f"train-{spec.input_kind}", f"train-{spec.input_kind}", "[]", json.dumps(spec.to_dict()),
                 int(bool(gpu)), self.executor, "queued", time.time()))
            job_id = int(cur.lastrowid)
            folder = self.job_dir(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            write_spec(folder, spec)
            con.execute("UPDATE jobs SET argv = ? WHERE id = ?",
                        (json.dumps([sys.executable, "-m", "engine", "run-job", str(folder)]), job_id))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return job_id

    def get(self, job_id: int) -> Job:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        if row is None:
            raise KeyError(f"No job {job_id} in {self.db_path}")
        job = self._row_to_job(row)
        if job.state == "running" and job.executor == "local":
            job.progress = self._read_progress(job) or job.progress
        return job

    def list(self, state: str | None = None, limit: int | None = None) -> list[Job]:
        """Jobs, newest first (optionally only those in ``state``)."""
        sql, args = "SELECT * FROM jobs", []
        if state:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as con:
            return [self._row_to_job(r) for r in con.execute(sql, args).fetchall()]

    def active(self) -> list[Job]:
        """The ``starting`` and ``running`` jobs, newest first."""
        with self._connect() as con:
            rows = con.execute(f"SELECT * FROM jobs WHERE {_ACTIVE_SQL} ORDER BY id DESC").fetchall()
        return [self._row_to_job(r) for r in rows]

    def log_tail(self, job_id: int, n: int = 40) -> str:
        job = self.get(job_id)
        if job.executor == "ray" and not job.done and job.ray_id:
            self._ray_sync_log(job)
        return tail_text(job.log_path, n)

    def tick(self) -> list[Job]:
        """Record finished jobs, then start queued ones (FIFO) while fewer than ``max_concurrent`` are
        starting or running. Returns the jobs that are starting or running afterwards."""
        for job in self.active():
            self._refresh(job)
        self._reap_own()
        while True:
            job = self._claim()
            if job is None:
                break
            self._start(job)
        return self.active()

    poll = tick

    def wait(self, job_id: int, timeout: float = 300.0, interval: float = 0.2) -> Job:
        """Tick until the job is finished; raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            job = self.get(job_id)
            if job.done:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout:.0f}s")
            time.sleep(interval)

    def cancel(self, job_id: int, clean_stop: float = 1.0) -> Job:
        """Stop a job: touch the progress cancel marker (a training loop stops cleanly between steps)
        and wait up to ``clean_stop`` seconds, then kill its process group (SIGTERM, SIGKILL after
        ``kill_grace`` seconds). A queued job is just marked cancelled; a starting one is ended by the
        runner launching it as soon as its process exists."""
        job = self.get(job_id)
        if job.done:
            return job
        if job.state == "queued":
            with self._connect() as con:
                con.execute("UPDATE jobs SET state='cancelled', finished=? WHERE id=? AND state='queued'",
                            (time.time(), job.id))
            job = self.get(job_id)
            if job.state == "cancelled":
                return job
        marker = job.progress_path.with_name(job.progress_path.name + ".cancel")
        marker.touch()
        with self._connect() as con:
            cur = con.execute(f"UPDATE jobs SET state='cancelled', finished=?, error=? WHERE id=? AND {_ACTIVE_SQL}",
                              (time.time(), "cancelled by the user", job.id))
        job = self.get(job_id)  # pid as recorded now (it may have started meanwhile)
        if cur.rowcount != 1:  # it finished first
            return job
        if job.executor == "ray":
            try:
                if job.ray_id:
                    self._ray().stop_job(job.ray_id)
            except Exception as exc:  # noqa: BLE001 - the job may already be gone
                self._append_log(job, f"[jobs] Ray stop_job failed: {exc}")
            if job.ray_id:
                self._ray_sync_log(job)
        elif job.pid:
            deadline = time.monotonic() + clean_stop  # give the training loop a chance to stop itself
            while time.monotonic() < deadline and self._job_alive(job):
                time.sleep(0.05)
            self._end_group(job)
        self._append_log(job, "[jobs] cancelled by the user")
        return self.get(job_id)

    def recover(self) -> list[int]:
        """After a restart: local jobs marked running whose process is gone are finished (failed when
        they left no exit status, their leftover processes ended), and jobs stuck in ``starting`` for
        more than :data:`STARTING_TIMEOUT` seconds fail. Returns the ids of the jobs that failed."""
        lost = []
        for job in self.active():
            if job.executor != "local":
                continue
            self._refresh(job)
            if self.get(job.id).state == "failed":
                lost.append(job.id)
        return lost

    def delete(self, job_id: int) -> None:
        """Forget a finished job (its folder is removed)."""
        job = self.get(job_id)
        if not job.done:
            raise RuntimeError(f"job {job_id} is {job.state}; cancel it before deleting it")
        with self._connect() as con:
            con.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
        shutil.rmtree(job.folder, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------------
    def _gpu_available(self) -> bool:
        return bool(os.environ.get("CLAB_RAY_GPUS")) if self.executor == "ray" else gpu_info()["cuda"]

    def _env(self, job: Job) -> dict[str, str]:
        env = job_env()
        env.update({"CLAB_PROGRESS_FILE": str(job.progress_path), "CLAB_WORKSPACE": str(self.root),
                    "CLAB_JOB_ID": str(job.id), "CLAB_JOB_DIR": str(job.folder),
                    "PYTHONUNBUFFERED": "1"})  # the engine is an installed package: no PYTHONPATH
        if not job.gpu and gpu_info()["cuda"]:
            env.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU jobs leave the GPU to the ones that asked
        return env

    def _append_log(self, job: Job, line: str) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        with open(job.log_path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")

    def _claim(self) -> Job | None:
        """Take the oldest queued job (state ``starting``, claimed by this runner) if fewer than
        ``max_concurrent`` jobs are starting or running; one write transaction, so the count and the
        claim cannot interleave with another runner's."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                busy = con.execute(f"SELECT COUNT(*) FROM jobs WHERE {_ACTIVE_SQL}").fetchone()[0]
                row = None
                if busy < self.max_concurrent:
                    row = con.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY id ASC LIMIT 1").fetchone()
                    if row is not None:
                        con.execute("UPDATE jobs SET state='starting', started=?, claimed_by=? WHERE id=?",
                                    (time.time(), self.token, row["id"]))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()
        return None if row is None else self.get(row["id"])

    def _start(self, job: Job) -> None:
        """Launch a job this runner claimed; a launch error fails it visibly."""
        job.folder.mkdir(parents=True, exist_ok=True)
        self._append_log(job, f"[jobs] job {job.id} ({job.name}) on {job.executor}: {shlex.join(job.argv)}")
        try:
            if job.executor == "ray":
                self._start_ray(job)
            else:
                self._start_local(job)
        except Exception as exc:  # noqa: BLE001 - any launch error fails the job visibly
            self._append_log(job, f"[jobs] could not start: {type(exc).__name__}: {exc}")
            with self._connect() as con:
                con.execute("UPDATE jobs SET state='failed', finished=?, error=? WHERE id=? AND state='starting'",
                            (time.time(), f"could not start the job: {exc}", job.id))

    def _start_local(self, job: Job) -> None:
        # a tiny shell wrapper writes its pid first (found even if this runner dies before recording it)
        # and the exit status last, so any later runner can read both
        wrapper = ['/bin/sh', '-c', 'echo $$ > "$CLAB_JOB_PID_FILE"; "$@"; rc=$?; echo $rc > "$CLAB_JOB_EXIT_FILE"; '
                   'exit $rc', 'clab-job', *job.argv]
        env = self._env(job)
        env["CLAB_JOB_EXIT_FILE"] = str(job.exit_path)
        env["CLAB_JOB_PID_FILE"] = str(job.folder / "pid")
        with open(job.log_path, "ab") as log:
            proc = subprocess.Popen(wrapper, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(REPO_ROOT), env=env, start_new_session=True)
        with self._lock:
            self._procs[job.id] = proc
        job.pid, job.pgid, job.proc_start = proc.pid, proc.pid, _start_time(proc.pid)  # session leader: pgid = pid
        with self._connect() as con:
            cur = con.execute("UPDATE jobs SET state='running', pid=?, pgid=?, proc_start=? WHERE id=? AND "
                              "state='starting'", (job.pid, job.pgid, job.proc_start, job.id))
            if cur.rowcount != 1:  # cancelled while it was starting: record the process, then end it
                con.execute("UPDATE jobs SET pid=?, pgid=?, proc_start=? WHERE id=?",
                            (job.pid, job.pgid, job.proc_start, job.id))
        if cur.rowcount != 1:
            self._end_group(job)
            self._append_log(job, "[jobs] cancelled while starting: its processes were ended")

    def _job_alive(self, job: Job) -> bool:
        """Whether the job's recorded process is still running (reaping it if it is this runner's child)."""
        with self._lock:
            proc = self._procs.get(job.id)
        if proc is not None:
            if proc.poll() is None:
                return True
            with self._lock:
                self._procs.pop(job.id, None)
            return False
        return _alive(job.pid, job.proc_start)

    def _reap_own(self) -> None:
        """Forget (and reap) the processes this runner started that have exited."""
        with self._lock:
            procs = list(self._procs.items())
        for job_id, proc in procs:
            if proc.poll() is not None:
                with self._lock:
                    self._procs.pop(job_id, None)

    def _end_group(self, job: Job) -> bool:
        """End whatever is left of the job's process group, if the group is still the job's."""
        pgid = job.pgid or job.pid
        ended = False
        if pgid and _group_is_ours(pgid, job.proc_start):
            ended = _kill_group(pgid, self.kill_grace)
        self._job_alive(job)  # reap our own child
        return ended

    def _read_progress(self, job: Job) -> dict | None:
        try:
            return json.loads(job.progress_path.read_text())
        except (OSError, ValueError):
            return None

    def _refresh(self, job: Job) -> None:
        launched = job.ray_id if job.executor == "ray" else job.pid
        if not launched:  # claimed, its process not recorded yet: starting, not dead
            if job.started is not None and time.time() - job.started > STARTING_TIMEOUT:
                self._fail_stuck_start(job)
            return
        if job.state != "running":
            return
        if job.executor == "ray":
            self._refresh_ray(job)
            return
        if self._job_alive(job):
            self._store_progress(job)
            return
        self._finish_local(job)

    def _fail_stuck_start(self, job: Job) -> None:
        """A job claimed more than STARTING_TIMEOUT seconds ago with no recorded process: its runner died
        while launching it. End the process it may have left (the wrapper's pid file says which), fail it."""
        try:
            pid = int((job.folder / "pid").read_text().strip())
            proc = psutil.Process(pid)
            if proc.environ().get("CLAB_JOB_EXIT_FILE") == str(job.exit_path):  # it is this job's wrapper
                job.pgid, job.proc_start = os.getpgid(pid), _start_time(pid)
                self._end_group(job)
        except (OSError, ValueError, psutil.Error):
            pass
        reason = (f"the job was claimed by runner {job.claimed_by or '?'} but no process was recorded within "
                  f"{STARTING_TIMEOUT:.0f} s (that runner stopped while starting it); submit it again")
        self._append_log(job, f"[jobs] {reason}")
        with self._connect() as con:
            con.execute(f"UPDATE jobs SET state='failed', finished=?, error=? WHERE id=? AND {_ACTIVE_SQL} AND "
                        f"{'ray_id' if job.executor == 'ray' else 'pid'} IS NULL", (time.time(), reason, job.id))

    def _store_progress(self, job: Job) -> None:
        progress = self._read_progress(job)
        if progress:
            self._update(job.id, progress=json.dumps(progress))

    def _read_exit_code(self, job: Job) -> int | None:
        try:
            return int(job.exit_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _finish_local(self, job: Job) -> None:
        """The job's wrapper has ended: record its exit status. Without one the job is dead (the wrapper
        was killed): its process group is ended first, so nothing of it goes on running."""
        code = self._read_exit_code(job)
        ended = self._end_group(job)  # leftovers of a finished job, or the training a killed wrapper left
        reason = None
        if code is None:
            reason = (f"the job's process (pid {job.pid}) ended without an exit status (killed, or the machine "
                      f"restarted)")
            if ended:
                reason += "; the processes it left running were ended"
        self._finish(job, code, reason)

    def _finish(self, job: Job, code: int | None, reason: str | None = None) -> None:
        from engine.jobspec import read_result

        result = read_result(job.folder) or {}
        run_id = result.get("run_id") if isinstance(result.get("run_id"), str) else None
        progress = self._read_progress(job)
        values: dict[str, Any] = {"returncode": code, "finished": time.time(), "run_id": run_id}
        if progress:
            values["progress"] = json.dumps(progress)
        if code == 0 and reason is None:
            values["state"] = "succeeded"
        elif isinstance(result.get("error"), str) and reason is None:
            values["state"] = "failed"  # the job said why, in the user's words: no log dump
            values["error"] = result["error"]
        else:
            log = tail_text(job.log_path, 4000, max_bytes=2_000_000)
            last = "\n".join(log.splitlines()[-15:])
            why = reason or f"exit status {code}"
            values["state"] = "failed"
            values["error"] = f"{why}. Last lines of the log:\n{last}" if last else why
        with self._connect() as con:  # do not overwrite a cancel (or another runner's finish) that raced us
            cols = ", ".join(f"{k} = ?" for k in values)
            con.execute(f"UPDATE jobs SET {cols} WHERE id = ? AND state = 'running'", [*values.values(), job.id])
            con.execute("UPDATE jobs SET returncode=?, run_id=COALESCE(run_id, ?) WHERE id=? AND state='cancelled'",
                        (code, run_id, job.id))

    # -- Ray -----------------------------------------------------------------------------------
    def _ray(self):
        if self._ray_client is None:
            from ray.job_submission import JobSubmissionClient

            self._ray_client = JobSubmissionClient(self.ray_address)
        return self._ray_client

    def _start_ray(self, job: Job) -> None:
        env = {"CLAB_PROGRESS_FILE": str(job.progress_path), "CLAB_WORKSPACE": str(self.root),
               "CLAB_JOB_ID": str(job.id), "CLAB_JOB_DIR": str(job.folder), "PYTHONUNBUFFERED": "1",
               "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}
        cwd = os.environ.get("CLAB_RAY_CWD", str(REPO_ROOT))
        entrypoint = f"cd {shlex.quote(cwd)} && {shlex.join(job.argv)}"
        submission_id = f"clab-{job.id}-{int(time.time())}"
        kwargs = {}
        if job.gpu and self._gpu_available():
            kwargs["entrypoint_num_gpus"] = 1
        ray_id = self._ray().submit_job(entrypoint=entrypoint, submission_id=submission_id,
                                        runtime_env={"env_vars": env}, metadata={"clab_job": str(job.id)}, **kwargs)
        job.ray_id = ray_id
        with self._connect() as con:
            cur = con.execute("UPDATE jobs SET state='running', ray_id=? WHERE id=? AND state='starting'",
                              (ray_id, job.id))
            if cur.rowcount != 1:  # cancelled while it was starting
                con.execute("UPDATE jobs SET ray_id=? WHERE id=?", (ray_id, job.id))
        if cur.rowcount != 1:
            self._ray().stop_job(ray_id)

    def _ray_sync_log(self, job: Job) -> None:
        """Copy Ray's log of the job into the job's log file (after our own header lines)."""
        try:
            text = self._ray().get_job_logs(job.ray_id)
        except Exception:  # noqa: BLE001 - no log yet
            return
        header = [line for line in tail_text(job.log_path, 50).splitlines() if line.startswith("[jobs]")]
        job.log_path.write_text("\n".join(header) + "\n" + text, encoding="utf-8")

    def _refresh_ray(self, job: Job) -> None:
        try:
            info = self._ray().get_job_info(job.ray_id)
        except Exception as exc:  # noqa: BLE001 - cluster gone: keep it running, say why in the log
            self._append_log(job, f"[jobs] cannot reach Ray at {self.ray_address}: {exc}")
            return
        status = str(getattr(info.status, "value", info.status)).upper()
        self._ray_sync_log(job)
        self._store_progress(job)
        if status in ("PENDING", "RUNNING"):
            return
        if status == "SUCCEEDED":
            self._finish(job, 0)
        elif status == "STOPPED":
            self._update(job.id, state="cancelled", finished=time.time(), error="stopped in Ray")
        else:
            self._finish(job, getattr(info, "driver_exit_code", None) or 1,
                         f"Ray reports {status}: {info.message or ''}".strip())
