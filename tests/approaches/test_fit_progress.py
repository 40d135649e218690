"""The progress of a real embeddings training job: every stage of the fit (fine-tuning, the int8 ONNX export,
each encoding pass, each classifier head) is reported and fills its own share of the bar, so the bar is not at
the end of the fit while later stages still run; the export's temporary folder goes with the model. (That the
whole job's bar ends when the job does: a real small stack trained by the pipeline.)"""

import gc
import tempfile
from pathlib import Path

import pytest

from engine import onnx_encoder
from engine.approaches.embeddings import base_model_path, load_sentence_model
from engine.approaches.stacking import SMALL_PARAMS
from engine.callbacks import PHASES, Callback, PhaseTracker, Progress
from engine.data.demo import demo_leads
from engine.data.demo_transcripts import demo_transcripts
from engine.data.transcripts import load_transcripts
from engine.pipeline import build_approach, train_leads

TINY = dict(epochs=1, n_pairs=1, max_triplets=12, batch_size=6, train_tokens=64, seed=0)


class Recorder(Callback):
    def __init__(self):
        self.plans, self.reports = [], []

    def on_plan(self, stages):
        self.plans.append(list(stages))

    def on_step_end(self, progress):
        self.reports.append((progress.phase, progress.stage, progress.step, progress.total, progress.fraction))


def _onnx_folders() -> list[str]:
    return [p.name for p in Path(tempfile.gettempdir()).glob("clab-onnx-ft-*")]


def test_planned_stages_fill_their_own_share_of_the_phase():
    rec = Recorder()
    tracker = PhaseTracker([rec])
    tracker.begin("fit")
    tracker.on_plan({"a": 3.0, "b": 1.0})
    tracker.on_step_end(Progress(step=1, total=1, stage="a"))
    end_of_a = tracker.fraction
    tracker.on_step_end(Progress(step=1, total=2, stage="b"))
    half_b = tracker.fraction
    fit_share = tracker._span("fit")[1]
    assert end_of_a == pytest.approx(0.75 * fit_share) and half_b == pytest.approx(0.875 * fit_share)
    tracker.on_step_end(Progress(step=0, total=1, stage="unplanned"))  # an unplanned stage never moves the bar back
    assert tracker.fraction == half_b
    tracker.begin("evaluate")  # a new phase forgets the fit's plan
    assert tracker.stage_spans == {} and rec.plans == [["a", "b"]]


@pytest.mark.skipif(not onnx_encoder.available(), reason="onnxruntime is not installed: no ONNX export stage")
def test_embeddings_fit_reports_every_stage_and_the_bar_follows(tmp_path, monkeypatch):
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # this test's own temporary folder
    # loaded first, outside the training: a library's import-time warning, logged with its traceback and kept by
    # pytest's log capture, would otherwise keep the training's frames (and the fitted model) alive
    load_sentence_model(base_model_path(None))
    table = load_transcripts(demo_transcripts(24, seed=7))
    rec = Recorder()
    tracker = PhaseTracker([rec])
    tracker.begin("fit")  # as the pipeline does
    model = build_approach("embeddings", TINY).fit(table.X, table.y, callbacks=[tracker])
    assert rec.plans == [
        [
            "fine-tune",
            "export to int8 ONNX",
            "embed fine_tuned",
            "classifier head (fine_tuned)",
            "embed generic",
            "classifier head (generic)",
        ]
    ]
    stages = list(dict.fromkeys(r[1] for r in rec.reports if r[1] in rec.plans[0]))
    assert stages == rec.plans[0]  # each stage is reported, in the planned order
    fractions = [r[4] for r in rec.reports]
    assert fractions == sorted(fractions)  # never back
    end_of_fine_tune = max(r[4] for r in rec.reports if r[1] == "fine-tune")
    fit_share = tracker._span("fit")[1]
    assert end_of_fine_tune < fit_share - 0.05  # the stages after fine-tuning still move the bar...
    assert fractions[-1] == pytest.approx(fit_share)  # ...to the end of the fit's part when the fit ends
    assert model.timings_["onnx_export_seconds"] > 0
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "fine_tuned_int8.onnx").exists()
    assert _onnx_folders()  # the export lives in a temporary folder while the fitted model does...
    del model
    gc.collect()
    assert _onnx_folders() == []  # ...and goes with it


def test_a_training_job_goes_through_every_phase_and_ends_at_the_end(workspace):
    rec = Recorder()
    leads = demo_leads(n=300, seed=4)
    train_leads(leads, params=SMALL_PARAMS, callbacks=[rec], dataset_name="progress leads")
    phases = list(dict.fromkeys(r[0] for r in rec.reports))
    assert phases == ["fit", "evaluate", "store", "explain", "done"]
    fractions = [r[4] for r in rec.reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    before_explaining = max(r[4] for r in rec.reports if r[0] in ("fit", "evaluate", "store"))
    assert before_explaining < 1.0 - 0.9 * PHASES["explain"][1]  # the explanations still have their share to fill
