"""The jobs as the pages show them ("Trust the daily numbers"): a waiting job can be cancelled and never starts, a
cancel shows at once, the launch message follows its job, a second tab follows the newest finished job, and the
progress says the job's step, what runs in plain words and an estimate for the whole job with what it assumes."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict

from dashboard_support import run_page, texts
from support import demo_leads_csv

from engine.jobs import JobRunner

PY = sys.executable

#: a job that reports a real PhaseTracker's progress (the fit's planned parts) and then keeps running; it ignores
#: SIGTERM, so only the kill after the grace period ends it (a cancel that waited for it would take seconds)
TRACKED_JOB = """
import os, signal, time
from engine.callbacks import JsonProgressFile, PhaseTracker, Progress
signal.signal(signal.SIGTERM, signal.SIG_IGN)
tracker = PhaseTracker([JsonProgressFile(os.environ['CLAB_PROGRESS_FILE'])])
tracker.begin('fit')
tracker.on_plan({'stacking': 1.0})
tracker.on_train_begin(24, 'stacking')
tracker.on_step_end(Progress(step=20, total=24, stage='out of fold svc (5 folds)', seconds_left=180.0))
print('reported', flush=True)
time.sleep(120)
"""


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = f"/proc/{pid}/stat"
    return not os.path.exists(stat) or open(stat).read().rsplit(")", 1)[1].split()[0] == "Z"


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def _started_tracked_job(runner: JobRunner) -> int:
    job_id = runner.submit_command([PY, "-c", TRACKED_JOB], name="tracked job")
    runner.tick()
    assert _wait(lambda: (runner.get(job_id).progress or {}).get("step") == 20), runner.log_tail(job_id)
    return job_id


def test_cancel_is_recorded_at_once_and_the_processes_end_in_the_background(tmp_path):
    runner = JobRunner(tmp_path, kill_grace=3)
    job_id = _started_tracked_job(runner)
    pid = runner.get(job_id).pid
    started = time.monotonic()
    job = runner.cancel(job_id, clean_stop=2, wait=False)
    took = time.monotonic() - started
    # a waiting cancel takes clean_stop + kill_grace (5 s) here: the job ignores SIGTERM
    assert job.state == "cancelled" and took < 1.5, took
    assert JobRunner(tmp_path).get(job_id).state == "cancelled"  # every reader sees it at once
    assert not _pid_gone(pid)  # still being stopped...
    assert _wait(lambda: _pid_gone(pid), timeout=20)  # ...and ended by the background stop
    runner.tick()
    assert runner.get(job_id).state == "cancelled"
    assert _wait(lambda: "[jobs] cancelled by the user" in runner.log_tail(job_id))


def test_a_waiting_job_has_a_cancel_button_and_never_starts(workspace):
    runner = JobRunner(workspace, kill_grace=1)
    first = _started_tracked_job(runner)
    waiting = runner.submit_command([PY, "-c", "print('should never run')"], name="waiting job")
    try:
        at = run_page("train")
        assert runner.get(waiting).state == "queued"
        assert "Waiting for a free slot" in texts(at.caption)
        at.button(key=f"cancel_{waiting}").click().run()
        assert not at.exception
        assert runner.get(waiting).state == "cancelled"
        assert f"**Job {waiting}: waiting job** — cancelled" in texts(at.markdown)  # shown by the same run
        runner.cancel(first, clean_stop=0)
        runner.tick()  # a free slot now: the cancelled job still does not start
        job = runner.get(waiting)
        assert job.state == "cancelled" and job.pid is None and job.started is None
    finally:
        runner.cancel(first, clean_stop=0)


def test_the_page_shows_a_cancel_at_once_with_the_step_and_the_whole_job_estimate(workspace):
    runner = JobRunner(workspace, kill_grace=5)
    job_id = _started_tracked_job(runner)
    runner.store.update(job_id, started=time.time() - 100)  # 100 s into the job
    try:
        at = run_page("train")
        bar = next(p for p in at.get("progress"))
        text = bar.proto.text
        assert text.startswith("Step 1 of 4: Training — checking the support-vector model on held-out folds 20/24")
        assert "svc" not in text and "out of fold" not in text  # the technical stage is one click away
        assert "`out of fold svc (5 folds)`" in texts(at.caption)
        # the whole job: the fit is 80 % of the bar and 20 of its 24 steps are done, so 2/3 of the job is done
        eta = next(c for c in at.caption if c.value.startswith("Whole job:"))
        assert "about 50 s left" in eta.value and "slower while other jobs share the processor" in eta.value
        assert "share of the job done (67%)" in eta.proto.help
        started = time.monotonic()
        at.button(key=f"cancel_{job_id}").click().run()
        took = time.monotonic() - started
        assert not at.exception
        assert f"— {'cancelled'}" in texts(at.markdown)  # the panel says it in the run the click made
        assert took < 5 + 1, took  # the click did not wait for the kill (the job ignores SIGTERM for 5 s)
        assert runner.get(job_id).state == "cancelled"
    finally:
        runner.cancel(job_id, clean_stop=0)


def test_the_launch_message_says_the_jobs_state_and_goes_when_it_ends(workspace):
    from engine.datasets import DatasetStore

    DatasetStore().add(demo_leads_csv(n=100), filename="tiny.csv", kind="leads", target="Converted")
    at = run_page("train")
    at.button(key="train_launch").click().run()
    job_id = at.session_state["train_job"]
    runner = JobRunner(workspace)
    try:
        assert f"Job {job_id} queued — now running." in texts(at.success)
        runner.cancel(job_id, clean_stop=0)
        at.run()
        assert f"Job {job_id}" not in texts(at.success)  # no "queued" left over once the job has ended
        assert f"**Job {job_id}:" in texts(at.markdown) and "— cancelled" in texts(at.markdown)
    finally:
        runner.cancel(job_id, clean_stop=0)


def test_a_second_tab_follows_the_newest_finished_job(workspace):
    runner = JobRunner(workspace)

    def finished_job(name: str) -> int:
        job_id = runner.submit_command([PY, "-c", "print('ok')"], name=name)
        assert runner.wait(job_id, timeout=30, interval=0.1).state == "succeeded"
        return job_id

    first = finished_job("first")
    tab_a, tab_b = run_page("train"), run_page("train")
    assert tab_a.selectbox(key="train_history_pick").value == first
    second = finished_job("second")  # launched elsewhere (another tab, the command line)
    tab_b.run()
    assert tab_b.selectbox(key="train_history_pick").value == second
    assert "**Job 2: second** — finished" in texts(tab_b.markdown)  # the panel says which job it is
    tab_b.selectbox(key="train_history_pick").set_value(first).run()  # picked by hand: it stays...
    tab_b.run()
    assert tab_b.selectbox(key="train_history_pick").value == first
    tab_a.session_state["train_jobs_mine"] = [second]  # tab A launched the second job
    third = finished_job("third")
    tab_a.run()
    tab_b.run()
    assert tab_b.selectbox(key="train_history_pick").value == third  # ...until a newer job finishes
    assert tab_a.selectbox(key="train_history_pick").value == second  # a tab follows its own jobs first


def test_the_progress_of_a_real_training_job_reads_in_plain_words(workspace):
    """Every progress report of a real small stack (the pipeline's every phase), as the panel words it."""
    from dashboard.components.widgets import progress_text
    from engine.approaches.stacking import SMALL_PARAMS
    from engine.callbacks import Callback
    from engine.data.demo import demo_leads
    from engine.pipeline import train_leads

    reports = []

    class Keep(Callback):
        def on_step_end(self, progress):
            reports.append(asdict(progress))

    # meta_min_rows=0: the network even on these few rows, so its step is reported too
    params = {**SMALL_PARAMS, "meta_min_rows": 0}
    train_leads(demo_leads(n=200, seed=4), params=params, callbacks=[Keep()], dataset_name="words")
    lines = [progress_text(p)[1] for p in reports]
    joined = "\n".join(lines)
    for jargon in ("out of fold", "meta network", "svc", "xgboost ", "logistic_regression", "refit"):
        assert jargon not in joined, jargon
    assert "Step 1 of 4: Training — checking the support-vector model on held-out folds" in joined
    assert "Step 1 of 4: Training — training the combining network" in joined
    assert "Step 2 of 4: Scoring the test leads" in joined and "Step 4 of 4: Explaining sample leads" in joined
    assert all(line.startswith("Step ") or line.startswith("Finished") for line in lines)


def test_transcript_jobs_score_calls_and_the_export_is_said_plainly():
    from types import SimpleNamespace

    from dashboard.components.widgets import job_eta, job_noun, progress_text

    job = SimpleNamespace(kind="train-transcripts", params={"input_kind": "transcripts"})  # a job row's two fields
    assert job_noun(job) == "calls" and job_noun(SimpleNamespace(kind="train-leads", params={})) == "leads"
    report = {"phase": "evaluate", "phase_index": 1, "phases": 4, "stage": "scoring 84 test rows", "step": 0}
    assert progress_text(report, job_noun(job))[1] == "Step 2 of 4: Scoring the test calls — scoring 84 test calls"
    export = {"phase": "fit", "phase_index": 0, "phases": 4, "stage": "export to int8 ONNX", "step": 0, "total": 1}
    text = progress_text(export, "calls")[1]
    assert "making the model faster to score" in text and "ONNX" not in text and "int8" not in text
    # an estimate for the whole job only once enough is done to say, and never for a report without steps
    assert job_eta({"phase": "fit", "fraction": 0.01}, 100) is None
    assert job_eta({"stage": "train", "step": 3, "total": 10}, 100) is None
    text, why = job_eta({"phase": "fit", "fraction": 0.25}, 60.0)
    assert text.startswith("Whole job: about 3.0 min left") and "slower while other jobs" in text
    assert "idle 2-core CPU" in why
