"""Champion vs challenger (engine/challenger.py, `score --shadow`, `outcomes --top N`, the Monitoring page's section):
real lists scored by the live small stack and a challenger beside it, real outcomes; hostile N and shadow runs; two
threads adding shadow scores to one list at once."""

import json
import threading

import numpy as np
import pandas as pd
import pytest
from dashboard_support import PAGES, texts
from sklearn.metrics import roc_auc_score
from streamlit.testing.v1 import AppTest
from support import SMALL_STACK, copy_run

from engine import pipeline
from engine.challenger import ChallengerError, challenger_report, check_top_n
from engine.cli import main
from engine.data.demo import demo_leads
from engine.live import LiveStore, deployable
from engine.outcomes import OutcomeStore
from engine.runs import RunStore
from engine.scored_lists import ScoredStore
from engine.scoring import read_rows, score_frame

LIVE, OTHER, TWIN = (
    "20260101T120000-stacking-aaaaaa",
    "20260102T120000-stacking-bbbbbb",
    "20260103T120000-stacking-cccccc",
)


@pytest.fixture(scope="module")
def challenger_run(small_stack_run, tmp_path_factory):
    """A second, different stack trained on the same leads (a shallower XGBoost): the challenger."""
    _, leads = small_stack_run
    store = RunStore(tmp_path_factory.mktemp("challenger") / "runs")
    return pipeline.train_leads(
        leads, params={**SMALL_STACK, "xgb_max_depth": 2}, dataset_name="demo leads", store=store
    )


@pytest.fixture
def shadowed(small_stack_run, challenger_run, tmp_path, monkeypatch):
    """A workspace: LIVE live, OTHER (the challenger) and TWIN (a copy of LIVE) stored; 300 demo leads scored by LIVE
    with OTHER and TWIN in the shadow, and their outcomes uploaded. Returns (workspace, leads)."""
    root = tmp_path / "workspace"
    copy_run(small_stack_run[0].path, root / "runs", LIVE)
    copy_run(small_stack_run[0].path, root / "runs", TWIN)
    copy_run(challenger_run.path, root / "runs", OTHER)
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    store = RunStore(root / "runs")
    LiveStore.beside(store).deploy(deployable(store, LIVE, load=False))
    leads = demo_leads(n=300, seed=41)
    leads.drop(columns=["Converted"]).to_csv(tmp_path / "week.csv", index=False)
    argv = ["score", "--data", str(tmp_path / "week.csv"), "--shadow", OTHER, "--shadow", TWIN]
    assert main(argv) == 0
    outcomes(leads, tmp_path / "won_lost.csv")
    assert main(["outcomes", "--data", str(tmp_path / "won_lost.csv")]) == 0
    return root, leads


def outcomes(leads, path):
    pd.DataFrame(
        {"Prospect ID": leads["Prospect ID"], "Outcome": np.where(leads["Converted"] == 1, "won", "lost")}
    ).to_csv(path, index=False)
    return path


def test_the_comparison_equals_scikit_learn_on_the_same_leads(shadowed):
    _, leads = shadowed
    block = challenger_report(25, n_boot=300)
    assert block["live_run_id"] == LIVE and {e["run_id"] for e in block["runs"]} == {OTHER, TWIN}
    entry = next(e for e in block["runs"] if e["run_id"] == OTHER)
    # independently: each run scores the leads itself, joined to the outcomes by id
    store = RunStore()
    own = {}
    for run_id in (LIVE, OTHER):
        run = store.get(run_id)
        table = score_frame(run, read_rows(run, leads.drop(columns=["Converted"])), explain=0).table
        own[run_id] = table.set_index("Prospect ID")["probability"]
    y = leads.set_index("Prospect ID")["Converted"]
    assert entry["leads"] == 300 and entry["converted"] == y.sum()
    assert entry["roc_auc_live"] == pytest.approx(roc_auc_score(y, own[LIVE][y.index]), abs=1e-9)
    assert entry["roc_auc_challenger"] == pytest.approx(roc_auc_score(y, own[OTHER][y.index]), abs=1e-9)
    for run_id, key in ((LIVE, "top_n_converted_live"), (OTHER, "top_n_converted_challenger")):
        top = own[run_id].sort_values(ascending=False, kind="stable").head(25).index
        assert entry[key] == y[top].sum()
    low, high = entry["roc_auc_difference_ci"]
    assert low <= entry["roc_auc_difference"] <= high
    tlow, thigh = entry["top_n_difference_ci"]
    assert tlow <= entry["top_n_difference"] <= thigh
    better = (low > 0 or tlow > 0) and not (high < 0 or thigh < 0)
    assert entry["recommendation"] == ("make live" if better else "keep the live run")


def test_the_bootstrap_is_paired_a_copy_of_the_live_run_never_differs(shadowed):
    twin = next(e for e in challenger_report(25, n_boot=200)["runs"] if e["run_id"] == TWIN)
    # the same resampled leads for both runs: a run scoring exactly as the live one differs by 0 in every resample
    assert twin["roc_auc_difference"] == 0 and twin["roc_auc_difference_ci"] == [0.0, 0.0]
    assert twin["top_n_difference_ci"] == [0.0, 0.0] and twin["recommendation"] == "keep the live run"
    assert twin["words"][-1].startswith(f"Keep the live run {LIVE}: the ROC-AUC difference interval includes 0")


@pytest.mark.parametrize("bad", [0, -3, "ten", "", 2.5, True, None, float("nan")])
def test_a_top_n_that_is_not_a_whole_number_of_at_least_one_is_refused(bad):
    with pytest.raises(ChallengerError, match="top N"):
        check_top_n(bad)


def test_a_top_n_larger_than_the_lists_is_refused_naming_the_largest(shadowed):
    assert check_top_n(" 1,000 ") == 1000
    with pytest.raises(ChallengerError, match="more than any compared list holds with an outcome .the largest has 300"):
        challenger_report(301)
    assert challenger_report(300, n_boot=20)["runs"]


def test_the_cli_carries_the_challengers_and_refuses_a_bad_top(shadowed, tmp_path, capsys):
    root, leads = shadowed
    f = outcomes(leads, tmp_path / "again.csv")
    capsys.readouterr()
    assert main(["outcomes", "--data", str(f), "--top", "30", "--json", str(tmp_path / "r.json")]) == 0
    block = json.loads((tmp_path / "r.json").read_text())["challengers"]
    assert block["top_n"] == 30 and {e["run_id"] for e in block["runs"]} == {OTHER, TWIN}
    assert "champion vs challenger (top 30 of each list):" in capsys.readouterr().out
    uploads = len(OutcomeStore().list())
    for bad, said in (("0", "at least 1"), ("-5", "at least 1"), ("lots", "whole number")):
        assert main(["outcomes", "--data", str(f), "--top", bad]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1
    assert len(OutcomeStore().list()) == uploads  # refused before anything was read or stored
    assert main(["outcomes", "--data", str(f), "--top", "5000", "--json", str(tmp_path / "big.json")]) == 2
    assert "Fix: set N to at most 300" in capsys.readouterr().err
    assert "at most 300" in json.loads((tmp_path / "big.json").read_text())["challengers"]["error"]


def test_a_challenger_that_scored_none_of_the_matched_leads_is_said(shadowed, tmp_path, capsys):
    root, _ = shadowed
    new = demo_leads(n=60, seed=42).drop(columns=["Converted"])
    new.to_csv(tmp_path / "next.csv", index=False)
    other = root / "runs" / "20260104T120000-stacking-dddddd"
    copy_run(root / "runs" / OTHER, root / "runs", other.name)
    assert main(["score", "--data", str(tmp_path / "next.csv"), "--shadow", other.name]) == 0  # no outcomes yet
    entry = next(e for e in challenger_report(25, n_boot=20)["runs"] if e["run_id"] == other.name)
    assert entry["leads"] == 0 and entry["recommendation"] == "keep the live run"
    assert f"Run {other.name} scored none of the leads with an outcome" in entry["words"][0]
    assert f"score --shadow {other.name}" in entry["words"][0]


def test_no_live_run_no_champion(shadowed):
    (shadowed[0] / "live.json").unlink()
    block = challenger_report(25)
    assert block["runs"] == [] and "No live leads run is set" in block["words"][0]


def test_a_damaged_shadow_file_is_named_not_used(shadowed):
    (meta,) = ScoredStore().list()
    (ScoredStore().root / meta["sha256"] / "shadow.csv").write_text("garbage\n1\n")
    block = challenger_report(25, n_boot=20)
    assert (
        block["runs"] == []
        and "shadow.csv does not hold the shadow runs" in block["skipped_lists"][meta["sha256"][:12]]
    )


@pytest.mark.parametrize(
    "shadow, extra, message",
    [
        ("20300101T000000-stacking-ffffff", [], "No run"),
        ("../../etc/passwd", [], "a run id looks like"),
        (LIVE, [], "is the run scoring the file"),
        (OTHER, ["--no-store"], "cannot go with --no-store"),
        ("20260105T120000-stacking-eeeeee", [], "scores transcripts, and run"),
    ],
)
def test_hostile_shadow_runs_are_one_line_errors(shadowed, tmp_path, capsys, shadow, extra, message):
    root, leads = shadowed
    transcripts = copy_run(root / "runs" / LIVE, root / "runs", "20260105T120000-stacking-eeeeee")
    spec = json.loads((transcripts / "spec.json").read_text())
    (transcripts / "spec.json").write_text(json.dumps({**spec, "input_kind": "transcripts"}))
    leads.head(30).drop(columns=["Converted"]).to_csv(tmp_path / "few.csv", index=False)
    lists = len(ScoredStore().list())
    capsys.readouterr()
    assert main(["score", "--data", str(tmp_path / "few.csv"), "--run", LIVE, "--shadow", shadow, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert len(ScoredStore().list()) == lists


def test_two_threads_adding_shadow_scores_to_one_list_keep_both(small_stack_run, challenger_run, tmp_path):
    run, leads = small_stack_run
    raw = read_rows(run, leads.head(80).drop(columns=["Converted"]))
    main_list = score_frame(run, raw, explain=0)
    shadow = score_frame(challenger_run, read_rows(challenger_run, leads.head(80)), explain=0)
    store = ScoredStore(tmp_path / "scored")
    store.add(main_list, "week.csv")
    ids = [f"20260201T12000{i}-stacking-{i}{i}{i}{i}{i}{i}" for i in range(6)]
    barrier, errors = threading.Barrier(len(ids)), []

    def add(run_id):
        try:
            barrier.wait()
            ScoredStore(tmp_path / "scored").add(main_list, "week.csv", shadows={run_id: shadow})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (meta,) = store.list()
    assert sorted(meta["shadow_runs"]) == ids
    scores = store.shadow_scores(meta)
    ranked = pd.read_csv(store.path(meta["sha256"]))
    assert len(scores) == len(ranked) == 80 and all((scores[i] == scores[ids[0]]).all() for i in ids)


def test_the_monitoring_page_compares_and_makes_the_challenger_live(shadowed):
    at = AppTest.from_file(str(PAGES / "monitoring.py"), default_timeout=120)
    at.session_state["monitoring_top_n"] = 25
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    said = texts(at.markdown)
    from dashboard.components.state import run_labels

    labels = run_labels(RunStore().list_runs())  # runs are named as the board names them, not by their ids
    assert f"**{labels[OTHER]}** against the live model of demo leads, **{labels[LIVE]}**" in said
    assert "Calling the top 25 of each list" in said
    assert "changes the live model of **demo leads**" in said
    assert f"will use **{labels[OTHER]}** instead of **{labels[LIVE]}**" in said
    at.text_input(key=f"monitoring_live_note_{OTHER}").input("better on April's leads").run()
    at.button(key=f"monitoring_make_live_{OTHER}").click().run()
    assert not at.exception and f"{labels[OTHER]} is the live model of demo leads (version 2)." in texts(at.success)
    entry = LiveStore.beside(RunStore()).history()[-1]
    assert (entry["run_id"], entry["previous"], entry["note"]) == (OTHER, LIVE, "better on April's leads")
    at.session_state["monitoring_top_n"] = 5000  # more than any list holds: said with the fix
    at.run()
    assert "Fix: set N to at most 300" in texts(at.error)


def test_make_live_without_a_note_records_what_the_comparison_said(shadowed):
    """A challenger made live against a 'keep the live run' recommendation used to be recorded in the history as
    'better on realized outcomes' (browser walk, 09_monitoring_made_live.png): the note now says what was said."""
    from engine.challenger import challenger_report

    (entry,) = [e for e in challenger_report(25)["runs"] if e["run_id"] == OTHER]
    at = AppTest.from_file(str(PAGES / "monitoring.py"), default_timeout=120)
    at.session_state["monitoring_top_n"] = 25
    at.run()
    at.button(key=f"monitoring_make_live_{OTHER}").click().run()
    assert not at.exception and "is the live model of demo leads (version 2)." in texts(at.success)
    assert entry["recommendation"] == "keep the live run"  # the shadow is a copy of the live run: no better
    note = LiveStore.beside(RunStore()).history()[-1]["note"]
    assert "better" not in note and "the comparison said to keep the live run" in note
