"""The dataset and run stores under concurrent writers: threads of one dashboard server, and separate processes
(trainings, one of them killed outright)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from engine.datasets import META_FILE, DatasetStore, content_hash
from tests.conftest import REPO_ROOT


def lead_csv(round_: int) -> bytes:
    rows = "".join(f"{i},{'ab'[i % 2]}{round_},{i % 2}\n" for i in range(40))
    return f"Visits,Source,Converted\n{rows}".encode()


def leftovers(store: DatasetStore) -> list[str]:
    """Temporary files left in the store (a writer that lost its file, or one that crashed half way)."""
    return [p.name for p in store.root.rglob("*.tmp")]


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
