"""Make live on the Metric board, and the Score page choosing the live run (engine/live.py), under AppTest."""

import pytest
from dashboard_support import PAGES, run_page, texts
from streamlit.testing.v1 import AppTest
from support import copy_run

from engine.data.demo import demo_leads
from engine.live import LiveStore

OLD, NEW = "20260101T120000-stacking-aaaaaa", "20260102T120000-stacking-bbbbbb"


@pytest.fixture
def two_runs(small_stack_run, tmp_path, monkeypatch):
    run, _ = small_stack_run
    root = tmp_path / "workspace"
    for run_id in (OLD, NEW):
        copy_run(run.path, root / "runs", run_id)
    (root / "runs" / NEW / "label.json").write_text('{"label": "Friday experiment"}')
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    return root


def test_make_live_on_the_board_says_what_changes_and_deploys(two_runs):
    at = run_page("board")
    at.selectbox(key="board_live_run").set_value(NEW).run()
    said = texts(at.markdown)
    assert "will use **Friday experiment** instead of the newest leads run that loads" in said
    assert "changes the live model of **demo leads**" in said
    at.text_input(key="board_live_note").input("for Monday").run()
    at.button(key="board_make_live").click().run()
    assert not at.exception and "Friday experiment is the live model of demo leads (version 1)" in texts(at.success)
    entry = LiveStore(two_runs).live("leads")
    assert entry["run_id"] == NEW and entry["note"] == "for Monday"
    at.selectbox(key="board_live_run").set_value(OLD).run()
    assert "instead of Friday experiment" in texts(at.markdown)


def test_the_score_page_defaults_to_the_live_run_and_says_so(two_runs, small_stack_run):
    from engine.live import deployable
    from engine.runs import RunStore

    store = RunStore(two_runs / "runs")
    LiveStore.beside(store).deploy(deployable(store, OLD, load=False))
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120)
    new = demo_leads(n=30, seed=31).drop(columns=["Converted"])
    at.session_state["score_file"] = (new.to_csv(index=False).encode(), "week.csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    models = at.multiselect(key="score_runs")
    assert models.value == [OLD] and "live" in models.format_func(OLD) and "live" not in models.format_func(NEW)


def test_damaged_live_file_and_deleted_live_run_are_named_not_crashes(two_runs):
    (two_runs / "live.json").write_text("{half")
    at = run_page("board")
    assert "live.json is not valid JSON" in texts(at.error)
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120).run()
    assert not at.exception and "live.json is not valid JSON" in texts(at.warning)
    (two_runs / "live.json").unlink()
    from engine.live import deployable
    from engine.runs import RunStore

    store = RunStore(two_runs / "runs")
    LiveStore.beside(store).deploy(deployable(store, OLD, load=False))
    store.delete(OLD)
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120).run()
    assert not at.exception and f"The live leads run {OLD} cannot be used" in texts(at.error)


def test_make_live_keeps_the_live_run_of_another_dataset_and_says_so(two_runs):
    """The live run of another dataset family than the board's choice (the weekly loop: a challenger trained on
    recent weeks) is not replaced by Make live here: one live run per family, and the confirmation says which
    family's run changes and that the other stays (named, never by its id)."""
    import json

    from engine.live import deployable
    from engine.runs import RunStore

    spec_path = two_runs / "runs" / OLD / "spec.json"
    spec = json.loads(spec_path.read_text())
    spec_path.write_text(json.dumps({**spec, "data_hash": "f" * 64, "dataset": "recent_weeks.csv"}))
    (two_runs / "runs" / OLD / "label.json").write_text('{"label": "Recent weeks challenger"}')
    store = RunStore(two_runs / "runs")
    LiveStore.beside(store).deploy(deployable(store, OLD, load=False))
    at = run_page("board")
    assert at.selectbox(key="board_live_run").options == [at.selectbox(key="board_live_run").format_func(NEW)]
    said = texts(at.markdown)
    assert "changes the live model of **demo leads**" in said and "instead of the newest leads run that loads" in said
    assert "recent" in said and "stay" in said and OLD not in said
    at.button(key="board_make_live").click().run()
    live = LiveStore(two_runs)
    assert live.live("leads", "recent_weeks.csv")["run_id"] == OLD and live.live("leads", "demo leads")["run_id"] == NEW


def test_the_score_page_offers_the_live_family_choice_when_two_are_live(two_runs):
    """Two dataset families live: the page asks which, and preselects that family's live run."""
    import json

    from engine.live import deployable
    from engine.runs import RunStore

    spec_path = two_runs / "runs" / NEW / "spec.json"
    spec_path.write_text(json.dumps({**json.loads(spec_path.read_text()), "dataset": "crm b"}))
    store = RunStore(two_runs / "runs")
    for run_id in (OLD, NEW):
        LiveStore.beside(store).deploy(deployable(store, run_id, load=False))
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120)
    at.session_state["score_file"] = (demo_leads(n=30, seed=31).drop(columns=["Converted"]).to_csv().encode(), "w.csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    family = at.selectbox(key="score_family")
    assert family.options == ["crm b", "demo leads"] and family.value == "crm b"
    assert at.multiselect(key="score_runs").value == [NEW]
    at.selectbox(key="score_family").set_value("demo leads").run()
    assert not at.exception and at.multiselect(key="score_runs").value == [OLD]
    assert "live" in at.multiselect(key="score_runs").format_func(OLD)
    assert "live" not in at.multiselect(key="score_runs").format_func(NEW)  # NEW is live, but for crm b
