"""A small stored workspace for the dashboard tests, built once per test process.

Two real stacking runs (tiny, fast configuration) on 600 synthetic demo leads, plus the demo
transcripts in the dataset store. Shared by tests/test_dashboard.py and tests/test_browser.py.
"""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FAST_STACK = dict(n_folds=2, rf_n_estimators=30, xgb_n_estimators=40, meta_epochs=10, svc_max_rows=300,
                  explain_background=10, explain_permutations=2)


def demo_leads_csv(n: int = 600) -> bytes:
    try:
        from engine.data.demo import demo_leads
    except ImportError:
        from engine.data.demo_leads import demo_leads
    return demo_leads(n=n, seed=0).to_csv(index=False).encode("utf-8")


@functools.lru_cache(maxsize=1)
def stored_workspace() -> Path:
    """Path of a workspace holding datasets and two finished stacking runs (built on first use)."""
    reuse = os.environ.get("CLAB_TEST_STORED_WORKSPACE")  # debugging: a workspace built before
    if reuse and (Path(reuse) / "runs").exists():
        return Path(reuse)
    root = Path(tempfile.mkdtemp(prefix="clab-dash-")) / "workspace"
    old = os.environ.get("CLAB_WORKSPACE")
    os.environ["CLAB_WORKSPACE"] = str(root)
    try:
        from engine.datasets import DatasetStore
        from engine.pipeline import train_leads
        from engine.runs import RunStore

        store = DatasetStore()
        ds = store.add(demo_leads_csv(), filename="demo_leads_small.csv", kind="leads", name="Demo leads (small)",
                       synthetic=True, target="Converted")
        transcripts = REPO_ROOT / "data" / "demo_transcripts.jsonl"
        if transcripts.exists():
            store.add(transcripts, kind="transcripts", name="Demo transcripts", synthetic=True)
        runs = RunStore()
        train_leads(ds.raw_path, "stacking", params=FAST_STACK, store=runs, dataset_name="Demo leads (small)")
        train_leads(ds.raw_path, "stacking", params={**FAST_STACK, "meta_epochs": 4, "xgb_max_depth": 3},
                    store=runs, dataset_name="Demo leads (small)")
    finally:
        if old is None:
            os.environ.pop("CLAB_WORKSPACE", None)
        else:
            os.environ["CLAB_WORKSPACE"] = old
    return root
