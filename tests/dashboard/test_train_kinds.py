"""The Train page trains a dataset with the column kinds set on the Data page (the dataset's setting), and says so."""

from __future__ import annotations

from dashboard_support import run_page, texts
from text_tables import lead_table

from engine.jobs import JobRunner


def test_the_datasets_kinds_are_the_jobs_default(workspace):
    from engine.datasets import DatasetStore

    store = DatasetStore()
    raw = lead_table(160, seed=5).to_csv(index=False).encode()
    ds = store.add(raw, filename="crm_calls.csv", kind="leads", target="label")
    store.set_kind(ds.sha, "City", "text")
    at = run_page("train")
    assert "kinds set: City text (change them on the Data page)" in texts(at.caption)
    at.button(key="train_launch").click().run()
    runner = JobRunner(workspace)
    job = runner.get(at.session_state["train_job"])
    try:
        assert job.params["kinds"] == {"City": "text"} and job.params["kinds_source"] == "dataset"
    finally:
        runner.cancel(job.id, clean_stop=0)
