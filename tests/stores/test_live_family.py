"""One live run per input kind and dataset family (engine/live.py): lookup, rollback, the format-1 file read and
upgraded, hostile family names, and concurrent deploys of two families."""

import json
import threading

import pytest
from support import copy_run

from engine.live import (
    MAX_FAMILY_CHARS,
    UNKNOWN_FAMILY,
    FamilyChoice,
    LiveRunUnusable,
    LiveStore,
    NoLiveRun,
    check_family,
    deployable,
    family_of,
)
from engine.runs import RunStore
from engine.runspec import RunSpec

A = ["20260101T120000-stacking-aaaaaa", "20260102T120000-stacking-bbbbbb"]  # family "crm a"
B = ["20260103T120000-stacking-cccccc", "20260104T120000-stacking-dddddd"]  # family "crm b"
A_V2 = "20260105T120000-stacking-eeeeee"  # "crm a v2": a retrained version, same family


def _copy(src, root, run_id, dataset):
    folder = copy_run(src, root, run_id)
    spec = json.loads((folder / "spec.json").read_text())
    (folder / "spec.json").write_text(json.dumps({**spec, "dataset": dataset}))


@pytest.fixture
def families(small_stack_run, tmp_path):
    """Runs of two dataset families (and a retrained version of the first) in one store, and its live store."""
    run, _ = small_stack_run
    for run_id in A:
        _copy(run.path, tmp_path / "runs", run_id, "crm a")
    for run_id in B:
        _copy(run.path, tmp_path / "runs", run_id, "crm b")
    _copy(run.path, tmp_path / "runs", A_V2, "crm a v2")
    store = RunStore(tmp_path / "runs")
    return store, LiveStore.beside(store)


def test_family_is_the_dataset_name_and_retrained_versions_keep_it():
    spec = RunSpec(approach="stacking", columns=["a"], dataset="Leads.csv")
    assert family_of(spec) == "Leads.csv"
    assert family_of(spec.model_copy(update={"dataset": "Leads.csv v3"})) == "Leads.csv"
    assert family_of(spec.model_copy(update={"dataset": "Leads v1"})) == "Leads v1"  # only retrain's v2, v3... go
    assert family_of(spec.model_copy(update={"dataset": None})) == "(unnamed dataset)"


def test_one_live_run_per_family_lookup_and_rollback(families):
    store, live = families
    live.deploy(deployable(store, A[0], load=False))
    assert live.live("leads")["run_id"] == A[0]  # one family live: no family needed
    b = live.deploy(deployable(store, B[0], load=False))
    assert b["family"] == "crm b" and b["previous"] is None  # the other family's live run is not "previous"
    with pytest.raises(FamilyChoice, match=r"'crm a', 'crm b'.*--family NAME.*\"family\".*Score page"):
        live.live("leads")
    assert live.live("leads", "crm a")["run_id"] == A[0] and live.live("leads", "crm b")["run_id"] == B[0]
    assert live.live("leads", "crm c") is None and live.live("transcripts") is None
    again = live.deploy(deployable(store, A_V2, load=False))  # a retrained version replaces its family's run
    assert again["family"] == "crm a" and again["previous"] == A[0]
    live.deploy(deployable(store, B[1], load=False))
    back = live.rollback(store, "leads", family="crm a")
    assert back["run_id"] == A[0] and live.live("leads", "crm b")["run_id"] == B[1]  # family b untouched
    with pytest.raises(FamilyChoice):  # without a family while two are live: refused, nothing rolled back
        live.rollback(store, "leads")
    assert live.rollback(store, "leads", family="crm b")["run_id"] == B[0]
    state = json.loads(live.live_path.read_text())
    assert state["format"] == 2 and sorted(state["live"]["leads"]) == ["crm a", "crm b"]
    assert [(e["family"], e["action"]) for e in live.history()][-2:] == [("crm a", "rollback"), ("crm b", "rollback")]


@pytest.mark.parametrize(
    "value, said",
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * 10_000, f"10,000 characters long; a family name is at most {MAX_FAMILY_CHARS}"),
        ("crm a\nrm -rf", "control characters"),
        ("crm\x00a", "control characters"),
        (5, "must be text"),
    ],
)
def test_hostile_family_names_are_refused_with_the_fix(families, value, said):
    store, live = families
    live.deploy(deployable(store, A[0], load=False))
    with pytest.raises(ValueError, match=said) as err:
        live.pick("leads", value)
    assert "Fix:" in str(err.value) and len(str(err.value)) < 400  # a 10 KB name is not echoed back
    with pytest.raises(ValueError, match=said):
        check_family(value, "--family")


def test_unknown_family_and_a_family_of_the_other_kind_are_named(families):
    store, live = families
    live.deploy(deployable(store, A[0], load=False))
    with pytest.raises(
        NoLiveRun, match=r"no live leads run of the dataset family 'crm z'; live leads families: 'crm a'"
    ):
        live.pick("leads", "crm z")
    with pytest.raises(NoLiveRun, match="that family has a live leads run: it scores leads, not transcripts"):
        live.pick("transcripts", "crm a")
    with pytest.raises(NoLiveRun, match="no live leads run of .*'crm z'"):
        live.live_run(store, "leads", "crm z")


def test_a_format_1_file_is_read_as_its_runs_families_and_upgraded(families):
    store, live = families
    store.delete(B[1])  # a format-1 entry whose run is gone: family unknown, and an error naming the run
    old = {"format": 1, "version": 3, "live": {"leads": {"run_id": A[0], "version": 2, "time": "t", "by": None}}}
    live.live_path.write_text(json.dumps(old))
    history = [
        {"version": 1, "action": "deploy", "kind": "leads", "run_id": B[0], "previous": None},
        {"version": 2, "action": "deploy", "kind": "leads", "run_id": A[0], "previous": B[0]},
    ]
    live.history_path.write_text("".join(json.dumps(e) + "\n" for e in history))
    assert live.live("leads") == {**old["live"]["leads"], "family": "crm a"}
    assert live.live_run(store, "leads")[0].id == A[0]
    assert [e["family"] for e in live._with_family(live.history())] == ["crm b", "crm a"]
    with pytest.raises(ValueError, match="no earlier live leads run of family 'crm a'"):  # B[0] was another family
        live.rollback(store, "leads")
    entry = live.deploy(deployable(store, A[1], load=False))
    assert entry["previous"] == A[0] and entry["version"] == 4
    state = json.loads(live.live_path.read_text())
    assert state["format"] == 2 and state["live"]["leads"]["crm a"]["run_id"] == A[1]
    assert live.rollback(store, "leads")["run_id"] == A[0]
    # a format-1 entry whose run was deleted is in the unknown family, and using it names the run
    live.live_path.write_text(json.dumps({**old, "live": {"leads": {"run_id": B[1], "version": 1}}}))
    assert live.families("leads") == [UNKNOWN_FAMILY]
    with pytest.raises(LiveRunUnusable, match=f"{B[1]} cannot be used.*no longer in"):
        live.live_run(store, "leads")


def test_threads_deploying_two_families_and_one_family_at_once(families):
    store, live = families
    runs = [deployable(store, run_id, load=False) for run_id in [*A, *B]]
    barrier = threading.Barrier(len(runs))
    errors = []

    def go(run):
        barrier.wait()
        try:
            LiveStore(live.root, store.root).deploy(run)
        except Exception as exc:  # noqa: BLE001 - collected, the test fails below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = live.history()
    assert [e["version"] for e in history] == [1, 2, 3, 4] and sorted(e["run_id"] for e in history) == sorted(A + B)
    for family, ids in (("crm a", A), ("crm b", B)):
        mine = [e for e in history if e["family"] == family]
        assert [e["previous"] for e in mine] == [None, mine[0]["run_id"]]  # each family's chain is unbroken
        assert live.live("leads", family)["run_id"] == mine[-1]["run_id"] and mine[-1]["run_id"] in ids
    state = json.loads(live.live_path.read_text())
    assert state["version"] == 4 and {f: e["version"] for f, e in state["live"]["leads"].items()} == {
        "crm a": next(e["version"] for e in reversed(history) if e["family"] == "crm a"),
        "crm b": next(e["version"] for e in reversed(history) if e["family"] == "crm b"),
    }


def test_a_challenger_of_another_dataset_replaces_a_named_familys_run(families):
    store, live = families
    live.deploy(deployable(store, A[0], load=False))
    live.deploy(deployable(store, B[0], load=False))
    entry = live.deploy(deployable(store, B[1], load=False), family="crm a", note="beat the champion")
    assert (entry["family"], entry["previous"]) == ("crm a", A[0])
    assert live.live("leads", "crm a")["run_id"] == B[1] and live.live("leads", "crm b")["run_id"] == B[0]
    assert live.version_of(B[1]) == (entry["version"], "crm a")
    assert live.rollback(store, "leads", family="crm a")["run_id"] == A[0]
    before = live.live_path.read_text()
    with pytest.raises(NoLiveRun, match="'crm z'"):  # no family is made up by a typing slip
        live.deploy(deployable(store, A[1], load=False), family="crm z")
    with pytest.raises(ValueError, match="control characters"):
        live.deploy(deployable(store, A[1], load=False), family="crm\na")
    assert live.live_path.read_text() == before
