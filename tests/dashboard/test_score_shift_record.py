"""The Score page keeps the shift check's verdict with the list it stores (the browser walk found lists stored
before their verdict existed, so Monitoring said "not recorded" for lists scored on the page)."""

import time

from dashboard_support import PAGES
from streamlit.testing.v1 import AppTest
from support import copy_run

from engine.data.demo import demo_leads
from engine.scored_lists import ScoredStore


def test_the_stored_list_gets_the_verdict_the_page_shows(small_stack_run, tmp_path, monkeypatch):
    from dashboard.components import tasks

    run, _ = small_stack_run
    root = tmp_path / "workspace"
    copy_run(run.path, root / "runs")
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    at = AppTest.from_file(str(PAGES / "score.py"), default_timeout=120)
    week = demo_leads(n=120, seed=43).drop(columns=["Converted"])
    at.session_state["score_file"] = (week.to_csv(index=False).encode(), "shifted_week.csv")
    at.session_state["score_reasons"] = 0
    at.run()
    store = ScoredStore(root / "scored")
    end = time.monotonic() + 120
    while True:  # the check runs beside the page: the next run of the page draws it and records it
        assert not at.exception, [e.value for e in at.exception]
        (meta,) = [m for m in store.list() if m["source"] == "shifted_week.csv"]
        if "shift" in meta:
            break
        assert time.monotonic() < end, "the shift verdict never reached the stored list"
        for task in [t for k, t in list(tasks._tasks.items()) if k[0] == "shift"]:
            tasks.wait(task, 5)
        at.run()
    shown = "\n".join(e.value for e in [*at.success, *at.warning, *at.info])
    assert meta["shift"]["verdict"] and f"this file **{meta['shift']['verdict']}**" in shown
    assert meta["shift"]["adversarial_auc"] is None or 0 <= meta["shift"]["adversarial_auc"] <= 1
