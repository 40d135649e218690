"""What a fitted run stores beside its model is the approach's to say (``Approach.after_fit_artifacts``): the
pipeline stores what the approach declares, in the phase it names, with the rows of the fit, and names none of it
itself. A lead approach stores the training profile by default; an extra for a page that fails leaves the run."""

import json
import os
import sys

import numpy as np
import pytest

from engine import pipeline
from engine.approaches.base import AfterFit, Approach
from engine.callbacks import Callback
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.runs import RunStore
from engine.scoring import PROFILE_FILE, TRAIN_SAMPLE_FILE, load_training_profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "plugins"))
from plain_logistic import PlainLogistic  # noqa: E402 - the one-file approach of tests/plugins


def _note_rows(run, model, rows, log) -> None:
    """An extra that writes what it was given: the split's sizes and the first training row's id."""
    run.save_json(
        "rows_seen.json",
        {"train": len(rows.train_idx), "test": len(rows.test_idx), "first": str(rows.row_ids[rows.train_idx[0]])},
    )
    log("rows noted")


def _fail(run, model, rows, log) -> None:
    raise RuntimeError("no maps today")


class WithExtras(PlainLogistic):
    """The plain logistic regression, storing two extras of its own after the fit."""

    def after_fit_artifacts(self, input_kind: str) -> tuple[AfterFit, ...]:
        return (
            *super().after_fit_artifacts(input_kind),
            AfterFit("store", "noting the rows", _note_rows),
            AfterFit("explain", "a map that fails", _fail),
            AfterFit("explain", "noting the rows again", _note_rows, done="rows noted twice"),
        )


class Recorder(Callback):
    def __init__(self):
        self.stages, self.logs = [], []

    def on_step_end(self, progress) -> None:
        self.stages.append((progress.phase, progress.stage))

    def on_log(self, message: str) -> None:
        self.logs.append(message)


def test_a_lead_approach_stores_the_training_profile_by_default():
    assert [a.doing for a in Approach.after_fit_artifacts(PlainLogistic(), "leads")] == ["saving the training profile"]
    assert PlainLogistic().after_fit_artifacts("transcripts") == ()


def test_the_pipeline_stores_what_the_approach_declares(tmp_path):
    leads = demo_leads(n=200, seed=3)
    store, recorder = RunStore(tmp_path / "runs"), Recorder()
    table = load_leads(leads, target="Converted")
    fields = {"columns": list(table.X.columns), "kinds": dict(table.kinds), "data_hash": table.data_hash}
    run = pipeline.fit_evaluate_store(
        WithExtras(), table.X, table.y, table.row_ids, fields, store=store, callbacks=[recorder]
    )
    assert store.get(run.id).path.is_dir()  # published: the failing extra did not cost the run
    seen = json.loads((run.path / "rows_seen.json").read_text())
    n_train, n_test = run.settings.split.n_train, run.settings.split.n_test
    assert (seen["train"], seen["test"]) == (n_train, n_test)
    assert seen["first"] in {str(r) for r in np.asarray(table.row_ids)}
    profile = load_training_profile(run)  # the base's own, still there beside the approach's
    assert profile["rows"] == n_train and (run.path / TRAIN_SAMPLE_FILE).exists() and (run.path / PROFILE_FILE).exists()
    stages = [stage for phase, stage in recorder.stages if phase in ("store", "explain")]
    for said in ("saving the training profile", "noting the rows", "a map that fails", "rows noted twice"):
        assert said in stages
    assert any("a map that fails: not stored (RuntimeError: no maps today)" in line for line in recorder.logs)
    assert recorder.logs.count("rows noted") == 2


def test_an_artifact_scoring_needs_that_fails_fails_the_training(tmp_path):
    class Broken(PlainLogistic):
        def after_fit_artifacts(self, input_kind):
            return (AfterFit("store", "a profile that fails", _fail),)

    table = load_leads(demo_leads(n=120, seed=4), target="Converted")
    store = RunStore(tmp_path / "runs")
    fields = {"columns": list(table.X.columns), "kinds": dict(table.kinds)}
    with pytest.raises(RuntimeError, match="no maps today"):
        pipeline.fit_evaluate_store(Broken(), table.X, table.y, table.row_ids, fields, store=store)
    assert store.list_runs() == [] and not [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
