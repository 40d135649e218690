"""Retrain with outcomes (engine/retrain.py, dataset versions in engine/datasets.py, `retrain --live`, the weekly
demo's files): a real job trains the live run's configuration on its dataset plus the outcomes that came back; hostile
cases; two threads adding versions at once."""

import io
import json
import threading

import numpy as np
import pandas as pd
import pytest
from support import copy_run

from engine.cli import main
from engine.data.demo import demo_leads
from engine.data.leads import read_table
from engine.datasets import DatasetStore, version_number
from engine.jobs import JobRunner
from engine.live import LiveStore, deployable
from engine.retrain import RetrainError, retrain_live
from engine.runs import RunStore

LIVE = "20260101T120000-stacking-aaaaaa"


@pytest.fixture
def live_with_outcomes(small_stack_run, tmp_path, monkeypatch):
    """A workspace: the small stack live (its training file at hand, not stored), 200 new leads scored and the
    outcomes of 150 of them uploaded. Returns (workspace, training file, new leads)."""
    run, leads = small_stack_run
    root = tmp_path / "workspace"
    copy_run(run.path, root / "runs", LIVE)
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    store = RunStore(root / "runs")
    LiveStore.beside(store).deploy(deployable(store, LIVE, load=False))
    trained_on = tmp_path / "trained_on.csv"
    leads.to_csv(trained_on, index=False)  # the bytes the run hashed
    new = demo_leads(n=200, seed=51)
    new.drop(columns=["Converted"]).to_csv(tmp_path / "week.csv", index=False)
    assert main(["score", "--data", str(tmp_path / "week.csv"), "--out", str(tmp_path / "ranked.csv")]) == 0
    part = new.head(150)
    pd.DataFrame(
        {"Prospect ID": part["Prospect ID"], "Outcome": np.where(part["Converted"] == 1, "won", "lost")}
    ).to_csv(tmp_path / "won_lost.csv", index=False)
    assert main(["outcomes", "--data", str(tmp_path / "won_lost.csv")]) == 0
    return root, trained_on, new


def test_retrain_adds_a_version_and_trains_the_live_configuration_as_a_job(live_with_outcomes, capsys):
    root, trained_on, new = live_with_outcomes
    capsys.readouterr()
    assert main(["retrain", "--live", "--data", str(trained_on), "--timeout", "600"]) == 0
    out = capsys.readouterr().out
    assert "150 leads with their outcome added from 1 scored list;" in out
    run_id = out.split("RUN_ID=")[1].split()[0]
    # the dataset: version 1 (the file trained on) kept as it was, version 2 = its rows plus the 150 outcomes
    store = DatasetStore()
    first, second = store.versions(store.list()[0].sha)
    assert (version_number(first), version_number(second)) == (1, 2)
    assert first.read_bytes() == trained_on.read_bytes()
    v1 = read_table(io.BytesIO(first.read_bytes()), filename="v1.csv")
    v2 = read_table(io.BytesIO(second.read_bytes()), filename="v2.csv")
    assert len(v2) == len(v1) + 150 and v2.head(len(v1))["Prospect ID"].tolist() == v1["Prospect ID"].tolist()
    added = v2.tail(150).set_index("Prospect ID")
    truth = new.head(150).set_index("Prospect ID")
    assert (added["Converted"] == truth.loc[added.index, "Converted"]).all()  # the outcome column, filled by id
    assert (added["Total Time Spent on Website"] == truth.loc[added.index, "Total Time Spent on Website"]).all()
    assert second.meta["origin"]["rows_added"] == 150 and second.meta["parent"] == first.sha
    # the run records the version it saw; the live run is unchanged
    run = RunStore().get(run_id)
    live = RunStore().get(LIVE)
    assert run.settings.data_hash == second.sha and run.settings.dataset.endswith(" v2")
    assert run.settings.approach == live.settings.approach and run.settings.rows == len(v2)
    assert {k: run.settings.params[k] for k in live.settings.params} == live.settings.params
    assert LiveStore(root).live("leads")["run_id"] == LIVE
    # uploading nothing new and retraining again: the same version (nothing duplicated), a second job
    done = retrain_live(runner=JobRunner())
    assert done["dataset"] == second.sha and done["version"] == 2
    assert len(DatasetStore().list()) == 2


def test_retrain_without_a_live_run_or_outcomes_is_refused(live_with_outcomes, tmp_path, capsys):
    root, trained_on, _ = live_with_outcomes
    with pytest.raises(RetrainError, match="is not among the uploaded datasets .*Fix: upload that file on the Data"):
        retrain_live(runner=JobRunner())
    other = tmp_path / "other.csv"
    demo_leads(n=50, seed=9).to_csv(other, index=False)
    with pytest.raises(RetrainError, match="other.csv is not the file live run .* was trained on"):
        retrain_live(runner=JobRunner(), data=other)
    (root / "live.json").unlink()
    with pytest.raises(RetrainError, match="no live leads run is set"):
        retrain_live(runner=JobRunner(), data=trained_on)
    assert main(["retrain", "--data", str(trained_on)]) == 2
    assert "say so with --live" in capsys.readouterr().err
    assert JobRunner().list() == [] and DatasetStore().list() == []  # nothing queued, nothing stored


def test_retrain_without_outcomes_or_with_only_known_leads_is_refused(small_stack_run, tmp_path, monkeypatch, capsys):
    run, leads = small_stack_run
    root = tmp_path / "workspace"
    copy_run(run.path, root / "runs", LIVE)
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    store = RunStore(root / "runs")
    LiveStore.beside(store).deploy(deployable(store, LIVE, load=False))
    trained_on = tmp_path / "trained_on.csv"
    leads.to_csv(trained_on, index=False)
    assert main(["retrain", "--live", "--data", str(trained_on)]) == 2
    assert "no outcomes came back yet" in capsys.readouterr().err
    # outcomes of leads the dataset holds already (scored again): nothing new to learn from
    leads.head(60).drop(columns=["Converted"]).to_csv(tmp_path / "old.csv", index=False)
    assert main(["score", "--data", str(tmp_path / "old.csv")]) == 0
    known = leads.head(60)
    pd.DataFrame({"Prospect ID": known["Prospect ID"], "Converted": known["Converted"]}).to_csv(
        tmp_path / "o.csv", index=False
    )
    assert main(["outcomes", "--data", str(tmp_path / "o.csv")]) == 0
    capsys.readouterr()
    assert main(["retrain", "--live", "--data", str(trained_on)]) == 2
    assert "no outcome came back for leads that dataset" in capsys.readouterr().err
    assert JobRunner().list() == []


def test_two_threads_adding_versions_at_once_get_two_numbers(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    base = demo_leads(n=80, seed=1)
    first = store.add(base.to_csv(index=False).encode(), filename="leads.csv", kind="leads", target="Converted")
    tables = [pd.concat([base, demo_leads(n=10, seed=s)]).to_csv(index=False).encode() for s in (2, 3, 4, 5)]
    barrier, made, errors = threading.Barrier(len(tables)), [], []

    def add(data):
        try:
            barrier.wait()
            made.append(DatasetStore(tmp_path / "datasets").add_version(first.sha, data, origin={"test": True}))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(t,)) for t in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    versions = store.versions(first.sha)
    assert [version_number(v) for v in versions] == [1, 2, 3, 4, 5]
    assert sorted(v.read_bytes() for v in versions[1:]) == sorted(tables)
    assert versions[0].read_bytes() == base.to_csv(index=False).encode()  # the first version kept as it was
    assert all(v.meta["version_of"] == first.sha and v.meta["target"] == "Converted" for v in versions[1:])
    assert "v3" in versions[2].label()


def test_the_weekly_demo_files_are_deterministic_and_never_written_over(tmp_path, capsys):
    assert main(["demo", "--weekly", str(tmp_path / "a")]) == 0
    assert main(["demo", "--weekly", str(tmp_path / "b")]) == 0
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert a == {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} and len(a) == 1 + 2 * 12 + 1
    early = pd.read_csv(tmp_path / "a" / "early_weeks.csv")
    week = pd.read_csv(tmp_path / "a" / "week_05.csv")
    outcome = pd.read_csv(tmp_path / "a" / "outcomes_week_05.csv")
    assert len(early) == 800 and "Converted" in early and "Created On" in week and "Converted" not in week
    assert outcome["Prospect ID"].tolist() == week["Prospect ID"].tolist()
    assert set(outcome["Outcome"]) == {"won", "lost"} and early["Created On"].max() < week["Created On"].min()
    capsys.readouterr()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["demo", "--weekly", str(tmp_path / "mine")]) == 2
    assert "is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert json.dumps(a["README.txt"].decode()).count("python -m engine") >= 6


def test_the_monitoring_page_retrains_with_outcomes_as_a_job(live_with_outcomes):
    from dashboard_support import PAGES, texts
    from streamlit.testing.v1 import AppTest

    _, trained_on, _ = live_with_outcomes
    at = AppTest.from_file(str(PAGES / "monitoring.py"), default_timeout=120).run()
    at.button(key="monitoring_retrain").click().run()
    assert not at.exception and "is not among the uploaded datasets" in texts(at.error)
    assert JobRunner().list() == []
    DatasetStore().add(trained_on, kind="leads", target="Converted")  # uploaded on the Data page
    at.button(key="monitoring_retrain").click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = texts(at.success)
    assert "150 leads with their outcome added" in said and "trains the configuration of live run" in said
    (job,) = JobRunner().list()
    assert job.state == "queued" and job.name.startswith("retrain stacking with outcomes")
    assert LiveStore.beside(RunStore()).live("leads")["run_id"] == LIVE


def test_a_live_stack_with_base_models_set_from_python_is_refused_before_anything_is_stored(live_with_outcomes):
    """A stack records its base models' classes as ``estimators``: the four that ship are rebuilt by the job (the
    test above), others set from Python cannot be, and are refused naming the setting, before a version is stored."""
    root, trained_on, _ = live_with_outcomes
    spec_path = root / "runs" / LIVE / "spec.json"
    spec = json.loads(spec_path.read_text())
    assert spec["params"]["estimators"][0][0] == "lr"  # the record the shipped four leave
    spec["params"]["estimators"] = [["lr", "sklearn.linear_model._logistic.LogisticRegression"]]
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(RetrainError, match=r"settings a job cannot repeat \(estimators: base models set from Python"):
        retrain_live(runner=JobRunner(), data=trained_on)
    assert JobRunner().list() == [] and DatasetStore().list() == []  # nothing queued, nothing stored
