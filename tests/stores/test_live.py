"""The live store (engine/live.py): deploy, rollback, history, damaged files and concurrent deploys."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import copy_run

from engine.live import LiveFileProblem, LiveRunUnusable, LiveStore, deployable
from engine.runs import BrokenRun, RunStore

REPO = Path(__file__).resolve().parents[2]
IDS = ["20260101T120000-stacking-aaaaaa", "20260102T120000-stacking-bbbbbb", "20260103T120000-stacking-cccccc"]


@pytest.fixture
def three(small_stack_run, tmp_path):
    """A store of three copies of the small stack run, and its live store."""
    run, _ = small_stack_run
    for run_id in IDS:
        copy_run(run.path, tmp_path / "runs", run_id)
    store = RunStore(tmp_path / "runs")
    return store, LiveStore.beside(store)


def test_deploy_history_and_rollback(three):
    store, live = three
    assert live.live("leads") is None and live.history() == []
    first = live.deploy(deployable(store, IDS[0]), note="first")
    assert first["version"] == 1 and first["previous"] is None and first["note"] == "first"
    second = live.deploy(deployable(store, IDS[1]))
    assert second["previous"] == IDS[0] and second["version"] == 2
    assert live.live("leads")["run_id"] == IDS[1] and live.live("leads")["version"] == 2
    back = live.rollback(store, "leads", note="bad scores")
    assert back["run_id"] == IDS[0] and back["previous"] == IDS[1] and back["action"] == "rollback"
    assert live.live("leads") == {k: back[k] for k in ("run_id", "family", "version", "time", "by", "note")}
    assert [e["run_id"] for e in live.history()] == [IDS[0], IDS[1], IDS[0]]
    with pytest.raises(ValueError, match="no earlier live leads run"):
        live.rollback(store, "leads")
    # the history file is JSON lines, one change a line
    lines = live.history_path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["kind"] == "leads" for line in lines)


def test_training_a_new_run_does_not_change_the_live_run(three, small_stack_run):
    store, live = three
    live.deploy(deployable(store, IDS[0]))
    copy_run(small_stack_run[0].path, store.root, "20270101T000000-stacking-dddddd")  # a newer run appears
    assert store.latest(input_kind="leads").id == "20270101T000000-stacking-dddddd"
    assert live.live_run(store, "leads")[0].id == IDS[0]


def test_hostile_deploys_are_refused(three):
    store, live = three
    with pytest.raises(KeyError, match="a run id looks like"):
        deployable(store, "../../etc/passwd")
    with pytest.raises(KeyError, match="No run"):
        deployable(store, "20300101T000000-stacking-ffffff")
    (store.root / IDS[2] / "spec.json").write_text("{not json")
    with pytest.raises(BrokenRun, match="spec.json"):
        deployable(store, IDS[2])
    with pytest.raises(ValueError, match="scores leads, not transcripts"):
        live.deploy(deployable(store, IDS[0]), kind="transcripts")
    with pytest.raises(ValueError, match="no live leads run is set, so there is nothing to roll back"):
        live.rollback(store, "leads")
    assert not live.live_path.exists() and not live.history_path.exists()


def test_damaged_model_files_are_refused(three):
    store, _ = three
    for f in (store.root / IDS[1] / "model").iterdir():
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.raises(BrokenRun, match="model files cannot be loaded"):
        deployable(store, IDS[1])


def test_a_live_run_that_goes_away_is_an_error_naming_it(three):
    store, live = three
    live.deploy(deployable(store, IDS[0]))
    store.delete(IDS[0])
    with pytest.raises(LiveRunUnusable, match=f"live leads run {IDS[0]} cannot be used.*no longer in"):
        live.live_run(store, "leads")


@pytest.mark.parametrize("text", ["{not json", "[]", '{"format": 1, "version": "x", "live": {}}'])
def test_a_damaged_live_file_is_named_with_the_fix(three, text):
    store, live = three
    live.live_path.write_text(text)
    with pytest.raises(LiveFileProblem, match="live.json .*Fix: move live.json aside"):
        live.live("leads")
    with pytest.raises(LiveFileProblem):  # nothing is written over it
        live.deploy(deployable(store, IDS[0], load=False))
    assert live.live_path.read_text() == text


def test_a_damaged_history_is_named_and_not_written_over(three):
    store, live = three
    live.deploy(deployable(store, IDS[0], load=False))
    with live.history_path.open("a") as f:
        f.write("half a line{\n")
    with pytest.raises(LiveFileProblem, match="line 2 is not a history entry.*Fix: move live_history.jsonl aside"):
        live.deploy(deployable(store, IDS[1], load=False))
    assert live.live("leads")["run_id"] == IDS[0]


def test_threads_deploying_at_once_are_all_in_the_history(three):
    store, live = three
    runs = [deployable(store, run_id, load=False) for run_id in IDS]
    barrier = threading.Barrier(len(runs))

    def go(run):
        barrier.wait()
        LiveStore(live.root).deploy(run)

    threads = [threading.Thread(target=go, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = live.history()
    assert sorted(e["run_id"] for e in history) == sorted(IDS)
    assert [e["version"] for e in history] == [1, 2, 3]
    assert [e["previous"] for e in history[1:]] == [e["run_id"] for e in history[:-1]]
    assert live.live("leads")["run_id"] == history[-1]["run_id"]


def test_two_processes_deploying_at_once_are_both_in_the_history(three):
    store, live = three
    code = (
        "import sys; from engine.live import LiveStore, deployable; from engine.runs import RunStore; "
        "s = RunStore(sys.argv[1]); [LiveStore.beside(s).deploy(deployable(s, sys.argv[2], load=False)) "
        "for _ in range(5)]"
    )
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store.root), run_id], env=env) for run_id in IDS[:2]]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    history = live.history()
    assert len(history) == 10 and [e["version"] for e in history] == list(range(1, 11))
    assert {e["run_id"] for e in history} == set(IDS[:2])
    assert live.live("leads")["version"] == 10
