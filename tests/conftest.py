import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster_addresses():
    """A local Ray cluster (``ray start --head``, 2 CPUs, no GPU) for the module's tests: ``{"dashboard":
    "http://127.0.0.1:PORT"`` (the Job Submission API's address), ``"gcs": "127.0.0.1:PORT"`` (what ``ray.init``
    takes: other engineers' clusters may run on the same machine, so no test relies on ``auto``)}."""
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip("ray is not installed in this venv (pip install 'ray[default]==2.60.0')")
    temp = Path("/tmp") / f"clab-ray-{os.getpid()}"  # Ray's socket paths must stay short
    port, dash = _free_port(), _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": ""}
    cmd = [
        str(ray_bin),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        "--include-dashboard=true",
        "--num-cpus=2",
        "--num-gpus=0",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    # --block keeps `ray start` in the foreground as the parent of the cluster's processes, in a session of its own:
    # the teardown ends that process group by its id, never every Ray process of the machine (`ray stop` would end
    # other people's clusters too)
    log = open(temp.with_suffix(".log"), "w+b")  # noqa: SIM115 - closed in the teardown
    head = subprocess.Popen([*cmd, "--block"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=2):
                break
        except OSError:
            pass
        if head.poll() is not None or time.monotonic() > deadline:
            _end_group(head)
            log.seek(0)
            pytest.fail(f"ray start failed:\n{log.read().decode(errors='replace')}")
        time.sleep(0.5)
    try:
        yield {"dashboard": address, "gcs": f"127.0.0.1:{port}"}
    finally:
        _end_group(head)
        log.close()
        temp.with_suffix(".log").unlink(missing_ok=True)
        shutil.rmtree(temp, ignore_errors=True)


def _end_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """End a process started in a session of its own and everything in its process group (SIGTERM, then SIGKILL)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass
    try:  # what the head started and is still running in its group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def ray_cluster(ray_cluster_addresses) -> str:
    """The local Ray cluster's dashboard address (what the job runner's Ray executor submits to)."""
    return ray_cluster_addresses["dashboard"]
