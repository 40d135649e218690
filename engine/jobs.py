"""Job runner: long work (training) runs outside the caller as its own process.

A job is an argv (normally ``python -m engine train ...``) with persisted state in SQLite
(``<workspace>/jobs.sqlite``, WAL mode) and a folder ``<workspace>/jobs/<id>/`` holding its log,
its progress file (written by :class:`engine.callbacks.JsonProgressFile` through
``CLAB_PROGRESS_FILE``) and its exit status.

There is no long-lived thread: callers (the dashboard on each refresh, the CLI, tests) call
:meth:`JobRunner.tick`, which starts queued jobs in FIFO order up to ``max_concurrent`` and
records the ones that finished. Two executors share the table:

* ``local``: a subprocess in its own process group (``start_new_session=True``), so cancel can
  kill the whole group (SIGTERM, then SIGKILL);
* ``ray``: the same entry point submitted through Ray's Job Submission API
  (``RAY_ADDRESS`` or ``executor="ray"``); status and logs are read back from Ray.

States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import REPO_ROOT, workspace

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
RUN_ID_PATTERN = re.compile(r"^RUN_ID=(\S+)\s*$", re.MULTILINE)

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
    ray_id TEXT
)
"""


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
def _proc_start_time(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, from /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int | None, proc_start: str | None) -> bool:
    """True while the process exists, is not a zombie, and is the one we started."""
    if not pid:
        return False
    try:  # reap it if it is our child
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in ("Z", "X"):
        return False
    return proc_start is None or _proc_start_time(pid) == proc_start


def _kill_group(pid: int, grace: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL what is left after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


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


def find_run_id(text: str) -> str | None:
    """The run id a training job printed (``RUN_ID=<id>``), the last one wins."""
    found = RUN_ID_PATTERN.findall(text.replace("\r", "\n"))
    return found[-1] if found else None


# -- the runner -------------------------------------------------------------------------------
class JobRunner:
    """Persisted job queue. Create one per process (it is cheap); all share the SQLite table."""

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
        self._ray_client = None
        self._procs: dict[int, subprocess.Popen] = {}
        with self._connect() as con:
            con.execute(_SCHEMA)

    # -- storage -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

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
                   folder=self.root / "jobs" / str(row["id"]))

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
        """Queue ``python -m engine <args...>`` (e.g. ``args=["train", "leads", "--data", ...]``)."""
        return self.submit_command([sys.executable, "-m", "engine", *args], kind=kind, gpu=gpu, name=name,
                                   params=params)

    def submit_train(self, input_kind: str, data: str | Path, approach: str, params: dict | None = None,
                     target: str | None = None, leak_policy: str | None = None, exclude: list[str] | None = None,
                     dataset_name: str | None = None, gpu: bool | None = None, name: str | None = None,
                     include: list[str] | None = None) -> int:
        """Queue a training job: ``python -m engine train <input_kind> --data ... --approach ...``.

        ``gpu=None`` asks for a GPU for the LLM approach (``lora``) when one is available.
        """
        args = train_args(input_kind, data, approach, params=params, target=target, leak_policy=leak_policy,
                          exclude=exclude, dataset_name=dataset_name, include=include)
        if gpu is None:
            gpu = approach == "lora"
        if gpu and self._gpu_available():
            args += ["--device", "cuda"]
        record = {"input_kind": input_kind, "data": str(data), "approach": approach, "params": params or {},
                  "target": target, "leak_policy": leak_policy, "exclude": exclude or [], "include": include or [],
                  "dataset_name": dataset_name}
        return self.submit(f"train-{input_kind}", args, gpu=bool(gpu),
                           name=name or f"{approach} on {dataset_name or Path(str(data)).name}", params=record)

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

    def log_tail(self, job_id: int, n: int = 40) -> str:
        job = self.get(job_id)
        if job.executor == "ray" and not job.done and job.ray_id:
            self._ray_sync_log(job)
        return tail_text(job.log_path, n)

    def tick(self) -> list[Job]:
        """Record finished jobs, then start queued ones (FIFO) up to ``max_concurrent``.
        Returns the jobs that are running afterwards."""
        running = self.list(state="running")
        for job in running:
            self._refresh(job)
        running = [j for j in self.list(state="running")]
        free = self.max_concurrent - len(running)
        if free > 0:
            with self._connect() as con:
                rows = con.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id ASC LIMIT ?",
                                   (free,)).fetchall()
            for row in rows:
                self._start(self._row_to_job(row))
        return self.list(state="running")

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
        ``kill_grace`` seconds). A queued job is just marked cancelled."""
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
        self._update(job.id, state="cancelled", finished=time.time(), error="cancelled by the user")
        if job.executor == "ray":
            try:
                self._ray().stop_job(job.ray_id)
            except Exception as exc:  # noqa: BLE001 - the job may already be gone
                self._append_log(job, f"[jobs] Ray stop_job failed: {exc}")
            self._ray_sync_log(job)
        elif job.pid:
            deadline = time.monotonic() + clean_stop  # give the training loop a chance to stop itself
            while time.monotonic() < deadline and _alive(job.pid, self._proc_start(job)):
                time.sleep(0.05)
            _kill_group(job.pid, self.kill_grace)
            self._procs.pop(job.id, None)
        self._append_log(job, "[jobs] cancelled by the user")
        return self.get(job_id)

    def recover(self) -> list[int]:
        """After a restart: local jobs marked running whose process is gone become failed (log kept).
        Returns their ids."""
        lost = []
        for job in self.list(state="running"):
            if job.executor == "local" and not _alive(job.pid, self._proc_start(job)):
                self._finish_local(job)
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

    def _proc_start(self, job: Job) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT proc_start FROM jobs WHERE id=?", (job.id,)).fetchone()
        return row["proc_start"] if row else None

    def _env(self, job: Job) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"CLAB_PROGRESS_FILE": str(job.progress_path), "CLAB_WORKSPACE": str(self.root),
                    "CLAB_JOB_ID": str(job.id), "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))})
        if not job.gpu and gpu_info()["cuda"]:
            env.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU jobs leave the GPU to the ones that asked
        return env

    def _append_log(self, job: Job, line: str) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        with open(job.log_path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")

    def _start(self, job: Job) -> None:
        # claim the job (another runner may be ticking the same table)
        with self._connect() as con:
            cur = con.execute("UPDATE jobs SET state='running', started=? WHERE id=? AND state='queued'",
                              (time.time(), job.id))
            if cur.rowcount != 1:
                return
        job.folder.mkdir(parents=True, exist_ok=True)
        self._append_log(job, f"[jobs] job {job.id} ({job.name}) on {job.executor}: {shlex.join(job.argv)}")
        try:
            if job.executor == "ray":
                self._start_ray(job)
            else:
                self._start_local(job)
        except Exception as exc:  # noqa: BLE001 - any launch error fails the job visibly
            self._append_log(job, f"[jobs] could not start: {type(exc).__name__}: {exc}")
            self._update(job.id, state="failed", finished=time.time(), error=f"could not start the job: {exc}")

    def _start_local(self, job: Job) -> None:
        exit_file = job.folder / "exit_code"
        # a tiny shell wrapper records the exit status, so any later runner can read it
        wrapper = ['/bin/sh', '-c', '"$@"; rc=$?; echo $rc > "$CLAB_JOB_EXIT_FILE"; exit $rc', 'clab-job', *job.argv]
        env = self._env(job)
        env["CLAB_JOB_EXIT_FILE"] = str(exit_file)
        log = open(job.log_path, "ab")
        try:
            proc = subprocess.Popen(wrapper, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(REPO_ROOT), env=env, start_new_session=True)
        finally:
            log.close()
        self._procs[job.id] = proc
        self._update(job.id, pid=proc.pid, proc_start=_proc_start_time(proc.pid))

    def _read_progress(self, job: Job) -> dict | None:
        try:
            return json.loads(job.progress_path.read_text())
        except (OSError, ValueError):
            return None

    def _refresh(self, job: Job) -> None:
        if job.executor == "ray":
            self._refresh_ray(job)
            return
        proc = self._procs.get(job.id)
        if proc is not None:
            if proc.poll() is None:
                self._store_progress(job)
                return
        elif _alive(job.pid, self._proc_start(job)):
            self._store_progress(job)
            return
        self._finish_local(job)

    def _store_progress(self, job: Job) -> None:
        progress = self._read_progress(job)
        if progress:
            self._update(job.id, progress=json.dumps(progress))

    def _finish_local(self, job: Job) -> None:
        self._procs.pop(job.id, None)
        exit_file = job.folder / "exit_code"
        try:
            code = int(exit_file.read_text().strip())
        except (OSError, ValueError):
            code = None
        self._finish(job, code, "the job's process ended without an exit status (killed, or the machine "
                                "restarted)" if code is None else None)

    def _finish(self, job: Job, code: int | None, reason: str | None = None) -> None:
        log = tail_text(job.log_path, 4000, max_bytes=2_000_000)
        run_id = find_run_id(log)
        progress = self._read_progress(job)
        values: dict[str, Any] = {"returncode": code, "finished": time.time(), "run_id": run_id}
        if progress:
            values["progress"] = json.dumps(progress)
        if code == 0 and reason is None:
            values["state"] = "succeeded"
        else:
            last = "\n".join(log.splitlines()[-15:])
            why = reason or f"exit status {code}"
            values["state"] = "failed"
            values["error"] = f"{why}. Last lines of the log:\n{last}" if last else why
        with self._connect() as con:  # do not overwrite a cancel that raced us
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
               "CLAB_JOB_ID": str(job.id), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}
        cwd = os.environ.get("CLAB_RAY_CWD", str(REPO_ROOT))
        entrypoint = f"cd {shlex.quote(cwd)} && {shlex.join(job.argv)}"
        submission_id = f"clab-{job.id}-{int(time.time())}"
        kwargs = {}
        if job.gpu and self._gpu_available():
            kwargs["entrypoint_num_gpus"] = 1
        ray_id = self._ray().submit_job(entrypoint=entrypoint, submission_id=submission_id,
                                        runtime_env={"env_vars": env}, metadata={"clab_job": str(job.id)}, **kwargs)
        self._update(job.id, ray_id=ray_id)
        job.ray_id = ray_id

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


def train_args(input_kind: str, data: str | Path, approach: str, params: dict | None = None,
               target: str | None = None, leak_policy: str | None = None, exclude: list[str] | None = None,
               dataset_name: str | None = None, include: list[str] | None = None) -> list[str]:
    """The ``python -m engine`` arguments of a training run (without the interpreter)."""
    if input_kind not in ("leads", "transcripts"):
        raise ValueError(f"input_kind must be 'leads' or 'transcripts', not {input_kind!r}")
    args = ["train", input_kind, "--data", str(data), "--approach", approach]
    if target:
        args += ["--target", target]
    if leak_policy:
        args += ["--leak-policy", leak_policy]
    for column in exclude or []:
        args += ["--exclude", column]
    for column in include or []:
        args += ["--include", column]
    if dataset_name:
        args += ["--name", dataset_name]
    for key, value in (params or {}).items():
        if value is None:
            continue
        args += ["--param", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return args
