"""A small stored workspace for the dashboard tests, built once per test process.

Two real stacking runs (tiny, fast configuration) on 600 synthetic demo leads, trained by the job
runner through the CLI, plus the demo transcripts in the dataset store. Shared by tests/test_dashboard.py and tests/test_browser.py.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FAST_STACK = dict(
    n_folds=2,
    rf_n_estimators=30,
    xgb_n_estimators=40,
    meta_epochs=10,
    svc_max_rows=300,
    explain_background=10,
    explain_permutations=2,
)


def demo_leads_csv(n: int = 600) -> bytes:
    try:
        from engine.data.demo import demo_leads
    except ImportError:
        from engine.data.demo_leads import demo_leads
    return demo_leads(n=n, seed=0).to_csv(index=False).encode("utf-8")


@functools.lru_cache(maxsize=1)
def stored_workspace() -> Path:
    """Path of a workspace holding datasets and two finished stacking runs (built on first use by two
    real training jobs; their job records stay in the workspace's job table)."""
    reuse = os.environ.get("CLAB_TEST_STORED_WORKSPACE")  # debugging: a workspace built before
    if reuse and (Path(reuse) / "runs").exists():
        return Path(reuse)
    root = Path(tempfile.mkdtemp(prefix="clab-dash-")) / "workspace"
    from engine.datasets import DatasetStore
    from engine.jobs import JobRunner

    store = DatasetStore(root / "datasets")
    ds = store.add(
        demo_leads_csv(),
        filename="demo_leads_small.csv",
        kind="leads",
        name="Demo leads (small)",
        synthetic=True,
        target="Converted",
    )
    transcripts = REPO_ROOT / "data" / "demo_transcripts.jsonl"
    if transcripts.exists():
        store.add(transcripts, kind="transcripts", name="Demo transcripts", synthetic=True)
    # the runs come from real training jobs: `python -m engine train leads ...` run by the job runner
    runner = JobRunner(root, max_concurrent=2)
    first = runner.submit_train(
        "leads",
        ds.raw_path,
        "stacking",
        params=FAST_STACK,
        target="Converted",
        dataset_name="Demo leads (small)",
        name="fast stack",
    )
    second = runner.submit_train(
        "leads",
        ds.raw_path,
        "stacking",
        params={**FAST_STACK, "meta_epochs": 4, "xgb_max_depth": 3},
        target="Converted",
        dataset_name="Demo leads (small)",
        name="shallower stack",
    )
    for job_id in (first, second):
        job = runner.wait(job_id, timeout=600, interval=0.5)
        if job.state != "succeeded":
            raise RuntimeError(f"training job {job_id} {job.state}: {job.error}")
    return root
