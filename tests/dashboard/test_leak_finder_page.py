"""The Data page runs the leak finder on a lead table and proposes the flagged columns; one click excludes them."""

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from engine.data.demo import demo_leads
from engine.datasets import DatasetStore

PAGE = str(Path(__file__).resolve().parents[2] / "dashboard" / "views" / "data.py")


def _with_planted_leak(n: int = 600):
    leads = demo_leads(n=n, seed=2)
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(n) < 0.05, 1 - leads["Converted"], leads["Converted"])
    leads["Call outcome"] = np.where(noisy == 1, "Interested - follow up", "Not reachable")
    return leads


def _until_audited(at: AppTest, timeout: float = 60) -> AppTest:
    """The leak finder runs in the background: rerun the page until its result is drawn."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        words = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
        if "Leak finder" in words:
            return at
        time.sleep(0.5)
        at.run()
    raise AssertionError("the leak finder did not finish")


def test_flagged_columns_are_proposed_and_excluded_only_on_a_click(workspace):
    ds = DatasetStore().add(
        _with_planted_leak().to_csv(index=False).encode(), filename="crm.csv", kind="leads", target="Converted"
    )
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    _until_audited(at.selectbox(key="data_dataset").set_value(ds.sha).run())
    assert not at.exception and not at.error, [e.value for e in at.error]
    words = "\n".join(m.value for m in at.markdown)
    assert "Leak finder" in words and "`Call outcome` (**still used**)" in words
    key = next(m.key for m in at.multiselect if m.key.startswith("exclude_"))
    assert "Call outcome" not in at.multiselect(key=key).value  # never excluded silently
    assert "Call outcome" not in DatasetStore().get(ds.sha).meta["exclude"]
    at.button(key=f"accept_leaks_{ds.sha}").click().run()
    assert not at.exception
    assert "Call outcome" in at.multiselect(key=key).value
    assert "Call outcome" in DatasetStore().get(ds.sha).meta["exclude"]  # kept for the Train page
    assert "`Call outcome` (excluded)" in "\n".join(m.value for m in at.markdown)


def test_a_clean_table_flags_nothing(workspace):
    clean = demo_leads(n=600, seed=3).drop(columns=["Tags", "Lead Quality"])  # the demo's post-contact fields
    ds = DatasetStore().add(clean.to_csv(index=False).encode(), filename="clean.csv", kind="leads", target="Converted")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    _until_audited(at.selectbox(key="data_dataset").set_value(ds.sha).run())
    assert not at.exception and not at.error
    assert "Leak finder: no column gives the outcome away" in "\n".join(c.value for c in at.caption)


def test_softer_signs_are_listed_to_check_apart_from_firm_flags(workspace):
    """A post-call field hidden among calendar columns is flagged; a twin of the calendar named like a score
    is only listed to check (its name is never the only evidence)."""
    from engine.data.leak_tables import leak_table

    table = leak_table("bank", n=6000, rate=0.40, leak="numeric", strength=0.81, seed=9)
    table["contact_score"] = table["euribor3m"].round(1)  # named like a CRM score, but the calendar stands in for it
    ds = DatasetStore().add(table.to_csv(index=False).encode(), filename="bank.csv", kind="leads", target="converted")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    _until_audited(at.selectbox(key="data_dataset").set_value(ds.sha).run())
    assert not at.exception and not at.error, [e.value for e in at.error]
    words = "\n".join(m.value for m in at.markdown)
    assert "`duration` (**still used**): likely filled in after the outcome: no other column stands in" in words
    assert "**Check how these are filled in**" in words
    line = next(w for w in words.splitlines() if w.startswith("- `contact_score`"))
    assert "its name suggests it is filled in after contact ('score')" in line
    assert at.button(key=f"accept_leaks_{ds.sha}").label == "Exclude duration"  # the softer list gets no button


def test_x_educations_presets_are_offered_only_on_a_table_with_its_columns(workspace):
    """'Usual' and 'Strict' leave out X Education's post-contact fields: on another export they would leave out
    nothing and read as protection, so the page offers 'None' and the leak finder's columns there."""
    from engine.data.leak_tables import leak_table

    other = leak_table("bank", n=600, seed=4)
    ds_other = DatasetStore().add(other.to_csv(index=False).encode(), filename="bank.csv", kind="leads")
    ds_x = DatasetStore().add(demo_leads(n=300, seed=3).to_csv(index=False).encode(), filename="x.csv", kind="leads")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.selectbox(key="data_dataset").set_value(ds_other.sha).run()
    assert not at.exception and at.radio(key=f"policy_{ds_other.sha}").options == [
        "None (keep every column; exclude the leak finder's columns below)"
    ]
    at.selectbox(key="data_dataset").set_value(ds_x.sha).run()
    assert len(at.radio(key=f"policy_{ds_x.sha}").options) == 3


def test_the_leak_finders_numbers_are_computed_once_per_file_and_stay(workspace, monkeypatch):
    """The numbers of a later render are those of the first, even after other computations pushed the finished
    audit out of the page's background tasks: fixed settings, kept by the file's sha256 and outcome column."""
    import engine.audit as audit
    from dashboard.components import tasks

    calls, real = [], audit.audit_leads
    monkeypatch.setattr(audit, "audit_leads", lambda *a, **k: calls.append(k) or real(*a, **k))
    ds = DatasetStore().add(
        _with_planted_leak(n=700).to_csv(index=False).encode(), filename="crm7.csv", kind="leads", target="Converted"
    )
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    _until_audited(at.selectbox(key="data_dataset").set_value(ds.sha).run())

    def findings() -> list[str]:
        return [m.value for m in at.markdown if m.value.startswith("- `")]

    first = findings()
    assert first and "Call outcome" in first[0]
    for i in range(tasks.MAX_TASKS + 1):  # other pages' work, each finished
        task = tasks.start(("other work", i), lambda t, i=i: i, 1, "other", exclusive=False)
        assert tasks.wait(task, 10)
    assert not any(k[0] == "leak audit" for k in tasks._tasks)
    at.run()
    assert findings() == first
    assert len(calls) == 1 and calls[0]["seed"] == 0 and calls[0]["max_rows"] == 50_000, calls
