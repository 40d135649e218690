"""Job runner: long work (training) runs outside the caller as its own process.

A job is an argv with persisted state: a row of the job table (:class:`engine.job_store.JobStore`,
``<workspace>/jobs.sqlite``) and a folder ``<workspace>/jobs/<id>/`` holding its log, its progress file
(written by :class:`engine.callbacks.JsonProgressFile` through ``CLAB_PROGRESS_FILE``) and its exit status.
A training job (:meth:`JobRunner.submit_train`) hands over a spec, not arguments: its folder holds
``spec.json`` (:class:`engine.jobspec.TrainSpec`), its argv is ``python -m engine run-job <folder>`` (the
same on Ray), and the child writes ``result.json`` (the run id, or the error in the user's words), which is
what the job records.

There is no long-lived thread: callers (the dashboard on each refresh, the CLI, tests) call
:meth:`JobRunner.tick`, which records the jobs that finished and starts queued ones in FIFO order up to
``max_concurrent``. Any number of runners (processes, or threads sharing one runner) may tick the same
table. The process itself is an executor's (:mod:`engine.executors`): ``local`` (a process group on this
machine, through a ``/bin/sh`` wrapper that writes the exit status) or ``ray`` (Ray's Job Submission API;
``RAY_ADDRESS`` or ``executor="ray"``).

States: ``queued`` -> ``starting`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``.

* Claiming is one SQLite ``BEGIN IMMEDIATE`` transaction (:meth:`JobStore.claim`), so ``max_concurrent``
  holds across processes and threads.
* The claiming runner launches the job and records its handle (pid, process group and process start time;
  or the Ray id) together with ``running`` in one UPDATE. A ``starting`` job is never judged dead by anyone;
  only after :data:`STARTING_TIMEOUT` seconds without a handle (its runner died while launching it) it is
  ended and marked failed, saying so.
* A ``running`` job whose process has ended is finished from its exit status; a local one without an exit
  status (the wrapper was killed) is judged dead: its whole process group is ended (SIGTERM, then SIGKILL)
  before it is marked failed, so no training goes on unseen.

A damaged job table does not stop the runner: a row that cannot be read is skipped and named
(:attr:`JobRunner.damaged`; a queued one is failed, never started), and a database that cannot be read at all
makes :meth:`JobRunner.tick` do nothing but say so (:attr:`JobRunner.problem`, with the fix) until it is moved
aside; listings raise :class:`engine.job_store.JobTableUnreadable` with the same words.

Jobs never see the caller's secrets: their environment is an allowlist (:func:`job_env`, :data:`JOB_ENV_NAMES`).

Platform: POSIX (Linux, macOS) for the local executor: process groups, ``os.killpg`` and the ``/bin/sh``
wrapper; process checks use ``psutil``.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
import uuid
from pathlib import Path

from engine.approaches.registry import approach_hook
from engine.config import workspace
from engine.executors import (
    JOB_ENV_NAMES,
    SECRET_ENV,
    SECRET_MARKERS,
    Executor,
    LocalExecutor,
    RayExecutor,
    gpu_info,
    job_env,
)
from engine.job_store import (
    ACTIVE,
    FINISHED,
    STATES,
    DamagedJob,
    Job,
    JobStore,
    JobTableUnreadable,
    last_lines,
    tail_text,
)
from engine.jobspec import DEFAULT_APPROACH, read_result, write_spec

__all__ = [
    "ACTIVE",
    "FINISHED",
    "DamagedJob",
    "JOB_ENV_NAMES",
    "SECRET_ENV",
    "SECRET_MARKERS",
    "STARTING_TIMEOUT",
    "STATES",
    "Job",
    "JobRunner",
    "JobStore",
    "JobTableUnreadable",
    "gpu_info",
    "job_env",
    "tail_text",
]

STARTING_TIMEOUT = 60.0  # seconds a job may stay claimed without a recorded process


class JobRunner:
    """Persisted job queue. Create one per process (it is cheap); all share the SQLite table, and one
    runner may be ticked from several threads."""

    def __init__(
        self,
        workspace_dir: str | Path | None = None,
        max_concurrent: int = 1,
        executor: str | None = None,
        ray_address: str | None = None,
        kill_grace: float = 5.0,
    ):
        # absolute: a job runs in the repository's folder (or CLAB_RAY_CWD on a Ray node), not the caller's
        self.root = (Path(workspace_dir) if workspace_dir is not None else workspace()).expanduser().absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.root)
        self.db_path = self.store.db_path
        self.max_concurrent = max(1, int(max_concurrent))
        self.ray_address = ray_address or os.environ.get("RAY_ADDRESS")
        if executor is None:
            executor = "ray" if self.ray_address else "local"
        if executor not in ("local", "ray"):
            raise ValueError(f"executor must be 'local' or 'ray', not {executor!r}")
        if executor == "ray" and not self.ray_address:
            raise ValueError(
                "executor='ray' needs a Ray address: set RAY_ADDRESS (e.g. http://127.0.0.1:8265) or pass ray_address="
            )
        self.executor = executor  # the name new jobs are recorded with
        self.kill_grace = kill_grace
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # names this runner in claimed_by
        self._executors: dict[str, Executor] = {}
        self.backend()  # made now, not first from two threads at once
        self.problem: str | None = None  # why the last tick could not read the job table (with the fix), or None

    @property
    def damaged(self) -> dict[int, str]:
        """``{job id: why}`` for the rows of the job table that the last reads skipped."""
        return dict(self.store.damaged)

    def backend(self, name: str | None = None) -> Executor:
        """The executor of that name (default: this runner's), made once per runner."""
        name = name or self.executor
        if name not in self._executors:
            self._executors[name] = (
                RayExecutor(self.root, self.ray_address, self.kill_grace)
                if name == "ray"
                else LocalExecutor(self.root, self.kill_grace)
            )
        return self._executors[name]

    def job_dir(self, job_id: int) -> Path:
        return self.store.job_dir(job_id)

    # -- submitting ------------------------------------------------------------------------------
    def submit_command(
        self,
        argv: list[str],
        kind: str = "command",
        gpu: bool = False,
        name: str | None = None,
        params: dict | None = None,
    ) -> int:
        """Queue an arbitrary argv as a job; returns its id. Call :meth:`tick` to start it."""
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings, e.g. [sys.executable, '-m', 'engine', ...]")
        return self.store.insert(
            name=name or kind, kind=kind, argv=list(argv), params=params or {}, gpu=gpu, executor=self.executor
        )

    def submit(
        self, kind: str, args: list[str], gpu: bool = False, name: str | None = None, params: dict | None = None
    ) -> int:
        """Queue ``python -m engine <args...>`` (e.g. ``args=["train", "leads", "--data=..."]``)."""
        return self.submit_command(
            [sys.executable, "-m", "engine", *args], kind=kind, gpu=gpu, name=name, params=params
        )

    def submit_train(self, spec, gpu: bool | None = None, name: str | None = None) -> int:
        """Queue a training job from the one :class:`engine.jobspec.TrainSpec` the CLI, the Train page and the API
        build (checked when it was made). Its folder gets ``spec.json`` and the job runs ``python -m engine run-job
        <folder>``, which writes ``result.json``. ``gpu=None`` asks for a GPU for an approach that wants one (its
        ``wants_gpu`` hook: the LLM) when the machine has one; the job then trains on ``cuda``."""
        from dataclasses import replace

        approach = spec.approach or DEFAULT_APPROACH[spec.input_kind]
        if gpu is None:
            gpu = bool(approach_hook(approach, "wants_gpu", False))
        if gpu and self.backend().gpu_available() and "device" not in spec.params:
            spec = replace(spec, params={**spec.params, "device": "cuda"})
        data_name = Path(str(spec.data)).name if spec.data else "the demo data"
        if spec.data and not Path(spec.data).is_absolute():
            # the job reads it from its own folder (the repository here, CLAB_RAY_CWD on a Ray node): the caller's
            # relative path is made absolute now, the path every Ray worker must see (README, "Ray")
            spec = replace(spec, data=str(Path(spec.data).expanduser().absolute()))
        return self.submit_spec(spec, gpu=bool(gpu), name=name or f"{approach} on {spec.dataset_name or data_name}")

    def submit_spec(self, spec, gpu: bool = False, name: str | None = None) -> int:
        """Queue ``python -m engine run-job <job folder>`` for a :class:`engine.jobspec.TrainSpec`. The row, the
        folder and its ``spec.json`` are made in one transaction: no runner can claim the job before its spec
        exists."""

        def prepare(_job_id: int, folder: Path) -> list[str]:
            write_spec(folder, spec)
            return [sys.executable, "-m", "engine", "run-job", str(folder)]

        return self.store.insert(
            name=name or f"train-{spec.input_kind}",
            kind=f"train-{spec.input_kind}",
            argv=prepare,
            params=spec.to_dict(),
            gpu=gpu,
            executor=self.executor,
        )

    # -- reading ---------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        job = self.store.get(job_id)
        if job.state == "running":
            job.progress = job.read_progress() or job.progress
        return job

    def list(self, state: str | None = None, limit: int | None = None) -> list[Job]:
        """Jobs, newest first (optionally only those in ``state``)."""
        return self.store.list(state, limit)

    def active(self) -> list[Job]:
        """The ``starting`` and ``running`` jobs, newest first."""
        return self.store.list(active=True)

    def log_tail(self, job_id: int, n: int = 40) -> str:
        job = self.get(job_id)
        if job.done:
            return tail_text(job.log_path, n)
        return last_lines(self.backend(job.executor).logs(job), n)

    # -- the loop --------------------------------------------------------------------------------
    def tick(self) -> list[Job]:
        """Record finished jobs, then start queued ones (FIFO) while fewer than ``max_concurrent`` are
        starting or running. Returns the jobs that are starting or running afterwards. A job table that
        cannot be read is no error here: the tick does nothing, :attr:`problem` says why, the next one tries again."""
        try:
            active = self._tick()
        except JobTableUnreadable as exc:
            self.problem = str(exc)
            return []
        self.problem = None
        return active

    def _tick(self) -> list[Job]:
        for job in self.active():
            self._refresh(job)
        for backend in self._executors.values():
            backend.reap()
        while (job := self._claim()) is not None:
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

    def cancel(self, job_id: int, clean_stop: float = 1.0, wait: bool = True) -> Job:
        """Stop a job: touch the progress cancel marker (a training loop stops cleanly between steps)
        and wait up to ``clean_stop`` seconds, then kill its process group (SIGTERM, SIGKILL after
        ``kill_grace`` seconds). A queued job is just marked cancelled (it never starts); a starting one is
        ended by the runner launching it as soon as its process exists.

        The job is marked ``cancelled`` at once, before its processes are ended: every listing shows it
        cancelled from then on. ``wait=False`` (the dashboard's button) returns right then and ends the processes
        in a background thread, so a page reflects the cancel without waiting for the clean stop and the kill."""
        job = self.get(job_id)
        if job.done or (
            job.state == "queued"
            and self.store.update(job.id, states=("queued",), state="cancelled", finished=time.time())
        ):
            return self.get(job_id)
        job.progress_path.with_name(job.progress_path.name + ".cancel").touch()
        if not self.store.update(
            job.id, states=ACTIVE, state="cancelled", finished=time.time(), error="cancelled by the user"
        ):
            return self.get(job_id)  # it finished first
        job = self.get(job_id)  # its handle as recorded now (it may have started meanwhile)
        if not wait:
            threading.Thread(target=self._stop, args=(job, clean_stop), daemon=True, name=f"cancel-{job.id}").start()
            return job
        self._stop(job, clean_stop)
        return self.get(job_id)

    def _stop(self, job: Job, clean_stop: float) -> None:
        """End the processes of a job already marked cancelled."""
        if getattr(job, self.backend(job.executor).handle):
            self.backend(job.executor).cancel(job, clean_stop)
        job.append_log("[jobs] cancelled by the user")

    def recover(self) -> list[int]:
        """After a restart: local jobs marked running whose process is gone are finished (failed when
        they left no exit status, their leftover processes ended), and jobs stuck in ``starting`` for
        more than :data:`STARTING_TIMEOUT` seconds fail. Returns the ids of the jobs that failed."""
        lost = []
        try:
            active = self.active()
        except JobTableUnreadable as exc:
            self.problem = str(exc)
            return lost
        for job in active:
            if job.executor == "local":
                self._refresh(job)
                if self.get(job.id).state == "failed":
                    lost.append(job.id)
        return lost

    def delete(self, job_id: int) -> None:
        """Forget a finished job (its folder is removed), or a job whose row is damaged."""
        try:
            job = self.get(job_id)
        except DamagedJob:
            self.store.delete(job_id)
            return
        if not job.done:
            raise RuntimeError(f"job {job_id} is {job.state}; cancel it before deleting it")
        self.store.delete(job.id)

    # -- internals -------------------------------------------------------------------------------
    def _claim(self) -> Job | None:
        return self.store.claim(self.max_concurrent, self.token)

    def _start(self, job: Job) -> None:
        """Launch a job this runner claimed and record its handle with ``running``; a launch error fails it
        visibly, and a job cancelled while it was starting is ended as soon as it has a handle."""
        backend = self.backend(job.executor)
        job.append_log(f"[jobs] job {job.id} ({job.name}) on {job.executor}: {shlex.join(job.argv)}")
        try:
            handle = backend.start(job)
        except Exception as exc:  # noqa: BLE001 - any launch error fails the job visibly
            job.append_log(f"[jobs] could not start: {type(exc).__name__}: {exc}")
            self.store.update(
                job.id,
                states=("starting",),
                state="failed",
                finished=time.time(),
                error=f"could not start the job: {exc}",
            )
            return
        for key, value in handle.items():
            setattr(job, key, value)
        if not self.store.update(job.id, states=("starting",), state="running", **handle):
            self.store.update(job.id, **handle)  # cancelled while it was starting: record it, then end it
            backend.cancel(job)
            job.append_log("[jobs] cancelled while starting: its processes were ended")

    def _refresh(self, job: Job) -> None:
        """Fail a job stuck in ``starting``; finish a running one whose process has ended."""
        backend = self.backend(job.executor)
        if not getattr(job, backend.handle):  # claimed, not launched yet: starting, not dead
            if job.started is not None and time.time() - job.started > STARTING_TIMEOUT:
                self._fail_stuck_start(job, backend)
            return
        if job.state != "running":
            return
        ended = backend.poll(job)
        if ended is None:
            progress = job.read_progress()
            if progress:
                self.store.update(job.id, progress=progress)
        else:
            self._finish(job, *ended)

    def _fail_stuck_start(self, job: Job, backend: Executor) -> None:
        """A job claimed more than STARTING_TIMEOUT seconds ago with no recorded handle: its runner died while
        launching it. End what it may have left running, then fail it."""
        backend.cancel(job)
        reason = (
            f"the job was claimed by runner {job.claimed_by or '?'} but no process was recorded within "
            f"{STARTING_TIMEOUT:.0f} s (that runner stopped while starting it); submit it again"
        )
        job.append_log(f"[jobs] {reason}")
        self.store.update(
            job.id, states=ACTIVE, unset=backend.handle, state="failed", finished=time.time(), error=reason
        )

    def _finish(self, job: Job, code: int | None, reason: str | None = None) -> None:
        """Record how a running job ended: succeeded (exit 0), or failed with the error in the user's words
        (``result.json``) or, failing that, the reason / exit status and the end of the log."""
        result = read_result(job.folder) or {}
        run_id = result.get("run_id") if isinstance(result.get("run_id"), str) else None
        values = {"returncode": code, "finished": time.time(), "run_id": run_id}
        if progress := job.read_progress():
            values["progress"] = progress
        if code == 0 and reason is None:
            values["state"] = "succeeded"
        elif isinstance(result.get("error"), str) and reason is None:
            values.update(state="failed", error=result["error"])  # the job said why, in the user's words
        else:
            last = tail_text(job.log_path, 15, max_bytes=2_000_000)
            why = reason or f"exit status {code}"
            values.update(state="failed", error=f"{why}. Last lines of the log:\n{last}" if last else why)
        # do not overwrite a cancel (or another runner's finish) that raced us; a cancel keeps its exit status
        if not self.store.update(job.id, states=("running",), **values):
            self.store.update(job.id, states=("cancelled",), returncode=code, **({"run_id": run_id} if run_id else {}))
