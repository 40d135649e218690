"""The job table: :class:`Job` rows in SQLite (``<workspace>/jobs.sqlite``, WAL mode) and their folders.

:class:`JobStore` is storage only (schema and migrations, insert, claim, update, get, list, delete); it starts
no process. The one piece of policy it holds is the claim (:meth:`JobStore.claim`): a single ``BEGIN
IMMEDIATE`` transaction counts the ``starting`` and ``running`` jobs and, only if fewer than
``max_concurrent``, moves the oldest queued job to ``starting``. No two runners (processes or threads) can
both pass the check, so ``max_concurrent`` holds across all of them.

Every job has a folder ``<workspace>/jobs/<id>/``: its log, progress file, exit status and, for training
jobs, ``spec.json`` / ``result.json``. Portable (SQLite and files only).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATES = ("queued", "starting", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("starting", "running")
FINISHED = ("succeeded", "failed", "cancelled")

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
_JSON_COLUMNS = ("argv", "params", "progress")
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

    def read_progress(self) -> dict | None:
        """The progress file's latest payload, or None (none yet, or half-written)."""
        try:
            return json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return None

    def append_log(self, line: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")


def read_end(path: Path, max_bytes: int = 256_000) -> str:
    """The last ``max_bytes`` of a text file, decoded leniently ("" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - max_bytes, 0))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def last_lines(text: str, n: int = 40) -> str:
    """The last ``n`` non-blank lines of ``text`` (progress-bar carriage returns become new lines)."""
    lines = [line for line in text.replace("\r", "\n").split("\n") if line.strip()]
    return "\n".join(lines[-n:])


def tail_text(path: Path, n: int = 40, max_bytes: int = 256_000) -> str:
    """The last ``n`` lines of a text file (progress-bar carriage returns become new lines)."""
    return last_lines(read_end(path, max_bytes), n)


class JobStore:
    """SQLite <-> :class:`Job`. Opens a connection per call, so one store may be used from several threads."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "jobs.sqlite"
        with self._connect() as con:
            con.execute(_SCHEMA)
            self._migrate(con)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``body(con)`` in one write transaction (``BEGIN IMMEDIATE``: it holds the write lock from the start)."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                result = body(con)
                con.execute("COMMIT")
                return result
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    def _migrate(self, con: sqlite3.Connection) -> None:
        """Add the columns an older ``jobs.sqlite`` lacks (in a write transaction: two runners may open it)."""

        def have() -> set[str]:
            return {r["name"] for r in con.execute("PRAGMA table_info(jobs)")}

        if set(_ADDED_COLUMNS) <= have():
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            for name in set(_ADDED_COLUMNS) - have():
                con.execute(f"ALTER TABLE jobs ADD COLUMN {name} {_ADDED_COLUMNS[name]}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def job_dir(self, job_id: int) -> Path:
        return self.root / "jobs" / str(job_id)

    def _to_job(self, row: sqlite3.Row) -> Job:
        values = dict(row)
        values["argv"] = json.loads(values["argv"])
        values["params"] = json.loads(values["params"] or "{}")
        values["progress"] = json.loads(values["progress"]) if values["progress"] else {}
        values["gpu"] = bool(values["gpu"])
        return Job(**values, folder=self.job_dir(values["id"]))

    # -- writes ----------------------------------------------------------------------------------
    def insert(
        self,
        *,
        name: str,
        kind: str,
        argv: list[str] | Callable[[int, Path], list[str]],
        params: dict,
        gpu: bool,
        executor: str,
    ) -> int:
        """Queue a job; returns its id. ``argv`` may be a function of (id, folder) that prepares the folder and
        returns the argv: it runs inside the insert's transaction, so no runner can claim the job before."""

        def body(con: sqlite3.Connection) -> int:
            cur = con.execute(
                "INSERT INTO jobs (name, kind, argv, params, gpu, executor, state, created) VALUES (?,?,?,?,?,?,?,?)",
                (name, kind, "[]", json.dumps(params), int(bool(gpu)), executor, "queued", time.time()),
            )
            job_id = int(cur.lastrowid)
            folder = self.job_dir(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            con.execute(
                "UPDATE jobs SET argv = ? WHERE id = ?",
                (json.dumps(argv(job_id, folder) if callable(argv) else argv), job_id),
            )
            return job_id

        return self._transaction(body)

    def claim(self, max_concurrent: int, claimed_by: str) -> Job | None:
        """Move the oldest queued job to ``starting`` (claimed by ``claimed_by``) if fewer than ``max_concurrent``
        jobs are starting or running; one write transaction, so the count and the claim cannot interleave with
        another runner's. Returns the claimed job, or None."""

        def body(con: sqlite3.Connection) -> int | None:
            if con.execute(f"SELECT COUNT(*) FROM jobs WHERE {_ACTIVE_SQL}").fetchone()[0] >= max_concurrent:
                return None
            row = con.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY id ASC LIMIT 1").fetchone()
            if row is not None:
                con.execute(
                    "UPDATE jobs SET state='starting', started=?, claimed_by=? WHERE id=?",
                    (time.time(), claimed_by, row["id"]),
                )
            return None if row is None else row["id"]

        job_id = self._transaction(body)
        return None if job_id is None else self.get(job_id)

    def update(
        self, job_id: int, *, states: tuple[str, ...] | None = None, unset: str | None = None, **values: Any
    ) -> bool:
        """Set columns of a job (dicts and lists stored as JSON); only while it is in one of ``states`` and, with
        ``unset``, while that column is NULL. Returns whether the row was updated (False: someone got there first)."""
        assert unset in (None, "pid", "ray_id"), unset  # a handle column, never caller text
        values = {k: json.dumps(v) if k in _JSON_COLUMNS else v for k, v in values.items()}
        sql = "UPDATE jobs SET " + ", ".join(f"{k} = ?" for k in values) + " WHERE id = ?"
        args = [*values.values(), int(job_id)]
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            args += list(states)
        if unset:
            sql += f" AND {unset} IS NULL"
        with self._connect() as con:
            return con.execute(sql, args).rowcount == 1

    def delete(self, job_id: int) -> None:
        """Remove a job's row and folder."""
        with self._connect() as con:
            con.execute("DELETE FROM jobs WHERE id = ?", (int(job_id),))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # -- reads -----------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        if row is None:
            raise KeyError(f"No job {job_id} in {self.db_path}")
        return self._to_job(row)

    def list(self, state: str | None = None, limit: int | None = None, active: bool = False) -> list[Job]:
        """Jobs, newest first: all, those in ``state``, or (``active=True``) those starting or running."""
        sql, args = "SELECT * FROM jobs", []
        if active:
            sql += f" WHERE {_ACTIVE_SQL}"
        elif state:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as con:
            return [self._to_job(r) for r in con.execute(sql, args).fetchall()]
