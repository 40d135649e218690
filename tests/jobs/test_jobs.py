"""The job runner, for real: subprocesses, process groups, SQLite state, Ray Jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import start_job_with_grandchild, wait_for_log

from engine.jobs import JobRunner, gpu_info
from engine.jobspec import TrainSpec, read_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# A job that reports progress through the engine's own callback and honours the cancel marker.
PROGRESS_SCRIPT = """
import os, sys, time
from engine.callbacks import CallbackList, JsonProgressFile, Progress, TrainingCancelled
cbs = CallbackList([JsonProgressFile(os.environ['CLAB_PROGRESS_FILE'])])
total = int(sys.argv[1]); pause = float(sys.argv[2])
cbs.on_train_begin(total)
try:
    for step in range(1, total + 1):
        time.sleep(pause)
        cbs.on_step_end(Progress(step=step, total=total, loss=1.0 / step))
except TrainingCancelled:
    print('stopped cleanly'); sys.exit(3)
import json
open(os.path.join(os.environ['CLAB_JOB_DIR'], 'result.json'), 'w').write(json.dumps({'run_id': 'run-from-progress-job'}))
print('done')
"""


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_quick_job_succeeds_with_progress_and_run_id(tmp_path):
    runner = JobRunner(tmp_path)
    job_id = runner.submit_command([PY, "-c", PROGRESS_SCRIPT, "5", "0.01"], name="quick")
    assert runner.get(job_id).state == "queued"
    job = runner.wait(job_id, timeout=60)
    assert job.state == "succeeded", runner.log_tail(job_id)
    assert job.returncode == 0
    assert job.run_id == "run-from-progress-job"
    assert job.progress["step"] == 5 and job.progress["total"] == 5
    assert [h["step"] for h in job.progress["history"]] == [1, 2, 3, 4, 5]
    assert "done" in runner.log_tail(job_id)
    assert (tmp_path / "jobs.sqlite").exists() and job.log_path.parent == tmp_path / "jobs" / str(job_id)


def test_failed_job_keeps_the_error_lines(tmp_path):
    runner = JobRunner(tmp_path)
    job_id = runner.submit_command([PY, "-c", "print('loading'); raise ValueError('column Converted is missing')"])
    job = runner.wait(job_id, timeout=60)
    assert job.state == "failed"
    assert job.returncode == 1
    assert "column Converted is missing" in job.error
    assert job.run_id is None


def test_cancel_kills_the_whole_process_group(tmp_path):
    runner = JobRunner(tmp_path, kill_grace=2)
    job_id, _, grandchild = start_job_with_grandchild(runner)  # a grandchild would outlive a kill of the child
    pid = runner.get(job_id).pid
    job = runner.cancel(job_id, clean_stop=0)
    assert job.state == "cancelled"
    deadline = time.monotonic() + 10
    while not (_pid_gone(pid) and _pid_gone(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pid_gone(pid) and _pid_gone(grandchild)
    runner.tick()
    assert runner.get(job_id).state == "cancelled"
    assert (job.folder / "progress.json.cancel").exists()


def test_cancel_marker_stops_training_cleanly(tmp_path):
    runner = JobRunner(tmp_path, kill_grace=2)
    job_id = runner.submit_command([PY, "-c", PROGRESS_SCRIPT, "2000", "0.02"])
    runner.tick()
    deadline = time.monotonic() + 30
    while runner.get(job_id).progress.get("step", 0) < 1 and time.monotonic() < deadline:  # step 0: begun
        time.sleep(0.1)
    assert runner.get(job_id).progress["step"] >= 1  # progress is visible while it runs
    job = runner.cancel(job_id, clean_stop=5)
    assert job.state == "cancelled" and job.run_id is None
    assert "stopped cleanly" in runner.log_tail(job_id)
    queued = runner.submit_command([PY, "-c", "print(1)"])
    assert runner.cancel(queued).state == "cancelled"  # a queued job never starts
    runner.tick()
    assert runner.get(queued).pid is None


def test_dead_process_marked_failed_after_restart(tmp_path):
    runner = JobRunner(tmp_path)
    job_id = runner.submit_command([PY, "-c", "import time; print('working', flush=True); time.sleep(120)"])
    runner.tick()
    pid = runner.get(job_id).pid
    wait_for_log(runner, job_id, "^working$")
    os.killpg(pid, signal.SIGKILL)  # the machine "restarts": the job dies without a word
    os.waitpid(pid, 0)
    del runner

    restarted = JobRunner(tmp_path)
    assert restarted.get(job_id).state == "running"  # still believed running until recovered
    assert restarted.recover() == [job_id]
    job = restarted.get(job_id)
    assert job.state == "failed"
    assert "without an exit status" in job.error
    assert "working" in restarted.log_tail(job_id)  # log kept


def test_queued_jobs_run_in_order(tmp_path):
    runner = JobRunner(tmp_path, max_concurrent=1)
    out = tmp_path / "order.txt"
    script = "import sys, time; time.sleep(0.3); open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    first = runner.submit_command([PY, "-c", script, str(out), "first"])
    second = runner.submit_command([PY, "-c", script, str(out), "second"])
    running = runner.tick()
    assert [j.id for j in running] == [first]
    assert runner.get(second).state == "queued"
    runner.wait(second, timeout=60)
    a, b = runner.get(first), runner.get(second)
    assert a.state == b.state == "succeeded"
    assert out.read_text().split() == ["first", "second"]
    assert b.started >= a.finished - 0.5
    assert [j.id for j in runner.list()] == [second, first]


def test_a_training_job_hands_over_a_spec(tmp_path, monkeypatch):
    info = gpu_info()
    assert info["device"] == ("cuda" if info["cuda"] else "cpu") and info["detail"]
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="RAY_ADDRESS"):
        JobRunner(tmp_path, executor="ray")
    runner = JobRunner(tmp_path)
    job_id = runner.submit_train(
        TrainSpec(
            "leads",
            "data/demo_leads_synthetic.csv",
            "lora",
            dataset_name="demo",
            params={"epochs": 1},
            exclude=["Tags"],
            leak_policy="strict",
        )
    )
    job = runner.get(job_id)
    assert job.gpu is True and job.argv[1:] == ["-m", "engine", "run-job", str(job.folder)]
    spec = read_spec(job.folder)
    assert spec == TrainSpec(
        input_kind="leads",
        data=str(Path("data/demo_leads_synthetic.csv").absolute()),  # made absolute at submit (the job runs elsewhere)
        approach="lora",
        params={"epochs": 1, **({"device": "cuda"} if info["cuda"] else {})},
        leak_policy="strict",
        exclude=["Tags"],
        dataset_name="demo",
    )
    assert job.params["approach"] == "lora" and job.name == "lora on demo"
    with pytest.raises(ValueError, match="input_kind"):
        runner.submit_train(TrainSpec("images", "x", "stacking"))
    with pytest.raises(ValueError, match="unknown training spec field"):
        TrainSpec.from_dict({"input_kind": "leads", "argv": ["--quiet"]})


def test_ray_backend_runs_and_cancels_jobs(tmp_path, ray_cluster):
    runner = JobRunner(tmp_path, executor="ray", ray_address=ray_cluster, max_concurrent=2)
    ok = runner.submit_command([PY, "-c", PROGRESS_SCRIPT, "3", "0.01"], name="ray-quick")
    job = runner.wait(ok, timeout=120, interval=0.5)
    assert job.state == "succeeded", runner.log_tail(ok)
    assert job.executor == "ray" and job.ray_id.startswith(f"clab-{ok}-")
    assert job.run_id == "run-from-progress-job"
    assert job.progress["step"] == 3  # same workspace on this machine: progress file is shared
    assert "done" in runner.log_tail(ok)

    bad = runner.submit_command([PY, "-c", "raise SystemExit('no such dataset')"])
    job = runner.wait(bad, timeout=120, interval=0.5)
    assert job.state == "failed" and "no such dataset" in job.error

    slow = runner.submit_command([PY, "-c", "import time; print('long', flush=True); time.sleep(300)"])
    runner.tick()
    wait_for_log(runner, slow, "long", timeout=60, tick=True)
    assert runner.cancel(slow).state == "cancelled"
    from ray.job_submission import JobStatus

    status = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = runner.backend().client.get_job_status(runner.get(slow).ray_id)
        if status == JobStatus.STOPPED:
            break
        time.sleep(0.5)
    assert status == JobStatus.STOPPED


def test_real_training_jobs_produce_runs(stored_workspace):
    """Two `python -m engine run-job` training jobs, run side by side, each store a complete run."""
    from dashboard_support import STORED_RUNS

    from engine.runs import RunStore

    root = stored_workspace
    runner = JobRunner(root)
    jobs = [j for j in runner.list() if j.kind == "train-leads"]
    assert len(jobs) >= 2
    store = RunStore(root / "runs")
    for job in jobs:
        assert job.state == "succeeded", job.error
        assert job.argv[1:4] == ["-m", "engine", "run-job"]
        run = store.get(job.run_id)  # the run id the job wrote into result.json
        assert run.complete and run.settings.approach == "stacking" and run.settings.dataset == "Demo leads (small)"
        assert job.progress["step"] == job.progress["total"] > 0  # progress came through CLAB_PROGRESS_FILE
        assert json.loads((job.folder / "result.json").read_text()) == {"run_id": job.run_id}
    assert sorted(j.params["params"]["meta_epochs"] for j in jobs) == sorted(
        p["meta_epochs"] for p in STORED_RUNS.values()
    )


def test_values_starting_with_dashes_reach_the_training_unchanged(tmp_path):
    """A spec is data: an excluded column named -Score and a dataset named --quiet are just values."""
    from support import SMALL_STACK

    from engine.data.demo import demo_leads
    from engine.runs import RunStore

    leads = demo_leads(n=300, seed=6)
    leads["-Score"] = leads["Converted"] * 10
    data = tmp_path / "dash -x.csv"
    leads.to_csv(data, index=False)
    runner = JobRunner(tmp_path / "ws")
    job_id = runner.submit_train(
        TrainSpec(
            "leads",
            str(data),
            "stacking",
            params=SMALL_STACK,
            exclude=["-Score", "--quiet"],
            dataset_name="--quiet",
            target="Converted",
        )
    )
    job = runner.wait(job_id, timeout=300, interval=0.3)
    assert job.state == "succeeded", job.error
    run = RunStore(tmp_path / "ws" / "runs").get(job.run_id)
    assert run.settings.dataset == "--quiet" and "-Score" in run.settings.excluded
    assert "-Score" not in run.settings.columns


def test_a_job_that_cannot_train_says_why_in_plain_words(tmp_path):
    data = tmp_path / "no_target.csv"
    data.write_text("Lead Origin,TotalVisits\nAPI,3\nWeb,5\n")
    runner = JobRunner(tmp_path / "ws")
    job = runner.wait(runner.submit_train(TrainSpec("leads", str(data), "stacking")), timeout=120, interval=0.3)
    assert job.state == "failed" and "target" in job.error.lower()
    assert "Traceback" not in job.error and "Last lines of the log" not in job.error


#: A job that reports its environment and where its engine was imported from, then works on.
ENV_REPORT_JOB = "import json, os, engine; print('ENV=' + json.dumps({**os.environ, '_engine': engine.__file__}))"


def test_jobs_get_an_allowlisted_environment_and_still_train(tmp_path, monkeypatch):
    """A job's environment is an allowlist: the caller's tokens, database URLs and cloud keys (whatever their names)
    stay behind, what a training needs comes through, and a real training job still succeeds without them."""
    from support import SMALL_STACK

    from engine.data.demo import demo_leads
    from engine.runs import RunStore

    secrets = {
        "GITHUB_PAT": "ghp_0123456789abcdef",
        "DATABASE_URL": "postgres://u:pw@db.internal:5432/crm",
        "AWS_SECRET_ACCESS_KEY": "aws-s3cr3t",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "SENTRY_DSN": "https://key@sentry.example/1",
        "CLAB_API_KEY": "k1",
        "CLAB_DASHBOARD_PASSWORD": "p1",
        "HF_TOKEN": "hf_abc",
        "TF_API_TOKEN": "tf-token",  # a TensorFlow-like name, but a secret's
        "TF_VAR_database_url": "postgres://u:pw@db/tf",  # Terraform's variables: often credentials
        "TF_VAR_github_pat": "ghp_tf",
        "OPENAI_API_KEY": "o1",
        "CLAB_HARMLESS_SETTING": "not read by the engine",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    needed = {"OMP_NUM_THREADS": "1", "LC_ALL": "C.UTF-8", "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HOME": str(tmp_path / "hf")}
    for name, value in needed.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "leads.csv"
    demo_leads(n=300, seed=3).to_csv(data, index=False)
    runner = JobRunner(tmp_path / "ws")
    report = runner.submit_command([PY, "-c", ENV_REPORT_JOB])
    train = runner.submit_train(TrainSpec("leads", str(data), "stacking", params=SMALL_STACK, target="Converted"))
    job = runner.wait(report, timeout=60)
    assert job.state == "succeeded", job.error
    line = next(x for x in runner.log_tail(report, 5).splitlines() if x.startswith("ENV="))
    env = json.loads(line[4:])
    assert not set(secrets) & set(env), set(secrets) & set(env)
    assert not any(v in secrets.values() or "pw@" in v for v in env.values())
    assert {k: env.get(k) for k in needed} == needed
    assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
    assert env["CLAB_CACHE"] == str(tmp_path / "cache")
    assert env["CLAB_WORKSPACE"] == str(tmp_path / "ws") and env["CLAB_JOB_ID"] == str(report)
    assert Path(env["_engine"]).resolve() == REPO_ROOT / "engine" / "__init__.py"  # this checkout's engine
    job = runner.wait(train, timeout=300, interval=0.3)
    assert job.state == "succeeded", job.error
    assert RunStore(tmp_path / "ws" / "runs").get(job.run_id).complete


OLD_SCHEMA = """CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, kind TEXT NOT NULL,
argv TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}', gpu INTEGER NOT NULL DEFAULT 0,
executor TEXT NOT NULL DEFAULT 'local', state TEXT NOT NULL DEFAULT 'queued', created REAL NOT NULL, started REAL,
finished REAL, pid INTEGER, proc_start TEXT, returncode INTEGER, run_id TEXT, error TEXT, progress TEXT, ray_id TEXT)"""


def test_an_old_jobs_table_still_opens_and_runs(tmp_path):
    import sqlite3

    con = sqlite3.connect(tmp_path / "jobs.sqlite")
    con.execute(OLD_SCHEMA)
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()  # a pid that no longer exists, recorded the old way (clock ticks)
    con.execute(
        "INSERT INTO jobs (name, kind, argv, state, created, started, pid, proc_start) "
        "VALUES ('old', 'command', ?, 'running', 1.0, 1.0, ?, '12345')",
        (json.dumps([PY, "-c", "1"]), dead.pid),
    )
    con.execute(
        "INSERT INTO jobs (name, kind, argv, state, created) VALUES ('queued', 'command', ?, 'queued', 2.0)",
        (json.dumps([PY, "-c", "print('RUN_ID=from-old-table')"]),),
    )
    con.commit()
    con.close()
    runner = JobRunner(tmp_path)
    assert runner.recover() == [1]
    assert "without an exit status" in runner.get(1).error
    job = runner.wait(2, timeout=60)
    assert job.state == "succeeded" and job.run_id is None and job.pgid == job.pid  # a command job makes no run


def test_a_starting_job_is_not_judged_dead_until_it_is_stuck(tmp_path):
    import sqlite3

    starter, other = JobRunner(tmp_path, max_concurrent=1), JobRunner(tmp_path, max_concurrent=1)
    first = starter.submit_command([PY, "-c", "print(1)"])
    second = starter.submit_command([PY, "-c", "print(2)"])
    claimed = starter._claim()  # claimed, its process not launched yet (as if mid-start)
    assert claimed.id == first and claimed.state == "starting" and claimed.claimed_by == starter.token
    assert [j.id for j in other.tick()] == [first]  # neither failed nor counted out: nothing else starts
    assert other.get(first).state == "starting" and other.get(second).state == "queued"
    with sqlite3.connect(tmp_path / "jobs.sqlite") as con:  # the starter died long ago, before launching
        con.execute("UPDATE jobs SET started = started - 120 WHERE id = ?", (first,))
    other.tick()
    job = other.get(first)
    assert job.state == "failed" and "no process was recorded within 60 s" in job.error
    assert other.wait(second, timeout=60).state == "succeeded"


def test_cancel_while_starting_ends_the_process_once_it_exists(tmp_path):
    runner = JobRunner(tmp_path, kill_grace=2)
    job_id = runner.submit_command([PY, "-c", "import time; time.sleep(120)"])
    claimed = runner._claim()
    assert runner.cancel(job_id, clean_stop=0).state == "cancelled"
    runner._start(claimed)  # the launch that was under way
    job = runner.get(job_id)
    assert job.state == "cancelled" and job.pid
    deadline = time.monotonic() + 10
    while not _pid_gone(job.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pid_gone(job.pid)
    assert "cancelled while starting" in runner.log_tail(job_id)
