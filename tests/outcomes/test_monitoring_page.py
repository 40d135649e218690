"""The Monitoring page (dashboard/views/monitoring.py) under AppTest, on a workspace holding a list scored by the
live small stack and its outcomes."""

import numpy as np
import pandas as pd
import pytest
from dashboard_support import PAGES, texts
from streamlit.testing.v1 import AppTest
from support import copy_run

from engine.cli import main
from engine.data.demo import demo_leads
from engine.live import LiveStore, deployable
from engine.outcomes import OutcomeStore
from engine.runs import RunStore

RUN_ID = "20260101T120000-stacking-aaaaaa"


@pytest.fixture
def workspace_with_list(small_stack_run, tmp_path, monkeypatch):
    run, _ = small_stack_run
    root = tmp_path / "workspace"
    copy_run(run.path, root / "runs", RUN_ID)
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    store = RunStore(root / "runs")
    LiveStore.beside(store).deploy(deployable(store, RUN_ID, load=False))
    leads = demo_leads(n=200, seed=21)
    leads.drop(columns=["Converted"]).to_csv(tmp_path / "week.csv", index=False)
    assert main(["score", "--data", str(tmp_path / "week.csv")]) == 0
    return leads


def page() -> AppTest:
    return AppTest.from_file(str(PAGES / "monitoring.py"), default_timeout=120)


def test_upload_outcomes_and_see_the_list_beside_its_promise(workspace_with_list):
    leads = workspace_with_list
    at = page()
    at.run()
    assert not at.exception and "no outcome matched yet" in texts(at.info)
    upload = pd.DataFrame({"Prospect ID": leads["Prospect ID"], "Outcome": np.where(leads["Converted"], "won", "lost")})
    at.session_state["monitoring_file"] = (upload.to_csv(index=False).encode(), "won_lost.csv")
    at.run()
    at.button(key="monitoring_match").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "200 matched a scored list" in texts(at.success)
    said = texts(at.markdown)
    assert "A-tier leads converted at" in said and "the run promised" in said
    table = at.dataframe[0].value
    assert table.loc[0, "live v."] == 1 and table.loc[0, "outcomes"] == "200 of 200"
    assert f"Run id {RUN_ID}" in texts(at.caption)  # the id beside the board's name, under the table
    assert table.loc[0, "model"].startswith("Stacked ensemble") and RUN_ID not in table.loc[0, "model"]
    assert table.loc[0, "shift"] != "not recorded"
    assert len(table.columns) <= 9  # narrow enough not to scroll sideways at 1,400 px (the browser walk's width)
    assert len(at.get("plotly_chart")) >= 2
    at.button(key="monitoring_match").click().run()  # the same file again: nothing changes
    assert "uploaded before: nothing changed" in texts(at.info) and len(OutcomeStore().list()) == 1


@pytest.mark.usefixtures("workspace_with_list")
def test_a_bad_file_is_an_error_naming_its_columns_and_an_alert_is_shown():
    at = page()
    at.session_state["monitoring_file"] = (b"Customer,Result\nx,won\n", "crm.csv")
    at.run()
    at.button(key="monitoring_match").click().run()
    assert not at.exception and "'Customer', 'Result'" in texts(at.error)
    # outcomes that run against the scores: the alert in words
    from engine.scored_lists import ScoredStore

    (meta,) = ScoredStore().list()
    ranked = pd.read_csv(ScoredStore().path(meta["sha256"]))
    bad = pd.DataFrame({"Prospect ID": ranked["Prospect ID"], "Won": ranked["rank"] > len(ranked) // 2})
    at.session_state["monitoring_file"] = (bad.to_csv(index=False).encode(), "bad.csv")
    at.run()
    at.button(key="monitoring_match").click().run()
    assert not at.exception and "is below the interval run" in texts(at.error)
