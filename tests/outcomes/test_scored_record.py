"""A stored list's record completed after it was stored (engine/scored_lists.py ``ScoredStore.record``): the Score
page's shift verdict, which is computed after the list is stored; the family of a list scored by a run that is not
live; two threads adding to one record at once."""

import threading

import pytest
from support import copy_run

from engine.data.demo import demo_leads
from engine.scored_lists import ScoredStore
from engine.scoring import read_rows, score_frame


@pytest.fixture
def stored(small_stack_run, tmp_path):
    """A workspace with a copy of the small stack (not live) and one list it scored, stored."""
    run, _ = small_stack_run
    copy_run(run.path, tmp_path / "runs")
    leads = demo_leads(n=60, seed=41).drop(columns=["Converted"])
    scored = score_frame(run, read_rows(run, leads), explain=0, source="week.csv")
    store = ScoredStore(tmp_path / "scored")
    return store, store.add(scored, "week.csv")


def test_a_list_of_a_run_that_is_not_live_records_its_family_and_no_version(stored):
    _, meta = stored
    assert meta["live_version"] is None and meta["family"] == "demo leads" and "shift" not in meta


def test_the_shift_verdict_is_added_once_and_nothing_is_overwritten(stored):
    store, meta = stored
    shift = {"verdict": "looks like the training leads", "adversarial_auc": 0.51}
    after = store.record(meta["sha256"], {"shift": shift, "run_id": "someone else's"})
    assert after["shift"] == shift and after["run_id"] == meta["run_id"]  # a key it held is kept as it was
    again = store.record(meta["sha256"], {"shift": {"verdict": "shifted", "adversarial_auc": 0.9}})
    assert again["shift"] == shift
    (listed,) = store.list()
    assert listed["shift"] == shift and listed["rows"] == meta["rows"]


@pytest.mark.parametrize("sha", ["../../etc/passwd", "0" * 64, "", "a" * 10_000])
def test_a_list_that_is_not_stored_is_a_key_error(stored, sha):
    store, _ = stored
    with pytest.raises(KeyError, match="No scored list"):
        store.record(sha, {"shift": {}})


def test_two_threads_adding_to_one_record_both_land(stored):
    store, meta = stored
    barrier = threading.Barrier(8)

    def add(i):
        barrier.wait()
        ScoredStore(store.root).record(meta["sha256"], {f"note_{i}": i})

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (listed,) = store.list()
    assert all(listed[f"note_{i}"] == i for i in range(8))
