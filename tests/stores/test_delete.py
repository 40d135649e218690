"""Deleting stored datasets and runs: DatasetStore.delete and `python -m engine delete run|dataset ID [--yes]`
(asks on a terminal, refuses without one), the only way anything stored goes away."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import demo_leads_csv

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, stdin: str = "", env_ws: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAB_WORKSPACE": str(env_ws)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def cli_on_terminal(args: list[str], answer: str, env_ws: Path) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout, answer its question, return (exit code, output)."""
    env = {**os.environ, "CLAB_WORKSPACE": str(env_ws)}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO_ROOT
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(master, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, out.decode(errors="replace")


def a_run(store, approach: str = "stacking"):
    run = store.new_run(
        {"approach": approach, "input_kind": "leads", "columns": ["a"], "dataset": "tiny", "data_hash": "0" * 64}
    )
    run.save_metrics({"metrics": {"roc_auc": {"value": 0.7, "low": 0.6, "high": 0.8}}})
    return run


def test_dataset_store_delete_removes_only_that_dataset(workspace):
    from engine.datasets import DatasetStore

    store = DatasetStore()
    a = store.add(demo_leads_csv(n=50), filename="a.csv", kind="leads")
    b = store.add(b"Lead Origin,Converted\nAPI,1\nAPI,0\n", filename="b.csv", kind="leads")
    assert store.delete(a.sha[:10]) == a.sha  # a unique prefix names it
    assert [d.sha for d in store.list()] == [b.sha]
    assert not a.path.exists() and b.raw_path.exists()
    with pytest.raises(KeyError):
        store.delete(a.sha)  # already gone
    with pytest.raises(KeyError):
        store.delete("../../etc")  # not a dataset id
    # a damaged dataset can be deleted too
    (b.path / "meta.json").write_text("{broken")
    assert store.broken()
    store.delete(b.sha)
    assert store.list() == [] and not store.broken()


def test_dataset_purpose_is_kept_and_filtered(workspace):
    from engine.datasets import DatasetStore

    store = DatasetStore()
    train = store.add(demo_leads_csv(n=50), filename="train.csv", kind="leads")
    score = store.add(b"Lead Origin,Total Visits\nAPI,3\n", filename="new.csv", kind="leads", purpose="scoring")
    assert train.purpose == "training" and score.purpose == "scoring"
    assert [d.sha for d in store.list(kind="leads", purpose="training")] == [train.sha]
    assert [d.sha for d in store.list(purpose="scoring")] == [score.sha]
    assert "leads to score" in score.label()
    with pytest.raises(ValueError, match="purpose"):
        store.update(score.sha, purpose="maybe")


def test_cli_delete_dataset_needs_a_terminal_or_yes(workspace):
    from engine.datasets import DatasetStore

    ds = DatasetStore().add(demo_leads_csv(n=50), filename="mine.csv", kind="leads", name="Mine")
    refused = cli("delete", "dataset", ds.sha[:12], env_ws=workspace)
    assert refused.returncode != 0
    assert "not a terminal" in refused.stderr and "--yes" in refused.stderr
    assert ds.raw_path.exists(), "nothing is deleted without a confirmation"
    done = cli("delete", "dataset", ds.sha[:12], "--yes", env_ws=workspace)
    assert done.returncode == 0, done.stderr
    assert "Deleted dataset 'Mine'" in done.stdout
    assert not ds.path.exists()
    missing = cli("delete", "dataset", ds.sha[:12], "--yes", env_ws=workspace)
    assert missing.returncode == 2 and "No dataset" in missing.stderr


def test_cli_delete_run_asks_on_a_terminal(workspace):
    from engine.runs import RunStore

    store = RunStore()
    keep, gone = a_run(store), a_run(store)
    code, out = cli_on_terminal(["delete", "run", keep.id], "n", workspace)
    assert "Delete run " + keep.id in out and "[y/N]" in out
    assert code == 1 and "Nothing deleted" in out
    assert keep.path.exists()
    code, out = cli_on_terminal(["delete", "run", gone.id], "y", workspace)
    assert code == 0 and f"Deleted run {gone.id}" in out
    assert not gone.path.exists() and keep.path.exists()
    bad = cli("delete", "run", "../etc", "--yes", env_ws=workspace)
    assert bad.returncode == 2 and "No run" in bad.stderr
