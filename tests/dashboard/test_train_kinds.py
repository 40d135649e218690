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


def test_the_data_page_shows_the_kinds_set_and_names_a_damaged_setting(workspace):
    import json

    from engine.datasets import DatasetStore

    store = DatasetStore()
    ds = store.add(
        lead_table(120, seed=6).to_csv(index=False).encode(), filename="crm.csv", kind="leads", target="label"
    )
    store.set_kind(ds.sha, "City", "text")
    at = run_page("data")
    kinds = at.dataframe[1].value.set_index("column")
    assert kinds.loc["City", "kind"] == "text" and kinds.loc["City", "inferred"] == "high_cardinality"
    assert kinds.loc["Call transcript", "kind"] == "text" and kinds.loc["Lead Ref", "kind"] == "identifier"
    assert "Set by you: **City** text" in texts(at.caption)
    # a hand-edited meta.json: named with its fix, never used, cleared by the button
    meta = json.loads((ds.path / "meta.json").read_text())
    (ds.path / "meta.json").write_text(json.dumps({**meta, "kinds": {"City": "prose"}}))
    at = run_page("data")
    assert "'prose' is not a kind a column can be set to" in texts(at.error)
    at.button(key=f"clear_kinds_{ds.sha}").click().run()
    assert store.get(ds.sha).kinds == {}
    assert ds.raw_path.read_bytes() == lead_table(120, seed=6).to_csv(index=False).encode()


def test_the_explain_page_says_the_kinds_the_run_was_given(workspace, tmp_path):
    from support import SMALL_STACK

    from engine import pipeline

    path = tmp_path / "crm.csv"
    lead_table(200, seed=8).to_csv(path, index=False)
    pipeline.train_leads(path, params=SMALL_STACK, target="label", kinds={"City": "text"}, kinds_source="dataset")
    at = run_page("explain")
    assert (
        "Column kinds set by you, from the dataset's setting (Data page): **City** text; the others were inferred."
        in texts(at.caption)
    )
