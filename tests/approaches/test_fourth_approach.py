"""The proof that an approach is one file: tests/plugins/plain_logistic.py is plugged in through the public
registry (CLAB_APPROACHES, as an operator would) and, with no edit outside its file, trains as a job, appears on
the board, scores through the CLI, the API and the Score page, and is explained by the generic path."""

import os

import numpy as np
import pandas as pd
import pytest
from dashboard_support import PAGES, run_page, texts
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

from engine.data.demo import demo_leads
from engine.jobspec import TrainSpec

PLUGINS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "plugins")


@pytest.fixture(scope="module")
def plugged(tmp_path_factory):
    """A workspace holding a run of the plugged-in approach, trained by a real job (another process)."""
    from engine.jobs import JobRunner

    root = tmp_path_factory.mktemp("fourth") / "workspace"
    saved = {k: os.environ.get(k) for k in ("CLAB_WORKSPACE", "CLAB_APPROACHES", "PYTHONPATH")}
    os.environ["CLAB_WORKSPACE"] = str(root)
    os.environ["CLAB_APPROACHES"] = "plain_logistic=plain_logistic:PlainLogistic"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [PLUGINS, saved["PYTHONPATH"]]))
    import sys

    sys.path.insert(0, PLUGINS)
    leads = demo_leads(n=400, seed=12)
    data = root.parent / "leads.csv"
    root.mkdir(parents=True)
    leads.to_csv(data, index=False)
    runner = JobRunner(root)
    job = runner.wait(runner.submit_train(TrainSpec("leads", str(data), "plain_logistic"), name="fourth"), timeout=300)
    assert job.state == "succeeded", job.error
    yield root, data
    sys.path.remove(PLUGINS)
    for key, value in saved.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def test_it_trains_as_a_job_and_appears_on_the_board(plugged):
    from engine.approaches.registry import approach_names, input_kinds
    from engine.runs import RunStore

    assert "plain_logistic" in approach_names() and input_kinds("plain_logistic") == ("leads",)
    run = RunStore().latest(input_kind="leads")
    assert run.settings.approach == "plain_logistic" and run.metrics["metrics"]["roc_auc"]["value"] > 0.75
    at = run_page("board")
    assert not at.error and "Plain logistic regression" in texts(at.markdown) + texts(at.caption) + str(
        [d.value for d in at.dataframe]
    )


def test_it_scores_through_the_cli_and_the_api_with_generic_reasons(plugged, tmp_path):
    from engine.api import create_app
    from engine.cli import main
    from engine.runs import RunStore

    _, data = plugged
    run = RunStore().latest(input_kind="leads")
    new = pd.read_csv(data).drop(columns=["Converted"]).head(30)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["score", "--run", run.id, "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "r.csv")]) == 0
    ranked = pd.read_csv(tmp_path / "r.csv")
    assert len(ranked) == 30 and ranked["probability"].is_monotonic_decreasing
    assert (ranked["reasons_for"].fillna("") + ranked["reasons_against"].fillna("")).str.contains("=").sum() >= 20
    lead = {k: (None if pd.isna(v) else v) for k, v in new.iloc[0].to_dict().items()}
    r = TestClient(create_app()).post("/predict/lead", json={"leads": lead, "run_id": run.id, "explain": True})
    assert r.status_code == 200, r.text
    answer = r.json()["predictions"][0]
    same = ranked.loc[ranked["Prospect ID"] == new.loc[0, "Prospect ID"]].iloc[0]  # the CLI's score of that lead
    assert abs(answer["probability"] - same["probability"]) < 1e-6 and answer["reasons_for"] + answer["reasons_against"]


def test_the_generic_explanation_is_occlusion(plugged):
    from engine.runs import RunStore

    _, data = plugged
    model = RunStore().latest(input_kind="leads").load_approach()
    X = pd.read_csv(data).drop(columns=["Converted"]).head(3)
    table = model.explain(X)
    row = table[(table["row"] == 0) & (table["feature"] == "Lead Source")].iloc[0]
    without = X.head(1).copy()
    without["Lead Source"] = None
    p0, p1 = model.predict_proba(X.head(1))[0, 1], model.predict_proba(without)[0, 1]
    assert row["contribution"] == pytest.approx(p0 - p1) and row["value"] == str(X.loc[0, "Lead Source"])


def test_it_scores_on_the_score_page(plugged, monkeypatch):
    root, data = plugged
    new = pd.read_csv(data).drop(columns=["Converted"]).head(40)
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120)
    at.session_state["score_file"] = (new.to_csv(index=False).encode(), "week.csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert len(table) == 40 and table["score"].is_monotonic_decreasing
    assert np.isin(table["tier"].unique(), list("ABCD")).all()


def test_a_malformed_plug_in_entry_is_named_and_hides_nothing(monkeypatch):
    from engine.approaches import registry

    monkeypatch.setenv(
        registry.PLUGIN_ENV, "my-approach=pkg.mod:Cls;" + "x" * 33 + "=m:C;fine_one=plain_logistic:PlainLogistic"
    )
    assert registry.get_approach_class("stacking").name == "stacking"  # the shipped ones still resolve
    assert "fine_one" in registry.approach_names() and "my-approach" not in registry.approach_names()
    assert "not NAME=module:Class" in registry.PLUGIN_PROBLEMS["my-approach"] and "x" * 33 in registry.PLUGIN_PROBLEMS
    monkeypatch.setenv(registry.PLUGIN_ENV, "stacking=plain_logistic:PlainLogistic")  # cannot replace a shipped one
    assert registry.get_approach_class("stacking").__name__ == "StackingApproach"


def test_the_generic_explanation_keeps_each_columns_kind_of_values():
    """Occluding a text column gives the model a missing text cell, not a float column (a model reading the column
    as text would fail on floats)."""
    import sys

    sys.path.insert(0, PLUGINS)
    try:
        from plain_logistic import PlainLogistic
    finally:
        sys.path.remove(PLUGINS)

    class TextReading(PlainLogistic):
        name = "text_reading"

        def predict_proba(self, X):
            assert X["Lead Source"].isna().all() or X["Lead Source"].dropna().str.len().ge(0).all()
            return super().predict_proba(X)

    leads = demo_leads(n=200, seed=4)
    X = leads[["Lead Source", "TotalVisits"]].astype({"Lead Source": "str"})
    model = TextReading().fit(X, leads["Converted"].to_numpy())
    table = model.explain(X.head(3))
    assert set(table["feature"]) == {"Lead Source", "TotalVisits"} and len(table) == 6


def test_labels_written_as_text_are_read_as_numbers():
    """'0'/'1' read from a file as text are labels; anything else is refused naming what was found."""
    import sys

    sys.path.insert(0, PLUGINS)
    try:
        from plain_logistic import PlainLogistic
    finally:
        sys.path.remove(PLUGINS)
    leads = demo_leads(n=120, seed=5)
    X = leads[["TotalVisits"]]
    as_text = leads["Converted"].astype(str).to_numpy()
    np.testing.assert_allclose(
        PlainLogistic().fit(X, as_text).predict_proba(X), PlainLogistic().fit(X, leads["Converted"]).predict_proba(X)
    )
    with pytest.raises(ValueError, match=r"0/1 labels.*'yes'"):
        PlainLogistic().fit(X, np.where(leads["Converted"] == 1, "yes", "no"))
