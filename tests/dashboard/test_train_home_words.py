"""Plain words ("Trust the daily numbers"): Home points to the daily job, names runs by their names and counts a demo
run as soon as it lands; Train's labels and the LLM's estimate before launch say what they mean and assume."""

from __future__ import annotations

import sys
import time

from dashboard_support import run_page, texts
from support import copy_run, demo_leads_csv

from engine.jobs import JobRunner

PY = sys.executable


def test_home_points_to_the_daily_job_and_names_runs_by_their_names(stored):
    from engine.runs import RunStore

    at = run_page("home")
    daily = texts(at.markdown)
    assert "**Every day: score new leads.**" in daily and "ranked" in daily and "reasons" in daily
    assert "Score new leads" in daily  # the link (plain text outside the app's navigation)
    latest = next(m.value for m in at.markdown if m.value.startswith("| run |"))
    runs = RunStore().list_runs()
    assert runs and not any(run.id in latest for run in runs)  # no run ids where a name does
    assert latest.count("Stacked ensemble · Demo leads (small)") == len(runs)


def test_home_counts_a_demo_run_as_soon_as_it_lands(workspace, stored_workspace):
    """The counters were drawn once and kept until every demo job had ended; a demo job that ends now redraws the
    page, so its run is counted while the other demo job still runs."""
    runner = JobRunner(workspace)
    gate = workspace / "gate"
    first = runner.submit_command(
        [PY, "-c", f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"], name="demo: one"
    )
    second = runner.submit_command([PY, "-c", "import time; time.sleep(60)"], name="demo: two")
    runner.max_concurrent = 2
    runner.tick()
    try:
        at = run_page("home")
        at.session_state["demo_jobs"] = [first, second]
        at.run()
        assert {m.label: m.value for m in at.metric}["Runs"] == "0"
        assert at.session_state["_demo_done_seen"] == set()
        # the first demo job ends and its run lands (a real stored run, copied in)
        copy_run(next((stored_workspace / "runs").iterdir()), workspace / "runs")
        gate.touch()
        deadline = time.monotonic() + 20
        while not runner.get(first).done and time.monotonic() < deadline:
            runner.tick()
            time.sleep(0.1)
        at.run()
        assert not at.exception
        assert at.session_state["_demo_done_seen"] == {first}
        assert {m.label: m.value for m in at.metric}["Runs"] == "1"
        assert not runner.get(second).done  # counted while the other demo job still runs
    finally:
        runner.cancel(second, clean_stop=0)


def test_train_speaks_plainly_and_the_llm_estimate_says_what_it_assumes(workspace):
    from dashboard.components import state
    from engine.datasets import DatasetStore

    DatasetStore().add(demo_leads_csv(n=80), filename="l.csv", kind="leads", target="Converted")
    at = run_page("train")
    labels = [w.label for w in at.number_input]
    assert "Passes to learn how to combine the four models" in labels
    assert not [label for label in labels if "Combiner" in label]
    at.selectbox(key="train_approach").set_value("lora").run()
    labels = [w.label for w in at.number_input]
    assert "Adapter size" in labels and not [label for label in labels if "rank" in label]
    if state.gpu_info()["cuda"]:
        return  # the CPU estimate is shown without a GPU only
    banner = next(i.value for i in at.info if "CPU preset" in i.value)
    assert "idle 2-core CPU" in banner and "slower while other jobs run" in banner
    assert "bf16" not in banner and "AVX" not in banner and "fp32" not in banner  # one click away
    details = next(e for e in at.expander if e.label == "Advanced: how the CPU time was measured")
    assert "bf16" in texts(details.caption) and "2-core AMD EPYC" in texts(details.caption)
    runner = JobRunner(workspace)
    busy = runner.submit_command([PY, "-c", "import time; time.sleep(60)"], name="busy")
    runner.tick()
    try:
        at.run()
        banner = next(i.value for i in at.info if "CPU preset" in i.value)
        assert banner.endswith("1 job is running or waiting now.")  # the estimate is for an idle machine
    finally:
        runner.cancel(busy, clean_stop=0)
