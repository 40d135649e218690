"""The Score page under AppTest, over a real stored stack: new leads, a bad file, missing and extra columns,
a file with outcomes, two models side by side."""

import pandas as pd
import pytest
from dashboard_support import PAGES
from streamlit.testing.v1 import AppTest
from support import SMALL_STACK, store_with

from engine import pipeline
from engine.data.demo import demo_leads


@pytest.fixture(scope="module")
def score_workspace(small_stack_run, tmp_path_factory):
    """(workspace, first, second): the session's small stack and a shallower one trained on the same leads."""
    run, leads = small_stack_run
    root = tmp_path_factory.mktemp("scorepage") / "workspace"
    store = store_with(run, root / "runs")
    first = store.get(run.id)
    second = pipeline.train_leads(
        leads, params={**SMALL_STACK, "xgb_max_depth": 2}, dataset_name="score page", store=store
    )
    return root, first, second


def _page(root, monkeypatch, data: bytes, name: str, **state) -> AppTest:
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120)
    at.session_state["score_file"] = (data, name)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def test_new_leads_without_outcomes_get_a_ranked_list_with_tiers_and_reasons(score_workspace, monkeypatch):
    root, first, second = score_workspace
    new = demo_leads(n=80, seed=31).drop(columns=["Converted"])
    at = _page(root, monkeypatch, _csv(new), "this_week.csv")
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert len(table) == 80 and table["rank"].tolist() == list(range(1, 81))
    assert "Prospect ID" in table.columns  # the CRM id is carried through
    assert set(table["tier"]) <= set("ABCD") and table["score"].is_monotonic_decreasing
    assert (table["reasons_for"].head(10) != "").all()
    assert "80 of 80 leads were explained" in "\n".join(c.value for c in at.caption)  # the stack's budget: 10,000
    # the top lead's reasons in full, one a line, under the table (a cell shows only their start)
    box = next(md.value for md in at.markdown if md.value.startswith("**Reasons for the top lead"))
    assert f"score {table['score'].iloc[0]}" in box and str(table["Prospect ID"].iloc[0]) in box
    listed = "\n".join(md.value for md in at.markdown if md.value.startswith(("Raises the score", "Lowers")))
    for reason in str(table["reasons_for"].iloc[0]).split("; ") + str(table["reasons_against"].iloc[0]).split("; "):
        assert not reason or f"- {reason}" in listed
    assert len(at.get("download_button")) >= 2  # CSV and Excel
    stored = list((root / "scored").iterdir())
    assert stored, "the scored list is stored"


def test_a_bad_file_gets_a_clear_error_naming_it(score_workspace, monkeypatch):
    root, _, _ = score_workspace
    at = _page(root, monkeypatch, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.png")
    assert not at.exception
    assert at.error and "photo.png" in at.error[0].value


def test_no_shared_column_is_refused(score_workspace, monkeypatch):
    root, _, _ = score_workspace
    at = _page(root, monkeypatch, _csv(pd.DataFrame({"colour": ["red", "blue"], "size": [1, 2]})), "other.csv")
    assert not at.exception
    assert at.error and "None of the columns" in at.error[0].value


def test_missing_and_extra_columns_are_reported_in_plain_words(score_workspace, monkeypatch):
    root, _, _ = score_workspace
    new = demo_leads(n=40, seed=32).drop(columns=["Converted", "Lead Origin", "TotalVisits"])
    new["Favourite colour"] = "blue"
    at = _page(root, monkeypatch, _csv(new), "partial.csv")
    assert not at.exception and not at.error
    words = " ".join(w.value for w in at.warning)
    assert "Lead Origin" in words and "TotalVisits" in words and "scored as missing" in words
    assert "Favourite colour" in words and "not used by the model" in words


def test_a_file_with_outcomes_shows_how_the_model_did(score_workspace, monkeypatch):
    root, _, _ = score_workspace
    at = _page(root, monkeypatch, _csv(demo_leads(n=150, seed=33)), "last_month.csv")
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert "ROC-AUC" in labels
    auc = float(next(m for m in at.metric if m.label == "ROC-AUC").value)
    assert 0.5 < auc <= 1.0


def test_two_models_side_by_side_show_their_rank_correlation(score_workspace, monkeypatch):
    root, first, second = score_workspace
    new = demo_leads(n=60, seed=34).drop(columns=["Converted"])
    at = _page(root, monkeypatch, _csv(new), "compare.csv", score_runs=[first.id, second.id])
    assert not at.exception and not at.error
    corr = at.dataframe[0].value
    assert corr.shape == (2, 2) and corr.iloc[0, 1] > 0.5  # two stacks on the same data agree broadly
