"""A large training pointed at a Ray cluster: its data and run folders are paths every Ray worker sees.

A Ray job runs in ``CLAB_RAY_CWD`` (the repository) on whichever node Ray picks, not in the caller's folder, so the
job runner hands it absolute paths: the workspace (runs, the job's spec, progress and result) and the training
data, each given relative to the caller's folder. Here the "shared filesystem" is a folder of this machine that
the local Ray cluster's workers see at the same path."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data.demo_leads import demo_leads
from engine.jobs import JobRunner
from engine.jobspec import TrainSpec, read_spec
from engine.runs import RunStore


def _shared(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    demo_leads(300, seed=4).to_csv(shared / "data" / "leads.csv", index=False)
    return shared


def test_relative_paths_become_absolute_before_the_job_runs(tmp_path, monkeypatch):
    """No cluster needed: what the spec and the runner hold once submitted."""
    _shared(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = JobRunner("shared/workspace")
    assert runner.root == tmp_path / "shared" / "workspace"
    job = runner.get(runner.submit_train(TrainSpec("leads", "shared/data/leads.csv", "stacking")))
    assert job.params["data"] == str(tmp_path / "shared" / "data" / "leads.csv")
    assert read_spec(job.folder).data == str(tmp_path / "shared" / "data" / "leads.csv")
    home = runner.get(runner.submit_train(TrainSpec("leads", "~/leads.csv", "stacking")))
    assert home.params["data"] == str(Path.home() / "leads.csv")  # a job gets no shell to expand ~
    given = runner.get(runner.submit_train(TrainSpec("leads", "/mnt/shared/leads.csv", "stacking")))
    assert given.params["data"] == "/mnt/shared/leads.csv"  # an absolute path is the user's: unchanged
    assert runner.get(runner.submit_train(TrainSpec("leads", None, "stacking"))).params["data"] is None


def test_a_training_on_ray_reads_and_writes_the_shared_paths(tmp_path, monkeypatch, ray_cluster):
    from support import SMALL_STACK

    shared = _shared(tmp_path)
    monkeypatch.chdir(tmp_path)  # the caller's folder; the Ray job runs in the repository's
    runner = JobRunner("shared/workspace", executor="ray", ray_address=ray_cluster)
    spec = TrainSpec("leads", "shared/data/leads.csv", "stacking", params=dict(SMALL_STACK), dataset_name="shared")
    ok = runner.submit_train(spec)
    missing = runner.submit_train(TrainSpec("leads", "shared/data/nowhere.csv", "stacking", params=dict(SMALL_STACK)))
    job = runner.wait(ok, timeout=600, interval=1.0)
    assert job.state == "succeeded", runner.log_tail(ok)
    run = RunStore(shared / "workspace" / "runs").get(job.run_id)  # stored in the shared workspace
    assert run.complete and run.settings.dataset == "shared" and run.settings.input_kind == "leads"
    assert (job.folder / "result.json").exists() and job.folder.is_relative_to(shared / "workspace")
    failed = runner.wait(missing, timeout=300, interval=1.0)
    assert failed.state == "failed"
    assert str(shared / "data" / "nowhere.csv") in (failed.error or "") + runner.log_tail(missing)


@pytest.mark.parametrize("bad", [12, ["a.csv"], "", "   "])
def test_a_spec_whose_data_is_not_a_path_is_refused(bad):
    with pytest.raises(ValueError, match="data must be a file path"):
        TrainSpec.from_dict({"input_kind": "leads", "data": bad})
