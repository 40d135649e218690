"""The Train page offers the time split only on a table with a date column, and launches the job with it."""

from __future__ import annotations

import io

import pandas as pd
from dashboard_support import run_page, texts
from support import demo_leads_csv

from engine.jobs import JobRunner


def test_no_date_column_no_time_split(workspace):
    from engine.datasets import DatasetStore

    DatasetStore().add(demo_leads_csv(n=120), filename="xeducation.csv", kind="leads", target="Converted")
    at = run_page("train")
    assert not [r for r in at.radio if r.label == "Test rows"]
    assert "Dates" not in texts(at.markdown)


def test_a_date_column_offers_the_time_split_and_the_job_gets_it(workspace):
    from engine.data.demo import demo_leads
    from engine.datasets import DatasetStore

    weekly = demo_leads(n=160, seed=1, weeks=8).to_csv(index=False).encode()
    DatasetStore().add(weekly, filename="weekly.csv", kind="leads", target="Converted")
    at = run_page("train")
    (split,) = [r for r in at.radio if r.label == "Test rows"]
    assert split.value == "Random (stratified)"  # the protocol's split stays the default
    assert "- Dates (never a feature; one can choose the test rows below): Created On" in texts(at.markdown)
    split.set_value("Newest 30 % (by date)").run()
    assert "Test rows: the newest 30 % by Created On" in texts(at.caption)
    at.button(key="train_launch").click().run()
    runner = JobRunner(workspace)
    job = runner.get(at.session_state["train_job"])
    try:
        assert job.params["split"] == "time" and job.params["time_column"] == "Created On"
    finally:
        runner.cancel(job.id, clean_stop=0)


def test_two_date_columns_let_the_user_choose(workspace):
    from engine.datasets import DatasetStore

    leads = pd.read_csv(io.BytesIO(demo_leads_csv(n=120)))
    leads.insert(0, "Signed up", pd.date_range("2024-01-01", periods=120, freq="D").strftime("%d/%m/%Y"))
    leads.insert(0, "First touch", pd.date_range("2023-12-01", periods=120, freq="D").strftime("%Y-%m-%d"))
    DatasetStore().add(leads.to_csv(index=False).encode(), filename="two.csv", kind="leads", target="Converted")
    at = run_page("train")
    at.radio(key="train_split").set_value("Newest 30 % (by date)").run()
    assert at.selectbox(key="train_time_column").options == ["First touch", "Signed up"]
