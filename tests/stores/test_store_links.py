"""Files planted in the workspace: a link where a stored file should be (a run's ``spec.json``, a model's XGBoost
JSON or NumPy weights, ``live.json``) is refused and named, never followed to a file outside the workspace, and a
named pipe or a device there is refused at once instead of blocking (or filling memory) on a read."""

import os
import shutil
import threading

import pytest
from support import store_with

from engine.live import LiveFileProblem, LiveStore
from engine.runs import BrokenRun
from engine.storage import CorruptFile, read_json, write_json


def _in_time(call, seconds: float = 20.0):
    """``call()``'s exception (or None), failing the test when it has not returned after ``seconds``: a read that
    blocks on a named pipe never would."""
    out: dict = {}

    def target():
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the read was still blocked after {seconds} s"
    return out.get("exc")


@pytest.fixture
def store(small_stack_run, tmp_path):
    return store_with(small_stack_run[0], tmp_path / "ws" / "runs")


def _plant_link(target_in_run, outside):
    """Move the run's file out of the workspace and leave a link to it in its place."""
    outside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(target_in_run, outside)
    os.symlink(outside, target_in_run)


@pytest.mark.parametrize("name", ["spec.json", "metrics.json", "train_sample.csv"])
def test_a_link_planted_in_a_run_folder_makes_it_a_named_broken_run(store, tmp_path, name):
    run = store.latest()
    _plant_link(run.path / name, tmp_path / "outside" / name)
    with pytest.raises(BrokenRun, match=f"{name}.*link"):
        store.get(run.id)
    assert store.list_runs() == [] and name in store.problems[run.id]


@pytest.mark.parametrize("name", ["base_xgb.json", "state.npz", "approach.json"])
def test_a_link_planted_in_a_model_folder_is_never_followed(store, tmp_path, name):
    run = store.latest()
    assert (run.model_dir / name).is_file()
    _plant_link(run.model_dir / name, tmp_path / "outside" / name)
    with pytest.raises(BrokenRun, match=f"{name}.*link"):
        store.get(run.id).load_approach()
    assert store.latest_loadable() is None and name in store.problems[run.id]


def test_a_named_pipe_planted_as_a_run_file_is_refused_at_once(store):
    run = store.latest()
    (run.path / "spec.json").unlink()
    os.mkfifo(run.path / "spec.json")
    exc = _in_time(lambda: store.get(run.id))
    assert isinstance(exc, BrokenRun) and "spec.json" in exc.problem
    assert _in_time(store.list_runs) is None and run.id in store.problems


def test_read_json_refuses_links_pipes_and_devices(tmp_path):
    write_json(tmp_path / "real.json", {"a": 1})
    assert read_json(tmp_path / "real.json") == {"a": 1}
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    with pytest.raises(CorruptFile, match="link"):
        read_json(tmp_path / "link.json")
    os.mkfifo(tmp_path / "pipe.json")
    assert "not a plain file" in str(_in_time(lambda: read_json(tmp_path / "pipe.json")))
    os.symlink("/dev/zero", tmp_path / "zero.json")
    assert "link" in str(_in_time(lambda: read_json(tmp_path / "zero.json")))


@pytest.mark.parametrize("how", ["link", "pipe"])
def test_a_live_file_planted_as_a_link_or_a_pipe_is_a_named_problem(store, tmp_path, how):
    live = LiveStore.beside(store)
    outside = tmp_path / "outside" / "live.json"
    write_json(outside, {"format": 2, "version": 1, "live": {}})
    if how == "link":
        os.symlink(outside, live.live_path)
    else:
        os.mkfifo(live.live_path)
    exc = _in_time(live.state)
    assert isinstance(exc, LiveFileProblem) and "Fix:" in str(exc)
