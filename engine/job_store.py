"""The job table: :class:`Job` rows in SQLite (``<workspace>/jobs.sqlite``, WAL mode) and their folders.

:class:`JobStore` is storage only (schema and migrations, insert, claim, update, get, list, delete); it starts
no process. The one piece of policy it holds is the claim (:meth:`JobStore.claim`): a single ``BEGIN
IMMEDIATE`` transaction counts the ``starting`` and ``running`` jobs and, only if fewer than
``max_concurrent``, moves the oldest queued job to ``starting``. No two runners (processes or threads) can
both pass the check, so ``max_concurrent`` holds across all of them.

Every job has a folder ``<workspace>/jobs/<id>/``: its log, progress file, exit status and, for training
jobs, ``spec.json`` / ``result.json``. Portable (SQLite and files only).

Damage is contained: the table is read row by row, and a row that cannot be read (a JSON column that is not
JSON, a table page that is damaged) is skipped and named in :attr:`JobStore.damaged` (reading it alone raises
:class:`DamagedJob`); a database that cannot be opened at all, or a ``jobs`` path that is not a folder, raises
:class:`JobTableUnreadable` from every call, with the file and the fix, until it is moved aside. Making a
store never raises either.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import contextmanager
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
#: what each JSON column must hold, and its value when empty (None: it may not be empty)
_JSON_SHAPES = {"argv": (list, None), "params": (dict, {}), "progress": (dict, {})}


class JobTableUnreadable(RuntimeError):
    """The job table as a whole cannot be used: its database is damaged, or its folder is not a folder. The
    message names the file and the fix (move it aside: a new one is made)."""


class DamagedJob(KeyError):
    """One row of the job table that cannot be read; the others can. ``job_id`` and ``problem`` say which and why."""

    def __init__(self, job_id: int, problem: str, db_path: Path):
        super().__init__(job_id)
        self.job_id, self.problem = int(job_id), problem
        self.message = (
            f"Job {job_id} is skipped: its row in the job table is damaged ({problem}). Delete the row to clear "
            f'this: sqlite3 {db_path} "DELETE FROM jobs WHERE id = {job_id}"'
        )

    def __str__(self) -> str:
        return self.message


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
        self.db_path = self.root / "jobs.sqlite"
        self.damaged: dict[int, str] = {}  # id -> why, for the rows the last reads skipped
        self._ready = False
        try:
            self._prepare()
        except JobTableUnreadable:
            pass  # said by every call until it is fixed

    def _prepare(self) -> None:
        """Make sure of the job folder (every call: a stat), and make the table (once; again after the table
        could not be read)."""
        folder = self.root / "jobs"
        if self._ready and folder.is_dir():
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._ready = False
            raise JobTableUnreadable(
                f"The job folder {folder} cannot be made ({exc.strerror or exc}): something else is in its place. "
                f"Move {folder} aside (rename it); a new job folder is made on the next refresh."
            ) from exc
        with self._guard():
            con = self._open()
            try:
                con.execute(_SCHEMA)
                self._migrate(con)
            finally:
                con.close()
        self._ready = True

    @contextmanager
    def _guard(self):
        """Turn a database error into :class:`JobTableUnreadable` naming the file and the fix."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            self._ready = False  # look again next time: the file may have been moved aside meanwhile
            raise JobTableUnreadable(
                f"The job database {self.db_path} cannot be read ({exc}). Move {self.db_path} aside (rename it, "
                f"e.g. to jobs.sqlite.damaged); a new, empty one is made on the next refresh. The jobs it lists are "
                "forgotten; their runs stay in the run store."
            ) from exc

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=30000")
        except BaseException:
            con.close()
            raise
        return con

    def _connect(self) -> sqlite3.Connection:
        self._prepare()
        return self._open()

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``body(con)`` in one write transaction (``BEGIN IMMEDIATE``: it holds the write lock from the start)."""
        with self._guard():
            return self._transact(body)

    def _transact(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
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
        """The row as a :class:`Job`; :class:`DamagedJob` when a JSON column does not hold what the store wrote."""
        values = dict(row)
        for column, (kind, empty) in _JSON_SHAPES.items():
            text = values[column]
            if not text and empty is not None:
                values[column] = dict(empty)
                continue
            try:
                values[column] = json.loads(text)
            except (TypeError, ValueError):
                raise DamagedJob(values["id"], f"its {column} column is not valid JSON", self.db_path) from None
            if not isinstance(values[column], kind):
                raise DamagedJob(values["id"], f"its {column} column holds no {kind.__name__}", self.db_path)
        if not all(isinstance(a, str) for a in values["argv"]):
            raise DamagedJob(values["id"], "its argv column holds more than text", self.db_path)
        values["gpu"] = bool(values["gpu"])
        try:
            return Job(**values, folder=self.job_dir(values["id"]))
        except TypeError as exc:  # a column the store does not know
            raise DamagedJob(values["id"], f"its columns do not fit a job ({exc})", self.db_path) from None

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

        while (job_id := self._transaction(body)) is not None:
            try:
                return self.get(job_id)
            except DamagedJob as exc:  # never started, never claimed again; named in the listing
                self.update(job_id, states=("starting",), state="failed", finished=time.time(), error=exc.problem)
        return None

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
        with self._guard():
            con = self._connect()
            try:
                return con.execute(sql, args).rowcount == 1
            finally:
                con.close()

    def delete(self, job_id: int) -> None:
        """Remove a job's row and folder."""
        with self._guard():
            con = self._connect()
            try:
                con.execute("DELETE FROM jobs WHERE id = ?", (int(job_id),))
            finally:
                con.close()
        self.damaged.pop(int(job_id), None)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # -- reads -----------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        """The job with this id: KeyError when there is none, :class:`DamagedJob` (a KeyError) when its row is
        damaged, :class:`JobTableUnreadable` when the table cannot be read."""
        with self._guard():
            con = self._connect()
            try:
                return self._read(con, int(job_id))
            finally:
                con.close()

    def _read(self, con: sqlite3.Connection, job_id: int) -> Job:
        """One row as a job; a row that cannot be read raises :class:`DamagedJob` and is named in :attr:`damaged`."""
        try:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"No job {job_id} in {self.db_path}")
            job = self._to_job(row)
        except DamagedJob as exc:
            self.damaged[job_id] = exc.problem
            raise
        except sqlite3.OperationalError:  # busy, locked: not damage
            raise
        except sqlite3.DatabaseError as exc:  # a damaged page holding this row: the others may read
            self.damaged[job_id] = f"its row cannot be read ({exc})"
            raise DamagedJob(job_id, self.damaged[job_id], self.db_path) from exc
        self.damaged.pop(job_id, None)
        return job

    def list(self, state: str | None = None, limit: int | None = None, active: bool = False) -> list[Job]:
        """Jobs, newest first: all, those in ``state``, or (``active=True``) those starting or running. Rows that
        cannot be read are left out and named in :attr:`damaged`."""
        sql, args = "SELECT id FROM jobs", []
        if active:
            sql += f" WHERE {_ACTIVE_SQL}"
        elif state:
            sql += " WHERE state = ?"
            args.append(state)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        jobs = []
        with self._guard():
            con = self._connect()
            try:
                for (job_id,) in con.execute(sql, args).fetchall():  # then row by row: a damaged one is skipped
                    try:
                        jobs.append(self._read(con, job_id))
                    except KeyError:  # damaged (named in self.damaged), or deleted meanwhile
                        continue
            finally:
                con.close()
        return jobs
