"""The dataset and run stores under concurrent writers: threads of one dashboard server, and separate processes
(trainings, one of them killed outright), adding, changing, reading, listing and deleting the same datasets."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.datasets import META_FILE, DatasetStore, NoSuchDataset, content_hash
from tests.conftest import REPO_ROOT


def lead_csv(round_: int) -> bytes:
    rows = "".join(f"{i},{'ab'[i % 2]}{round_},{i % 2}\n" for i in range(40))
    return f"Visits,Source,Converted\n{rows}".encode()


def leftovers(store: DatasetStore) -> list[str]:
    """Temporary files left in the store (a writer that lost its file, or one that crashed half way), and hidden
    folders (a dataset written or removed half way)."""
    hidden = [p.name for p in store.root.iterdir() if p.name.startswith(".")]
    return [p.name for p in store.root.rglob("*.tmp")] + hidden


def test_eight_threads_uploading_the_same_new_file_all_get_the_dataset(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    n_threads, rounds = 8, 5
    failures, results = [], []
    for round_ in range(rounds):
        data = lead_csv(round_)
        start = threading.Barrier(n_threads)

        def upload(i: int, data=data, start=start, round_=round_):
            start.wait()
            try:
                return DatasetStore(store.root).add(data, filename=f"leads_{round_}.csv", kind="leads")
            except Exception as exc:  # counted, not raised: the test reports how many failed and why
                failures.append(f"thread {i}: {type(exc).__name__}: {exc}")

        with ThreadPoolExecutor(n_threads) as pool:
            results += [(data, ds) for ds in pool.map(upload, range(n_threads))]
    assert failures == []
    assert len(results) == n_threads * rounds
    for data, ds in results:
        assert ds.sha == content_hash(data)
        assert ds.read_bytes() == data
        assert ds.meta["kind"] == "leads" and ds.meta["bytes"] == len(data)
    assert len(store.list()) == rounds and store.problems == {}
    assert leftovers(store) == []


def test_1200_concurrent_settings_updates_keep_meta_valid(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    ds = store.add(lead_csv(0), filename="leads.csv", kind="leads")
    errors: list[str] = []
    written = set()

    def updates(t: int):
        for j in range(100):
            values = (f"thread{t}-{j}", f"note {t}/{j}", ["Visits"] if (t + j) % 2 else [])
            written.add((values[0], values[1], tuple(values[2])))
            try:
                store.update(ds.sha, name=values[0], notes=values[1], exclude=values[2])
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(updates, range(12)))
    assert errors == []
    meta = json.loads((ds.path / META_FILE).read_text())  # valid JSON
    assert (meta["name"], meta["notes"], tuple(meta["exclude"])) in written  # one whole update, not a mix
    assert meta["kind"] == "leads" and meta["file"] == "data.csv"  # what no update touched is kept
    assert [d.sha for d in store.list()] == [ds.sha] and store.problems == {}
    assert leftovers(store) == []


WORKER = """
import sys
from engine.datasets import DatasetStore
store, sha, tag = DatasetStore(sys.argv[1]), sys.argv[2], sys.argv[3]
for j in range(150):
    store.update(sha, name=f"{tag}-{j}", notes=f"{tag} note {j}")
"""


def test_two_processes_updating_one_dataset(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    ds = store.add(lead_csv(0), filename="leads.csv", kind="leads")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store.root), ds.sha, tag],
            cwd=REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert outcomes == [(0, ""), (0, "")]
    meta = json.loads((ds.path / META_FILE).read_text())
    tag, j = meta["name"].split("-")
    assert meta["notes"] == f"{tag} note {j}"  # both fields from the same update
    assert leftovers(store) == []


def test_a_killed_trainings_staging_folder_is_swept_and_a_live_ones_never(tmp_path):
    """Two `engine train` processes stage their runs side by side; one is killed with SIGKILL. Every listing from
    then on removes the dead one's staging folder and keeps the live one's; the live training then completes and
    its run is listed whole."""
    import os
    import signal

    from support import start_cli_training, wait_for_staging

    from engine.data.demo import demo_leads
    from engine.runs import RunStore

    data = tmp_path / "leads.csv"
    demo_leads(n=300, seed=4).to_csv(data, index=False)
    workspace, runs = tmp_path / "workspace", tmp_path / "workspace" / "runs"
    live = start_cli_training(workspace, data)
    doomed = start_cli_training(workspace, data, meta_epochs=400, meta_patience=400)
    try:
        live_staging, doomed_staging = wait_for_staging(runs, live), wait_for_staging(runs, doomed)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        store = RunStore(runs)
        assert store.list_runs() == [] and store.swept == [doomed_staging.name]
        assert live.poll() is None and live_staging.exists()  # still training: its folder was not touched
        for _ in range(20):  # listings while it trains (as a refreshing page would) never remove it
            RunStore(runs).list_runs()
            assert live_staging.exists() or live.poll() is not None
        assert live.wait(timeout=120) == 0
    finally:
        for proc in (live, doomed):
            if proc.poll() is None:
                proc.kill()
    runs_listed = RunStore(runs).list_runs()
    assert [r.id for r in runs_listed] == [live_staging.name.split("-p")[0].removeprefix(".incomplete-")]
    assert runs_listed[0].complete and not live_staging.exists() and not doomed_staging.exists()
    assert sorted(p.name for p in runs.iterdir()) == [runs_listed[0].id]


def test_a_live_training_is_never_swept_whatever_its_clock_or_age_says(tmp_path, monkeypatch):
    """Liveness is the lock a training holds on its staging folder, never a pid, a start time or a clock: with the
    wall clock stepped (psutil's boot time moved, as an NTP step moves every process's start time), the folder's
    times set decades back and no age floor at all, listings keep a live training's staging folder. Once the
    training is killed outright (SIGKILL), the next listing removes the folder at once (its lock is free)."""
    import os
    import signal

    import psutil
    from support import start_cli_training, wait_for_staging

    from engine.data.demo import demo_leads
    from engine.runs import STAGING_LOCK, RunStore

    data = tmp_path / "leads.csv"
    demo_leads(n=300, seed=4).to_csv(data, index=False)
    workspace, runs = tmp_path / "workspace", tmp_path / "workspace" / "runs"
    proc = start_cli_training(workspace, data, meta_epochs=400, meta_patience=400)
    try:
        staging = wait_for_staging(runs, proc)
        real_boot_time = psutil._pslinux.boot_time
        monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: real_boot_time() + 1.0)
        for _ in range(20):
            os.utime(staging, (1.0, 1.0))
            store = RunStore(runs, sweep_floor=0)
            assert store.list_runs(complete_only=False) == [] and store.swept == []
            assert staging.exists() or proc.poll() is not None
        assert proc.poll() is None, "the training ended before it was killed: give it more epochs"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (staging / STAGING_LOCK).exists()
    store = RunStore(runs)  # the default floor: a lock nobody holds needs none
    assert store.list_runs(complete_only=False) == [] and store.swept == [staging.name]
    assert list(runs.iterdir()) == []


SPEC = {"approach": "stacking", "columns": ["a"], "data_hash": "0" * 64}


def test_what_a_sweep_does_with_each_kind_of_staging_folder(tmp_path):
    """A staging folder whose lock is held (a live training: this process) is kept at any age and publishes whole;
    one whose lock file nobody holds goes at once; one still being made (the newborn name) and one without a lock
    file (named by an older version, with its process start time) are left alone for the age floor, and a lock-less
    one also while a process of the pid in its name runs here."""
    import os

    from engine.runs import NEWBORN_SUFFIX, STAGING_LOCK, BrokenRun, RunStore

    runs = tmp_path / "runs"
    store = RunStore(runs)
    live = store.stage_run(SPEC)
    assert live.path.name.endswith(f"-p{os.getpid()}") and (live.path / STAGING_LOCK).exists()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()

    def folder(name: str, lock_file: bool):
        path = runs / f".incomplete-20200101T000000-stacking-{name}"
        path.mkdir()
        if lock_file:
            (path / STAGING_LOCK).touch()
        return path

    unlocked = folder(f"0000aa-p{os.getpid()}", True)
    newborn = folder(f"0000bb-p{os.getpid()}{NEWBORN_SUFFIX}", True)
    old_dead = folder(f"0000cc-p{ended.pid}-t1.000", False)
    old_live = folder(f"0000dd-p{os.getpid()}-t1.000", False)
    first = RunStore(runs)  # the default floor: the fresh ones without a lock to test stay
    assert first.list_runs(complete_only=False) == [] and first.swept == [unlocked.name]
    for path in (live.path, newborn, old_dead, old_live):
        os.utime(path, (1.0, 1.0))  # long ago
    second = RunStore(runs)
    assert second.list_runs(complete_only=False) == []
    assert sorted(second.swept) == sorted([newborn.name, old_dead.name])
    assert live.path.exists() and old_live.exists()

    with pytest.raises(BrokenRun, match="lacks metrics.json, model"):
        store.publish(live)
    live.save_metrics({"metrics": {"roc_auc": {"value": 0.8, "low": 0.7, "high": 0.9}}})
    live.model_dir.mkdir()
    run = store.publish(live)
    assert [r.id for r in RunStore(runs).list_runs()] == [run.id]
    assert not (run.path / STAGING_LOCK).exists() and run._lock is None


def test_a_removed_staging_folder_is_never_made_again_nor_published(tmp_path):
    """A staged run whose folder is removed under it (by hand, or by a sweep on a filesystem whose locks other
    machines do not see) is not written again (FolderGone: a folder made again would hold a run without its spec)
    and not published; one that lost its spec is not published either."""
    import shutil

    from engine.runs import BrokenRun, RunStore
    from engine.storage import FolderGone

    runs = tmp_path / "runs"
    store = RunStore(runs)
    gone = store.stage_run(SPEC)
    shutil.rmtree(gone.path)
    for write in (
        lambda: gone.save_metrics({"metrics": {}}),
        lambda: gone.save_predictions([1], [0], [0.5]),
        lambda: gone.set_label("mine"),
        lambda: gone.save_model(object()),
    ):
        with pytest.raises(FolderGone, match="no longer exists"):
            write()
    assert not gone.path.exists()
    with pytest.raises(BrokenRun, match="is gone"):
        store.publish(gone)
    store.discard(gone)
    specless = store.stage_run(SPEC)
    specless.save_metrics({"metrics": {}})
    specless.model_dir.mkdir()
    (specless.path / "spec.json").unlink()
    with pytest.raises(BrokenRun, match="lacks spec.json"):
        store.publish(specless)
    store.discard(specless)
    assert list(runs.iterdir()) == [] and specless._lock is None


# -- deletes while others work on the same dataset ------------------------------------------------------
def churn(root: str, data: bytes, ops: int, seed: int) -> list[str]:
    """``ops`` random adds, setting changes, reads, listings and deletes of the dataset holding ``data``; returns
    what went wrong: any exception but the store's "no such dataset" (NoSuchDataset, a KeyError), a read that
    saw other bytes or settings, a listing that named the dataset damaged."""
    store, sha, rng = DatasetStore(root), content_hash(data), random.Random(seed)
    wrong: list[str] = []
    for j in range(ops):
        op = rng.choice(("add", "add", "update", "read", "read", "list", "list", "delete"))
        try:
            if op == "add":
                ds = store.add(data, filename="same.csv", kind="leads", notes=f"{seed}-{j}")
                if ds.sha != sha:
                    wrong.append(f"add: sha {ds.sha}")
            elif op == "update":
                store.update(sha, name=f"name {seed}-{j}")
            elif op == "read":
                ds = store.get(sha)
                if ds.meta["bytes"] != len(data) or ds.read_bytes() != data:
                    wrong.append("read: other bytes or settings")
                if j % 10 == 0 and len(ds.load_frame()) != 40:
                    wrong.append("read: a frame of other rows")
            elif op == "list":
                listed = store.list()
                if store.problems:
                    wrong.append(f"list: named damaged {store.problems}")
                if [d.sha for d in listed] not in ([], [sha]):
                    wrong.append(f"list: {[d.sha for d in listed]}")
                for ds in listed:
                    ds.label()
            else:
                if store.delete(sha) != sha:
                    wrong.append("delete: another sha")
        except NoSuchDataset:
            pass  # it was deleted (or not added yet): the store's own "no such dataset"
        except Exception as exc:  # noqa: BLE001 - every other outcome is reported, with its type
            wrong.append(f"{op}: {type(exc).__name__}: {exc}")
    return wrong


def assert_consistent(store: DatasetStore, data: bytes) -> None:
    """The dataset is there whole (listed, its bytes and settings readable), or absent everywhere; nothing left
    half written or half removed."""
    sha = content_hash(data)
    listed = [d.sha for d in store.list()]
    assert store.problems == {} and listed in ([], [sha])
    if listed:
        ds = store.get(sha)
        assert ds.read_bytes() == data and ds.meta["kind"] == "leads" and ds.meta["file"] == "data.csv"
        assert sorted(p.name for p in ds.path.iterdir()) == ["data.csv", META_FILE]
    else:
        with pytest.raises(NoSuchDataset, match="No dataset"):
            store.get(sha)
        assert not (store.root / sha).exists()
    assert leftovers(store) == []


def test_six_threads_adding_reading_listing_and_deleting_one_dataset(tmp_path):
    root, data = tmp_path / "datasets", lead_csv(7)
    DatasetStore(root)
    with ThreadPoolExecutor(6) as pool:
        wrong = [w for ws in pool.map(lambda t: churn(str(root), data, 80, t), range(6)) for w in ws]
    assert wrong == []
    store = DatasetStore(root)
    assert_consistent(store, data)
    store.add(data, filename="same.csv", kind="leads")  # the store still works: add, read, delete, delete
    assert_consistent(store, data)
    assert store.delete(content_hash(data)) == content_hash(data)
    with pytest.raises(NoSuchDataset):
        store.delete(content_hash(data))
    assert_consistent(store, data)


def race(*calls) -> list:
    """Run the calls at once (one thread each, released together); their results or exceptions, in order."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - returned, for the test to check its type
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_deletes_of_one_dataset_one_deletes_the_other_says_no_such_dataset(tmp_path):
    store, data = DatasetStore(tmp_path / "datasets"), lead_csv(1)
    for _ in range(25):
        sha = store.add(data, filename="same.csv", kind="leads").sha
        outcomes = race(lambda sha=sha: store.delete(sha), lambda sha=sha: DatasetStore(store.root).delete(sha[:10]))
        assert sorted(type(o).__name__ for o in outcomes) == ["NoSuchDataset", "str"], outcomes
        assert sha in outcomes and "No dataset" in str(next(o for o in outcomes if o != sha))
        assert_consistent(store, data)


def test_an_add_racing_a_delete_of_the_same_bytes_ends_whole_or_absent(tmp_path):
    store, data = DatasetStore(tmp_path / "datasets"), lead_csv(2)
    for i in range(30):
        if i % 3:  # mostly stored before the race, sometimes not (the delete finds nothing)
            store.add(data, filename="same.csv", kind="leads")
        added, deleted = race(
            lambda i=i: DatasetStore(store.root).add(data, filename="same.csv", kind="leads", notes=f"round {i}"),
            lambda: store.delete(content_hash(data)),
        )
        assert added.sha == content_hash(data), added  # an add never fails
        assert deleted == content_hash(data) or isinstance(deleted, NoSuchDataset), deleted
        assert_consistent(store, data)
        if store.list():
            assert store.get(added.sha).meta["notes"] == f"round {i}"  # the add came last: its settings kept
            store.delete(added.sha)


CHURN = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from tests.stores.test_store_concurrency import churn, lead_csv
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[5]) and time.monotonic() < deadline:  # both start together, imports done
    time.sleep(0.005)
print(json.dumps(churn(sys.argv[2], lead_csv(7), int(sys.argv[3]), int(sys.argv[4]))))
"""


def test_two_processes_adding_reading_listing_and_deleting_one_dataset(tmp_path):
    root, data, go = tmp_path / "datasets", lead_csv(7), tmp_path / "go"
    DatasetStore(root)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHURN, str(REPO_ROOT), str(root), "250", str(seed), str(go)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (11, 12)
    ]
    go.touch()
    outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [(code, err) for code, _, err in outcomes] == [(0, ""), (0, "")], outcomes
    assert [json.loads(out) for _, out, _ in outcomes] == [[], []]
    assert_consistent(DatasetStore(root), data)


def test_an_add_racing_a_delete_still_checks_the_upload(tmp_path, monkeypatch):
    """The first look sees the dataset (so no upload check), then it is deleted before the lock: the add must check
    the bytes like any new upload instead of storing them unchecked."""
    from engine.datasets import DatasetStore

    store = DatasetStore(tmp_path / "datasets")
    bad = b"\x89PNG\r\n\x1a\n not a table"  # a picture sent as a lead table
    real = store._stored_meta
    calls = []

    def first_says_it_exists(folder):
        calls.append(folder)
        return {"kind": "leads", "name": "gone"} if len(calls) == 1 else real(folder)

    monkeypatch.setattr(store, "_stored_meta", first_says_it_exists)
    with pytest.raises(Exception, match="(?i)png|image|picture"):
        store.add(bad, filename="leads.csv", kind="leads")
    assert len(calls) == 2 and not any((tmp_path / "datasets").glob("[0-9a-f]*"))
