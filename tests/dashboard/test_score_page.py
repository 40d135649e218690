"""The Score page under AppTest, over a real stored stack: new leads, a bad file, missing and extra columns,
a file with outcomes, two models side by side, the choices kept across pages, the reasons' progress."""

import time

import pandas as pd
import pytest
from dashboard_support import APP, PAGES, rerun_fragments, texts
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


def test_the_stored_list_keeps_every_chosen_models_scores(score_workspace, monkeypatch):
    from engine.scored_lists import ScoredStore
    from engine.scoring import read_rows, score_frame

    root, first, second = score_workspace
    new = demo_leads(n=40, seed=35).drop(columns=["Converted"])
    at = _page(root, monkeypatch, _csv(new), "shadow.csv", score_runs=[first.id, second.id], score_reasons=0)
    assert not at.exception and not at.error
    store = ScoredStore(root / "scored")
    (meta,) = [m for m in store.list() if m["source"] == "shadow.csv"]
    assert meta["run_id"] == first.id and meta["shadow_runs"] == [second.id]
    # the shadow's scores, row for row with the stored list, are the second model's own for each lead
    ranked = pd.read_csv(store.path(meta["sha256"])).assign(shadow=store.shadow_scores(meta)[second.id].to_numpy())
    own = score_frame(second, read_rows(second, new), explain=0).table[["Prospect ID", "probability"]]
    joined = ranked.merge(own, on="Prospect ID", suffixes=("", "_own"))
    assert len(joined) == 40 and joined["shadow"].to_numpy() == pytest.approx(joined["probability_own"].to_numpy())


def _in_app(root, monkeypatch) -> AppTest:
    """The whole app (its navigation) signed in, on the Score page."""
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["authenticated"] = True
    return at.switch_page("views/score.py").run()


def _away_and_back(at: AppTest) -> AppTest:
    """Another page, then the Score page again (what the browser's Back does after following a link)."""
    at.switch_page("views/board.py").run()
    assert at.title[0].value == "Metric board"
    at.switch_page("views/score.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_models_source_and_file_are_kept_when_the_page_is_left(score_workspace, monkeypatch):
    root, first, second = score_workspace
    at = _in_app(root, monkeypatch)
    best = at.multiselect(key="score_runs").value
    other = first.id if best == [second.id] else second.id  # not the one chosen for you
    at.multiselect(key="score_runs").set_value([other]).run()
    at.file_uploader(key="score_upload").upload(
        "week_12.csv", _csv(demo_leads(n=30, seed=35).drop(columns=["Converted"]))
    )
    at.run()
    assert not at.error and len(at.dataframe[0].value) == 30
    _away_and_back(at)
    assert at.multiselect(key="score_runs").value == [other], "the model chosen is kept"
    assert "Scoring **week_12.csv**" in texts(at.info), "the file kept is named (the upload box empties)"
    assert len(at.dataframe[0].value) == 30 and not at.error
    at.radio(key="score_source").set_value("A stored dataset").run()
    _away_and_back(at)
    assert at.radio(key="score_source").value == "A stored dataset"
    assert at.multiselect(key="score_runs").value == [other]


def test_an_error_goes_with_its_file(score_workspace, monkeypatch):
    root, _, _ = score_workspace
    at = _in_app(root, monkeypatch)
    at.file_uploader(key="score_upload").upload("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).run()
    assert "photo.png" in texts(at.error)
    _away_and_back(at)
    # the upload box is empty now: an error about photo.png is shown only with photo.png named as the file used
    assert "photo.png" not in texts(at.error) or "Scoring **photo.png**" in texts(at.info)
    at.button(key="score_forget_file").click().run()
    assert not at.error and "photo.png" not in texts(at.info) + texts(at.error)
    at.file_uploader(key="score_upload").upload("good.csv", _csv(demo_leads(n=20, seed=36).drop(columns=["Converted"])))
    at.run()
    assert not at.error and len(at.dataframe[0].value) == 20


def test_reasons_progress_counts_the_leads_explained(score_workspace, monkeypatch):
    import threading

    import engine.scoring as scoring
    from dashboard.components import tasks

    root, _, _ = score_workspace
    monkeypatch.setattr(tasks, "SYNC_WAIT_S", 0.0)
    gate, calls, real = threading.Event(), [], scoring.top_factors

    def held_after_the_first_chunk(*args, **kwargs):  # the real factors; the second chunk waits for the test
        calls.append(1)
        if len(calls) > 1:
            gate.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "top_factors", held_after_the_first_chunk)
    new = demo_leads(n=70, seed=37).drop(columns=["Converted"])
    at = _page(root, monkeypatch, _csv(new), "counted.csv", score_reasons=60)
    try:
        end = time.monotonic() + 60
        while len(calls) < 2:
            assert time.monotonic() < end, "the reasons did not start"
            time.sleep(0.05)
        rerun_fragments(at)
        text = at.get("progress")[0].proto.text
        assert text.startswith("Explaining the top 60 leads: 5 of 60"), text
        # this page's task: the one held (an earlier test's finished task may have the same size)
        (task,) = [t for k, t in tasks._tasks.items() if k[0] == "reasons" and not t.finished]
    finally:
        gate.set()
    assert tasks.wait(task, 60) and not task.error, task.error
    rerun_fragments(at)  # the page again, with the reasons (the shift check may still be running beside them)
    assert not any("Explaining" in p.proto.text for p in at.get("progress"))
    assert "60 of 70 leads were explained" in texts(at.caption)


def test_the_stored_dataset_chosen_is_kept_when_the_page_is_left(workspace, small_stack_run, monkeypatch):
    from support import demo_leads_csv

    from engine.datasets import DatasetStore

    run, _ = small_stack_run
    store_with(run, workspace / "runs")
    older = DatasetStore().add(demo_leads_csv(n=50, seed=1), filename="a.csv", kind="leads", target="Converted")
    DatasetStore().add(demo_leads_csv(n=70, seed=2), filename="b.csv", kind="leads", target="Converted")  # newest
    at = _in_app(workspace, monkeypatch)
    at.radio(key="score_source").set_value("A stored dataset").run()
    assert len(at.dataframe[0].value) == 70  # the newest is offered first
    at.selectbox(key="score_dataset").set_value(next(d for d in DatasetStore().list() if d.sha == older.sha)).run()
    assert len(at.dataframe[0].value) == 50
    _away_and_back(at)
    assert at.radio(key="score_source").value == "A stored dataset"
    assert at.selectbox(key="score_dataset").value.sha == older.sha and len(at.dataframe[0].value) == 50


def test_no_model_chosen_stays_so_and_a_deleted_run_is_dropped(score_workspace, monkeypatch):
    root, first, second = score_workspace
    new = _csv(demo_leads(n=20, seed=39).drop(columns=["Converted"]))
    at = _page(root, monkeypatch, new, "n.csv", score_runs=[])
    assert "Choose at least one model." in texts(at.info)
    at = _page(root, monkeypatch, new, "n.csv", _kept_score_runs=["20200101T000000-stacking-gone00", first.id])
    assert at.multiselect(key="score_runs").value == [first.id] and not at.error


def test_the_model_chosen_for_you_uses_no_flagged_column(small_stack_run, tmp_path, monkeypatch):
    """Seen on the browser walk of a bank export: the run trained with the leaking call `duration` has the best
    ROC-AUC, so the page chose it for the week's list; a model with no flagged column is chosen instead, and the
    flagged one only when every model is flagged."""
    import json

    from support import copy_run

    run, _ = small_stack_run
    leaky_id = "20300101T000000-stacking-1eaf00"
    for root, with_clean in ((tmp_path / "both", True), (tmp_path / "only", False)):
        if with_clean:  # the session's small run, cleared of any flag (its 400 leads can flag a clean driver)
            clean = copy_run(run.path, root / "runs")
            spec = json.loads((clean / "spec.json").read_text())
            spec.pop("flagged", None)
            (clean / "spec.json").write_text(json.dumps(spec))
        leaky = copy_run(run.path, root / "runs", leaky_id)
        spec = json.loads((leaky / "spec.json").read_text())
        (leaky / "spec.json").write_text(json.dumps({**spec, "flagged": {"Lead Origin": "likely filled in after"}}))
        metrics = json.loads((leaky / "metrics.json").read_text())
        metrics["metrics"]["roc_auc"]["value"] = 0.999  # far above the clean run's
        (leaky / "metrics.json").write_text(json.dumps(metrics))
        monkeypatch.setenv("CLAB_WORKSPACE", str(root))
        at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120).run()  # no file: nothing scored
        assert not at.exception, [e.value for e in at.exception]
        assert at.multiselect(key="score_runs").value == [run.id if with_clean else leaky_id]


def test_a_file_over_the_memory_budget_is_scored_in_chunks(score_workspace, monkeypatch):
    from engine import scoring_chunks
    from engine.scored_lists import ScoredStore

    root, first, _ = score_workspace
    monkeypatch.setattr(scoring_chunks, "MEMORY_PER_CSV_BYTE", 10**6)  # 3,000 leads stand for a file over 64 MB
    monkeypatch.setenv(scoring_chunks.MEMORY_ENV, "64")
    new = demo_leads(n=3_000, seed=33).drop(columns=["Converted"])
    at = _page(root, monkeypatch, _csv(new), "big_week.csv", score_runs=[first.id])
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Ranked list: 3,000 leads" in [h.value for h in at.subheader]
    assert "in 3 chunks of 1,000 rows" in "\n".join(c.value for c in at.caption)
    table = at.dataframe[0].value
    assert len(table) == 1_000 and table["rank"].astype(int).tolist() == list(range(1, 1_001))
    assert at.get("download_button")
    kept = [m for m in ScoredStore(root / "scored").list() if m.get("rows_scored") == 3_000]
    assert kept and kept[0]["kept"] == "the top 3,000 of 3,000 rows"
