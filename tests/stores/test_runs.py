import json

import numpy as np
import pytest

from engine.approaches.base import CONTRIBUTION_COLUMNS, contribution_frame
from engine.approaches.registry import REGISTRY
from engine.callbacks import CallbackList, JsonProgressFile, Progress, TrainingCancelled
from engine.pipeline import build_approach
from engine.runs import RunStore


def test_runs_are_never_overwritten(tmp_path):
    store = RunStore(tmp_path / "runs")
    a = store.new_run({"approach": "stacking", "columns": ["a"], "data_hash": "0" * 64})
    b = store.new_run({"approach": "stacking", "columns": ["a"], "data_hash": "0" * 64})
    assert a.id != b.id and a.path.exists() and b.path.exists()
    assert json.loads((a.path / "spec.json").read_text())["run_id"] == a.id


def test_incomplete_runs_are_hidden_until_metrics_exist(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.new_run({"approach": "lora", "columns": ["a"], "data_hash": "1" * 64})
    assert store.list_runs() == []
    run.save_predictions([10, 11], [0, 1], [0.2, 0.9])
    run.save_metrics({"metrics": {"roc_auc": {"value": 1.0, "low": 1.0, "high": 1.0}}})
    assert [r.id for r in store.list_runs(data_hash="1" * 64)] == [run.id]
    assert store.list_runs(data_hash="2" * 64) == []
    assert store.latest(approach="lora").id == run.id
    frame = run.predictions()
    assert list(frame.columns) == ["row_id", "y_true", "proba"] and frame["y_true"].tolist() == [0, 1]
    with pytest.raises(KeyError, match="No run"):
        store.get("missing")


def test_contribution_frame_has_the_shared_shape_and_order():
    frame = contribution_frame(
        [
            {"row": 0, "feature": "a", "value": 1, "contribution": 0.01},
            {"row": 0, "feature": "b", "value": "x", "contribution": -0.3},
            {"row": 1, "feature": "a", "value": 2, "contribution": 0.2},
        ]
    )
    assert list(frame.columns) == CONTRIBUTION_COLUMNS
    assert frame["feature"].tolist() == ["b", "a", "a"]  # by row, then by |contribution|
    assert frame["value"].tolist() == ["x", "1", "2"]


def test_registry_rejects_unknown_approach():
    with pytest.raises(ValueError, match="Unknown approach"):
        build_approach("nope")
    with pytest.raises(ValueError, match="no parameter"):
        build_approach("stacking", {"n_trees": 3})  # refused, never dropped
    assert {"stacking", "lora", "embeddings"} <= set(REGISTRY)


def test_progress_file_and_cancel_marker(tmp_path):
    path = tmp_path / "progress.json"
    cbs = CallbackList([JsonProgressFile(path)])
    cbs.on_train_begin(10)
    cbs.on_step_end(Progress(step=2, total=10, loss=0.5))
    payload = json.loads(path.read_text())
    assert payload["step"] == 2 and payload["total"] == 10 and payload["seconds_left"] >= 0
    assert payload["history"] == [{"step": 2, "loss": 0.5, "stage": "train"}]
    (tmp_path / "progress.json.cancel").touch()
    with pytest.raises(TrainingCancelled):
        cbs.on_step_end(Progress(step=3, total=10, loss=0.4))


def test_a_stored_run_keeps_the_explanations_of_its_default_sample(small_stack_run):
    from engine.runs import explain_rows, explain_sample

    run, leads = small_stack_run
    stored = run.explanations()
    n = explain_rows("stacking", "leads")
    assert sorted(stored["row"].unique()) == list(range(n))
    # the rows are the first n of the fixed shuffle of the test rows (what the Explain page asks for)
    test_ids = run.predictions()["row_id"].to_numpy()
    expected_ids = explain_sample(test_ids, n)
    assert stored.drop_duplicates("row").sort_values("row")["row_id"].tolist() == [str(i) for i in expected_ids]
    assert explain_sample(test_ids, 3).tolist() == expected_ids[:3].tolist()  # a smaller sample is a prefix
    # the same contributions and probabilities the reloaded model gives for those rows
    from engine.data.leads import load_leads

    table = load_leads(leads)
    position = {rid: i for i, rid in enumerate(np.asarray(table.row_ids).tolist())}
    X = table.X.iloc[[position[i] for i in expected_ids.tolist()]]
    model = run.load_approach()
    again = model.explain(X)
    np.testing.assert_allclose(stored["contribution"].to_numpy(), again["contribution"].to_numpy(), atol=1e-9)
    assert stored["feature"].tolist() == again["feature"].tolist()
    probs = stored.drop_duplicates("row").sort_values("row")["proba"].to_numpy()
    preds = run.predictions().set_index("row_id").loc[expected_ids, "proba"].to_numpy()
    np.testing.assert_allclose(probs, preds, atol=1e-9)


def test_a_run_can_be_named_without_touching_its_files(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.new_run({"approach": "stacking", "columns": ["a"]})
    spec = (run.path / "spec.json").read_bytes()
    assert run.label is None
    run.set_label("  Q3   stack\n with tags  ")
    assert store.get(run.id).label == "Q3 stack with tags"  # one line, spaces collapsed
    run.set_label("Q3 stack")
    assert store.get(run.id).label == "Q3 stack" and (run.path / "spec.json").read_bytes() == spec
    run.set_label("x" * 500)
    assert len(run.label) == 80
    (run.path / "label.json").write_text("{bad")
    assert run.label is None  # a damaged name is no name; the run still lists
    run.set_label("")
    assert run.label is None and not (run.path / "label.json").exists()


@pytest.mark.parametrize(
    "stage, interrupt",
    [
        ("done", TrainingCancelled("cancelled by the user")),
        ("done", OSError("no space left on device")),
        ("done", SystemExit(143)),
        ("sample test leads explained", TrainingCancelled("cancelled by the user")),
    ],
    ids=["cancel_after_publish", "progress_write_fails_after_publish", "sigterm_after_publish", "cancel_before"],
)
def test_an_interrupt_after_publication_never_removes_the_run(tmp_path, monkeypatch, stage, interrupt):
    """A training's last progress report ("done") comes after its run is published: a cancel marker, a failed
    progress write or the job's SIGTERM (SystemExit) landing then leaves the run listed and whole (a cancel or an
    error that late is ignored: the training is done; SystemExit still ends the process). One that lands before
    publication leaves nothing behind."""
    import os

    from engine.approaches import registry
    from engine.callbacks import Callback
    from engine.data.demo import demo_leads
    from engine.pipeline import train_leads
    from engine.runs import STAGING_LOCK

    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(os.path.dirname(__file__)), "plugins"))
    monkeypatch.setitem(registry._ADDED, "plain_logistic", "plain_logistic:PlainLogistic")
    root = tmp_path / "runs"

    class Interrupt(Callback):
        def on_step_end(self, progress):
            if progress.stage == stage:
                raise interrupt

    def train():
        return train_leads(demo_leads(n=300, seed=3), "plain_logistic", callbacks=[Interrupt()], store=RunStore(root))

    if stage != "done":
        with pytest.raises(TrainingCancelled):
            train()
        assert list(root.iterdir()) == []
        return
    if isinstance(interrupt, SystemExit):
        with pytest.raises(SystemExit):
            train()
    else:
        assert train().path.is_dir()
    store = RunStore(root)
    listed = store.list_runs()
    assert len(listed) == 1 and listed[0].complete and store.problems == {}
    assert listed[0].load_approach().name == "plain_logistic"
    assert (listed[0].path / "predictions.csv").exists() and not (listed[0].path / STAGING_LOCK).exists()
    assert [p.name for p in root.iterdir()] == [listed[0].id]
