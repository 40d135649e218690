"""Hostile state under the job runner: a damaged job table (a row whose argv, params or progress is not JSON, a
truncated jobs.sqlite, a plain file where the job folders go). A damaged row is named and skipped; a table that
cannot be read is said with its fix; the runner's loop never raises and picks up again once the damage is moved
aside. Real SQLite files and real job processes, no mocks."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time

import pytest
from support import JOB_TABLE_DAMAGE, damaged_job_table

from engine.jobs import DamagedJob, JobRunner, JobTableUnreadable

PY = sys.executable
ROW_DAMAGE = ("argv", "params", "progress")


@pytest.mark.parametrize("damage", JOB_TABLE_DAMAGE)
def test_a_damaged_job_table_is_listed_around_or_said_with_its_fix(tmp_path, damage):
    bad = damaged_job_table(tmp_path, damage)
    runner = JobRunner(tmp_path)  # making a runner never raises
    if damage in ROW_DAMAGE:
        assert [j.id for j in runner.list()] == [3, 1]  # the others, newest first
        assert runner.damaged == {bad: f"its {damage} column is not valid JSON"}
        with pytest.raises(
            DamagedJob, match=rf"Job {bad} is skipped: .*{damage} column .*DELETE FROM jobs WHERE id = {bad}"
        ):
            runner.get(bad)
        with pytest.raises(KeyError):  # callers that skip a missing job skip a damaged one too
            runner.get(bad)
        assert runner.get(1).state == "succeeded"
        runner.delete(bad)  # a damaged row can be forgotten
        assert runner.list() and runner.damaged == {}
        return
    what = runner.db_path if damage == "truncated_db" else tmp_path / "jobs"
    for call in (runner.list, runner.active, lambda: runner.get(1), lambda: runner.submit_command([PY, "-c", "1"])):
        with pytest.raises(JobTableUnreadable, match=rf"{what} .*Move {what} aside"):
            call()


@pytest.mark.parametrize("damage", JOB_TABLE_DAMAGE)
def test_the_runner_loop_keeps_going_over_a_damaged_job_table(tmp_path, damage):
    bad = damaged_job_table(tmp_path, damage)
    runner = JobRunner(tmp_path)
    if damage in ROW_DAMAGE:
        with sqlite3.connect(runner.db_path) as con:  # the damaged job is waiting to start
            con.execute("UPDATE jobs SET state = 'queued', started = NULL, finished = NULL WHERE id = ?", (bad,))
        good = runner.submit_command([PY, "-c", "print('ran past the damage')"])
        job = runner.wait(good, timeout=60)  # ticks: claims the damaged row first, fails it, starts the next
        assert job.state == "succeeded" and "ran past the damage" in runner.log_tail(good)
        con = sqlite3.connect(runner.db_path)
        state, pid, error = con.execute("SELECT state, pid, error FROM jobs WHERE id = ?", (bad,)).fetchone()
        con.close()
        assert (state, pid) == ("failed", None) and f"{damage} column is not valid JSON" in error  # never started
        assert bad in runner.damaged and runner.problem is None
        return
    for _ in range(3):
        assert runner.tick() == []  # no exception: the loop goes on
        assert "aside" in runner.problem
    assert runner.recover() == []
    damaged = runner.db_path if damage == "truncated_db" else tmp_path / "jobs"
    damaged.rename(damaged.with_name(damaged.name + ".damaged"))  # the fix the message gives
    runner.tick()
    assert runner.problem is None
    assert [j.id for j in runner.list()] == ([] if damage == "truncated_db" else [3, 2, 1])  # a new table, or the old
    job = runner.wait(runner.submit_command([PY, "-c", "print('fresh table')"]), timeout=60)
    assert job.state == "succeeded"


def test_a_job_table_damaged_while_a_runner_uses_it_recovers_once_moved_aside(tmp_path):
    """The runner already made its table; the file is then replaced by garbage, then moved aside."""
    runner = JobRunner(tmp_path)
    runner.wait(runner.submit_command([PY, "-c", "1"]), timeout=60)
    runner.db_path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    assert runner.tick() == [] and "cannot be read" in runner.problem
    shutil.move(runner.db_path, tmp_path / "jobs.sqlite.damaged")
    deadline = time.monotonic() + 5
    while runner.tick() == [] and runner.problem and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.problem is None
    assert runner.wait(runner.submit_command([PY, "-c", "1"]), timeout=60).state == "succeeded"
