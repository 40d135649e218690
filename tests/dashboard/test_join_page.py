"""The Data page joins a stored lead table with stored calls into a new dataset (the inputs untouched), says what
did not match, refuses a bad id column; the Train page offers 'Use' only on a table with text and the job gets it."""

from __future__ import annotations

import json

from dashboard_support import run_page, texts

from engine.data.demo_lead_text import demo_leads_with_text
from engine.jobs import JobRunner


def _store_both(n: int = 120):
    from engine.datasets import DatasetStore

    leads, calls = demo_leads_with_text(n, seed=2)
    calls = calls + [{"transcript": "a call of nobody we know", "label": 0, "metadata": {"lead_id": "NOBODY"}}]
    store = DatasetStore()
    lead_ds = store.add(leads.to_csv(index=False).encode(), filename="leads.csv", kind="leads", target="Converted")
    body = "".join(json.dumps(c) + "\n" for c in calls).encode()
    calls_ds = store.add(body, filename="calls.jsonl", kind="transcripts")
    return store, lead_ds, calls_ds


def test_the_data_page_joins_into_a_new_dataset_and_reports(workspace):
    store, lead_ds, calls_ds = _store_both()
    before = {ds.sha: ds.raw_path.read_bytes() for ds in (lead_ds, calls_ds)}
    at = run_page("data")
    at.button(key="join_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Stored as" in texts(at.success)
    said = texts(at.markdown)
    assert "1 calls name a lead id the table does not have" in said and "NOBODY" in said
    joined = [d for d in store.list(kind="leads") if d.sha != lead_ds.sha]
    assert len(joined) == 1 and joined[0].meta["target"] == "Converted"
    assert at.session_state["data_dataset"] == joined[0].sha  # the page goes on with the join, as after an upload
    assert b"call" in joined[0].raw_path.read_bytes().splitlines()[0]
    assert {ds.sha: ds.raw_path.read_bytes() for ds in (lead_ds, calls_ds)} == before  # inputs as they were
    at.button(key="join_go").click().run()  # the same join again: the same dataset, nothing new or replaced
    assert len(store.list(kind="leads")) == 2


def test_the_lead_table_offered_first_is_the_newest_that_is_not_a_join(workspace):
    """After a join, the newest lead table is the join (it has its calls already): the panel offers the newest table
    that is not one, in the same session and a new one; the join records its inputs."""
    from engine.data.join import JOINED_FROM

    store, lead_ds, calls_ds = _store_both()
    at = run_page("data")
    assert at.selectbox(key="join_leads").value.sha == lead_ds.sha
    at.button(key="join_go").click().run()
    [joined] = [d for d in store.list(kind="leads") if d.sha != lead_ds.sha]
    assert store.list(kind="leads")[0].sha == joined.sha  # the newest
    assert joined.meta[JOINED_FROM] == {"leads": lead_ds.sha, "calls": calls_ds.sha}
    assert at.selectbox(key="join_leads").value.sha == lead_ds.sha
    assert run_page("data").selectbox(key="join_leads").value.sha == lead_ds.sha
    newer = store.add(b"Lead ID,Converted,Note\nx1,1,a\nx2,0,b\n", filename="newer.csv", target="Converted")
    assert run_page("data").selectbox(key="join_leads").value.sha == newer.sha  # a newer upload is offered first


def test_a_column_that_is_not_an_id_is_refused_on_the_page(workspace):
    store, _, _ = _store_both()
    at = run_page("data")
    at.selectbox(key="join_lead_id").set_value("Converted").run()
    at.button(key="join_go").click().run()
    assert "Not joined" in texts(at.error) and "share an id" in texts(at.error)
    assert len(store.list(kind="leads")) == 1


def test_a_taken_column_name_is_refused_naming_the_pages_field_not_the_cli_flag(workspace):
    from dashboard.components.join_panel import TEXT_COLUMN_LABEL

    store, _, _ = _store_both()
    at = run_page("data")
    (box,) = [t for t in at.text_input if t.key == "join_text_column"]
    assert box.label == TEXT_COLUMN_LABEL
    box.set_value("Converted").run()
    at.button(key="join_go").click().run()
    said = texts(at.error)
    assert "already has a column 'Converted'" in said and f'in "{TEXT_COLUMN_LABEL}"' in said
    assert "--" not in said
    assert len(store.list(kind="leads")) == 1


def test_train_offers_use_only_with_text_and_the_job_gets_it(workspace):
    from engine.data.demo_lead_text import demo_joined
    from engine.datasets import DatasetStore

    frame = demo_joined(120, seed=2)
    store = DatasetStore()
    store.add(
        frame.drop(columns=["Call notes", "call"]).to_csv(index=False).encode(),
        filename="plain.csv",
        kind="leads",
        target="Converted",
    )
    at = run_page("train")
    assert not [r for r in at.radio if r.label == "Use"]
    store.add(frame.to_csv(index=False).encode(), filename="joined.csv", kind="leads", target="Converted")
    at = run_page("train")
    (use,) = [r for r in at.radio if r.label == "Use"]
    assert use.value == "Both"
    use.set_value("Text only").run()
    at.button(key="train_launch").click().run()
    runner = JobRunner(workspace)
    job = runner.get(at.session_state["train_job"])
    try:
        assert job.params["use"] == "text"
    finally:
        runner.cancel(job.id, clean_stop=0)
