"""The dashboard tests' shared pieces: Streamlit's AppTest on one page, and a small stored workspace.

The workspace (built once per test session by the ``stored_workspace`` fixture of tests/conftest.py) holds two
real stacking runs (the small stack) on 600 synthetic demo leads, trained by the job runner through the CLI, and
the demo transcripts in the dataset store.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from support import SMALL_STACK, demo_leads_csv

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGES = REPO_ROOT / "dashboard" / "views"
APP = REPO_ROOT / "dashboard" / "app.py"
#: The parameters of the stored workspace's two runs (named "fast stack" and "shallower stack").
STORED_RUNS = {"fast stack": SMALL_STACK, "shallower stack": {**SMALL_STACK, "meta_epochs": 3, "xgb_max_depth": 3}}


def run_page(name: str, timeout: float = 180) -> AppTest:
    """Run dashboard/views/<name>.py once under AppTest; it must raise nothing."""
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    """The values of AppTest elements (captions, warnings, markdown...) as one text."""
    return "\n".join(str(e.value) for e in elements)


def build_stored_workspace(root: Path) -> Path:
    """Fill ``root`` with the datasets and the two finished stacking runs of :data:`STORED_RUNS` (trained by two
    real jobs side by side; their job records stay in the workspace's job table)."""
    from engine.datasets import DatasetStore
    from engine.jobs import JobRunner
    from engine.jobspec import TrainSpec

    store = DatasetStore(root / "datasets")
    name = "Demo leads (small)"
    ds = store.add(
        demo_leads_csv(), filename="demo_leads_small.csv", kind="leads", name=name, synthetic=True, target="Converted"
    )
    transcripts = REPO_ROOT / "data" / "demo_transcripts.jsonl"
    if transcripts.exists():
        store.add(transcripts, kind="transcripts", name="Demo transcripts", synthetic=True)
    # the runs come from real training jobs: `python -m engine run-job <folder>` run by the job runner
    runner = JobRunner(root, max_concurrent=2)
    jobs = [
        runner.submit_train(
            TrainSpec("leads", str(ds.raw_path), "stacking", params=params, target="Converted", dataset_name=name),
            name=run_name,
        )
        for run_name, params in STORED_RUNS.items()
    ]
    for job_id in jobs:
        job = runner.wait(job_id, timeout=600, interval=0.5)
        if job.state != "succeeded":
            raise RuntimeError(f"training job {job_id} {job.state}: {job.error}")
    return root


class FakeClock:
    """Time for the sign-in back-off (dashboard/components/login.py) that passes only when slept: the real
    LoginThrottle runs on it, and each wait is recorded instead of spent. ``frozen`` keeps the time still (for
    threads that all start at the same moment)."""

    def __init__(self, start: float = 1000.0, frozen: bool = False) -> None:
        import threading

        self.now, self.frozen, self.slept = start, frozen, []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        with self._lock:
            self.slept.append(seconds)
            if not self.frozen:
                self.now += seconds

    def take(self) -> list[float]:
        """The waits slept since the last call."""
        with self._lock:
            slept, self.slept = self.slept, []
        return slept


def rerun_fragments(at: AppTest) -> AppTest:
    """What the browser does between a page's runs while a fragment has ``run_every``: rerun only the page's
    fragments (not the page), as an automatic rerun; a fragment may then rerun the whole page."""
    from unittest import mock

    import streamlit.testing.v1.local_script_runner as runner

    fragment_ids = list(at._fragment_storage._fragments)
    assert fragment_ids, "the page drew no fragment"
    real = runner.RerunData
    with mock.patch.object(
        runner, "RerunData", lambda *a, **k: real(*a, **k, fragment_id_queue=fragment_ids, is_auto_rerun=True)
    ):
        at.run()
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    """Put a file in the Data page's upload box, as in the browser: the run that starts then only says that the
    file is being read, and ends (what the previous dataset showed goes); the timer's next run reads it."""
    at.file_uploader(key="upload_file").upload(name, data, mime).run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Reading {name}..." in texts(at.info), texts(at.info)
    assert not at.metric and not at.dataframe, "the previous dataset's numbers are still drawn"
    rerun_fragments(at)
    assert not at.exception, [e.value for e in at.exception]
    return at
