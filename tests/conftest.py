import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
LEADS_CSV = Path(os.environ.get("CLAB_LEADS_CSV", REPO_ROOT.parent / "shared" / "data" / "leads" / "Leads.csv"))


@pytest.fixture
def leads_csv() -> Path:
    """The real X Education lead export; it may not be redistributed, so it is read from ../shared."""
    if not LEADS_CSV.exists():
        pytest.skip(f"real lead data not found at {LEADS_CSV} (set CLAB_LEADS_CSV to its path to run this test)")
    return LEADS_CSV


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A fresh, empty workspace for runs, datasets and jobs."""
    root = tmp_path / "workspace"
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    return root


@pytest.fixture(scope="session")
def small_stack_run(tmp_path_factory):
    """(run, leads): one small stack (support.SMALL_STACK) trained once per session on 400 demo leads (seed 5).
    Tests only read it; to damage it or add runs beside it, copy it first (support.copy_run, support.store_with)."""
    from support import SMALL_STACK

    from engine import pipeline
    from engine.data.demo import demo_leads
    from engine.runs import RunStore

    store = RunStore(tmp_path_factory.mktemp("small_stack") / "runs")
    leads = demo_leads(n=400, seed=5)
    return pipeline.train_leads(leads, params=SMALL_STACK, dataset_name="demo leads", store=store), leads


@pytest.fixture(scope="session")
def stored_workspace(tmp_path_factory) -> Path:
    """A workspace with datasets and two finished stacking runs trained by real jobs (tests/dashboard_support.py),
    built once per session in pytest's temporary folder (cleaned up by pytest). Set CLAB_TEST_STORED_WORKSPACE to a
    workspace built before to reuse it while debugging."""
    from dashboard_support import build_stored_workspace

    reuse = os.environ.get("CLAB_TEST_STORED_WORKSPACE")
    if reuse and (Path(reuse) / "runs").exists():
        return Path(reuse)
    return build_stored_workspace(tmp_path_factory.mktemp("dashboard") / "workspace")


@pytest.fixture
def stored(stored_workspace, monkeypatch) -> Path:
    """The stored workspace (shared by the session) as CLAB_WORKSPACE."""
    monkeypatch.setenv("CLAB_WORKSPACE", str(stored_workspace))
    return stored_workspace


@pytest.fixture
def throttle(monkeypatch):
    """The dashboard's sign-in back-off, fresh and on a FakeClock (``throttle.clock``): waits are recorded in
    ``throttle.clock.slept`` instead of spent. It replaces the process-wide one for the test."""
    from dashboard_support import FakeClock

    from dashboard.components import login

    clock = FakeClock()
    fresh = login.LoginThrottle(clock=clock, sleep=clock.sleep)
    monkeypatch.setattr(login, "THROTTLE", fresh)
    return fresh


@pytest.fixture(autouse=True)
def _no_sign_in_back_off_between_tests():
    """The dashboard's process-wide sign-in back-off starts empty in every test that uses it."""
    import sys

    yield
    login = sys.modules.get("dashboard.components.login")
    if login is not None:
        login.THROTTLE.reset()
