"""The calibration slice every lead run keeps out of its fit, and blends of runs fitted on it (engine.blend):
real small runs (the small stack and the plug-in plain logistic regression) on demo leads, in a fresh store."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from support import SMALL_STACK, copy_run

from engine import pipeline
from engine.approaches import registry
from engine.blend import blend_runs
from engine.data.demo import demo_leads
from engine.evaluate import calibration_slice, protocol_split
from engine.runs import BrokenRun, RunStore


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """(store, leads, stack run, plain logistic run, stack run without a slice) on 500 demo leads."""
    registry._ADDED["plain_logistic"] = "plain_logistic:PlainLogistic"  # the plug-in of tests/plugins (on the path)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))
    store = RunStore(tmp_path_factory.mktemp("blend") / "runs")
    leads = demo_leads(n=500, seed=11)
    stack = pipeline.train_leads(leads, params=SMALL_STACK, dataset_name="demo", store=store)
    plain = pipeline.train_leads(leads, "plain_logistic", dataset_name="demo", store=store)
    bare = pipeline.train_leads(leads, "plain_logistic", dataset_name="demo", store=store, calibration_share=0.0)
    yield store, leads, stack, plain, bare
    registry._ADDED.pop("plain_logistic", None)


def test_the_calibration_slice_is_the_same_for_every_approach_and_never_a_test_row(parts):
    store, leads, stack, plain, _ = parts
    a, b = stack.calibration(), plain.calibration()
    assert len(a) == stack.settings.split.calibration_rows == round(0.1 * 350) > 0
    assert a["row_id"].tolist() == b["row_id"].tolist()
    assert stack.settings.split.calibration_hash == plain.settings.split.calibration_hash
    test_ids = set(stack.predictions()["row_id"].astype(str))
    assert not test_ids & set(a["row_id"])
    assert stack.settings.split.n_train + len(a) + len(test_ids) == 500
    # the slice's outcomes are the rows' own: the stored labels match the table's
    y = leads.set_index(leads.index.astype(str))["Converted"]
    assert (a["y_true"].to_numpy() == y.loc[a["row_id"]].to_numpy()).all()


def test_calibration_slice_function_is_stratified_and_inside_the_training_rows():
    y = np.array([0] * 700 + [1] * 300)
    train, test = protocol_split(y)
    fit, held = calibration_slice(y, train, 0.1)
    assert set(fit) | set(held) == set(train) and not set(fit) & set(held) and not set(held) & set(test)
    assert abs(y[held].mean() - 0.3) < 0.02
    assert calibration_slice(y, train, 0.0)[1].size == 0
    for bad in (0.5, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="calibration share"):
            calibration_slice(y, train, bad)
    with pytest.raises(ValueError, match="too few"):
        calibration_slice(np.array([0, 1] * 10), np.arange(20), 0.1)


def test_a_blend_is_evaluated_on_the_test_rows_with_a_paired_interval_and_scores_new_leads(parts):
    store, leads, stack, plain, _ = parts
    run = blend_runs([stack.id, plain.id], store=store, name="stack + logistic")
    assert run.settings.approach == "blend" and run.label == "stack + logistic"
    info = run.metrics["blend"]
    assert [p["run_id"] for p in info["parts"]] == [stack.id, plain.id]
    assert info["best_part"] in (stack.id, plain.id)
    d = info["paired_vs_best"]
    assert d["low"] <= d["value"] <= d["high"]
    auc = run.metrics["metrics"]["roc_auc"]["value"]
    best = max(p["roc_auc"] for p in info["parts"])
    assert d["value"] == pytest.approx(auc - best)
    # the same test rows as its parts, and the same blend probabilities as the loaded model gives
    assert run.predictions()["row_id"].tolist() == stack.predictions()["row_id"].tolist()
    model = store.get(run.id).load_approach()
    test = leads.iloc[protocol_split(leads["Converted"].to_numpy())[1][:20]]
    from engine.scoring import prepare_rows

    X, _ = prepare_rows(run, test.drop(columns=["Converted"]))
    p = model.predict_proba(X)[:, 1]
    stored = run.predictions().set_index("row_id")["proba"].loc[test.index[:20].astype(int)].to_numpy()
    assert np.allclose(p, stored, atol=1e-6)
    # the scoring service: ranked list with reasons from the parts' contributions weighted by the blend
    from engine.scoring import score_frame

    scored = score_frame(store.get(run.id), test.drop(columns=["Converted"]), explain=3)
    assert scored.explained_rows == 3 and scored.table["reasons_for"].str.len().iloc[:3].gt(0).any()
    table = model.explain(X.iloc[:2])
    assert set(table["row"]) <= {0, 1} and len(table)
    # weights: the contributions are the parts' weighted sum exactly
    weighted = blend_runs([stack.id, plain.id], method="weights", store=store)
    wm = store.get(weighted.id).load_approach()
    assert wm.coef_.sum() == pytest.approx(1.0) and (wm.coef_ >= 0).all()
    parts_tables = [m.explain(X.iloc[:1]) for m in wm.part_models_]
    expected = sum(w * t.groupby("feature")["contribution"].sum() for w, t in zip(wm.coef_, parts_tables)).dropna()
    got = wm.explain(X.iloc[:1]).set_index("feature")["contribution"]
    assert np.allclose(got.loc[expected.index].to_numpy(), expected.to_numpy(), atol=1e-9)


def test_the_blend_never_sees_test_rows(parts, tmp_path):
    """Labels and probabilities of the test rows turned upside down in copies of the parts: the fitted blend is the
    same (it reads the calibration slice only); its test metrics change (it is evaluated there)."""
    store, _, stack, plain, _ = parts
    first = blend_runs([stack.id, plain.id], store=store)
    other = RunStore(tmp_path / "runs")
    for run in (stack, plain):
        folder = copy_run(run.path, other.root)
        pred = pd.read_csv(folder / "predictions.csv")
        pred["y_true"] = 1 - pred["y_true"]
        pred["proba"] = 1 - pred["proba"]
        pred.to_csv(folder / "predictions.csv", index=False)
    second = blend_runs([stack.id, plain.id], store=other)
    a = json.loads((first.model_dir / "approach.json").read_text())["state"]
    b = json.loads((second.model_dir / "approach.json").read_text())["state"]
    assert a == b
    # and the weights are those of a logistic regression on the slice's logits alone
    from sklearn.linear_model import LogisticRegression

    from engine.approaches.blend import logit

    P = np.column_stack([stack.calibration()["proba"], plain.calibration()["proba"]])
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(logit(P), stack.calibration()["y_true"])
    assert np.allclose(a["coef"], lr.coef_[0]) and a["intercept"] == pytest.approx(lr.intercept_[0])
    # changing the slice changes the blend: the test above would see it
    folder = other.root / stack.id
    cal = pd.read_csv(folder / "calibration.csv")
    cal["proba"] = 1 - cal["proba"]
    cal.to_csv(folder / "calibration.csv", index=False)
    third = blend_runs([stack.id, plain.id], store=other)
    assert json.loads((third.model_dir / "approach.json").read_text())["state"] != a


def test_hostile_blends_are_refused_with_the_run_named(parts, tmp_path):
    store, leads, stack, plain, bare = parts
    with pytest.raises(ValueError, match="at least two runs"):
        blend_runs([stack.id], store=store)
    with pytest.raises(ValueError, match=f"run {stack.id} is named twice"):
        blend_runs([stack.id, stack.id, plain.id], store=store)
    with pytest.raises(KeyError, match="20990101T000000-stacking-abcdef"):
        blend_runs([stack.id, "20990101T000000-stacking-abcdef"], store=store)
    with pytest.raises(KeyError, match="run id looks like"):
        blend_runs([stack.id, "../../etc/passwd"], store=store)
    with pytest.raises(ValueError, match=f"run {bare.id} kept no calibration slice"):
        blend_runs([stack.id, bare.id], store=store)
    with pytest.raises(ValueError, match="method"):
        blend_runs([stack.id, plain.id], method="mean", store=store)
    blend = blend_runs([stack.id, plain.id], store=store)
    with pytest.raises(ValueError, match=f"run {blend.id} is a blend itself"):
        blend_runs([blend.id, plain.id], store=store)
    # another dataset: the same approach on other leads
    other = pipeline.train_leads(demo_leads(n=400, seed=3), "plain_logistic", store=store)
    with pytest.raises(ValueError, match="different datasets"):
        blend_runs([stack.id, other.id], store=store)
    # another split of the same leads
    split = pipeline.train_leads(leads, "plain_logistic", store=store, seed=7)
    with pytest.raises(ValueError, match="different splits"):
        blend_runs([stack.id, split.id], store=store)
    # other columns of the same leads (a column left out)
    fewer = pipeline.train_leads(leads, "plain_logistic", store=store, exclude=["TotalVisits"])
    with pytest.raises(ValueError, match="different columns"):
        blend_runs([stack.id, fewer.id], store=store)
    # a transcripts run (its spec says so) beside a lead run
    calls = copy_run(plain.path, store.root, plain.id.replace("plain_logistic", "embeddings")[:-6] + "abcdef")
    spec = json.loads((calls / "spec.json").read_text())
    spec.update(input_kind="transcripts", approach="embeddings", columns=["transcript"], kinds={})
    (calls / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=f"run {calls.name} was trained on transcripts"):
        blend_runs([stack.id, calls.name], store=store)
    # the CLI says it in one line
    from engine.cli import main

    assert main(["blend", stack.id]) == 2


def test_a_damaged_part_is_named_when_the_blend_scores(parts, tmp_path):
    store, leads, stack, plain, _ = parts
    blend = blend_runs([stack.id, plain.id], store=store)
    other = RunStore(tmp_path / "runs")
    for run in (stack, plain, blend):
        copy_run(run.path, other.root)
    (other.root / plain.id / "model" / "state.json").write_text("{ not json")
    with pytest.raises(BrokenRun, match=f"part {plain.id} cannot be loaded"):
        other.get(blend.id).load_approach()
    shutil.rmtree(other.root / stack.id)
    with pytest.raises(BrokenRun, match=f"part {stack.id} cannot be loaded"):
        other.get(blend.id).load_approach()


def test_a_run_without_a_slice_still_loads_scores_and_explains(parts):
    store, leads, _, _, bare = parts
    from engine.scoring import score_frame

    assert bare.calibration() is None and not bare.settings.split.has_calibration
    scored = score_frame(store.get(bare.id), leads.drop(columns=["Converted"]).head(30), explain=2)
    assert scored.explained_rows == 2 and len(scored.table) == 30


def test_the_board_shows_the_blend_as_its_own_row_with_its_parts(parts, tmp_path, monkeypatch):
    from dashboard_support import run_page, texts

    store, _, stack, plain, _ = parts
    blend = blend_runs([stack.id, plain.id], store=store, name="the blend")
    root = tmp_path / "workspace"
    for run in (stack, plain, blend):
        copy_run(run.path, root / "runs")
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    at = run_page("board")
    ranking = at.dataframe[0].value
    assert "the blend" in ranking["run"].tolist() and len(ranking) == 4  # three runs + no model
    blends = next(d.value for d in at.dataframe if "vs_best" in d.value.columns)
    assert blends["blend"].tolist() == ["the blend"]
    names = [r for r in ranking["run"] if r not in ("the blend", "Base rate (no model)")]  # the parts' board names
    assert len(names) == 2 and all(f"{name} (" in blends["parts"].iloc[0] for name in names)
    assert "vs " in blends["vs_best"].iloc[0] and "[" in blends["vs_best"].iloc[0]
    assert "Blends" in texts(at.subheader)
    # the summary at the top says whether the blend adds anything, in the numbers of its paired interval
    paired = blend.metrics["blend"]["paired_vs_best"]
    summary = texts(at.markdown)
    assert f"The blend the blend is {paired['value']:+.3f} ROC-AUC against its best part" in summary
    said = (
        "adds something"
        if paired["low"] > 0
        else "worse than its best part"
        if paired["high"] < 0
        else "adds nothing clear"
    )
    assert said in summary and f"{paired['low']:+.3f} to {paired['high']:+.3f}" in summary
