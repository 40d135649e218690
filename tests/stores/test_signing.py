"""Signed model pickles (engine.signing): a pickle planted in a run's own model folder, or changed after the engine
wrote it, is never unpickled; a run stored before signing loads again only after `trust RUN_ID`; the key is made
once even by several processes at once, and refused inside the workspace or when damaged."""

import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from support import PlantedPickle, copy_run

from engine.approaches.registry import load_approach
from engine.cli import main
from engine.runs import RunStore
from engine.signing import KEY_ENV, SUFFIX, UnsignedFile, dump_signed, load_pickle, signing_key, verified_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(workspace, small_stack_run):
    src, _ = small_stack_run
    return RunStore().get(copy_run(src.path, RunStore().root).name)


def test_the_engine_signs_every_pickle_it_stores_and_loads_them(run, small_stack_run):
    _, leads = small_stack_run
    pickles = sorted(run.model_dir.glob("*.joblib"))
    assert len(pickles) >= 2
    for p in pickles:
        assert p.with_name(p.name + SUFFIX).is_file()
        verified_bytes(p)  # matches
    proba = load_approach(run.model_dir).predict_proba(leads.drop(columns="Converted").iloc[:5])
    assert np.isfinite(proba).all()


def test_a_pickle_planted_in_a_runs_own_folder_never_runs(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    target = run.model_dir / "features.joblib"
    joblib.dump(PlantedPickle(marker), target)  # the attacker replaces the engine's file; the old .sig stays
    with pytest.raises(UnsignedFile, match="does not match its signature"):
        load_pickle(run.model_dir, "features.joblib")
    # a forged signature (random hex) does not help, nor does removing the signature
    (run.model_dir / ("features.joblib" + SUFFIX)).write_text("ab" * 32)
    with pytest.raises(UnsignedFile, match="does not match"):
        load_pickle(run.model_dir, "features.joblib")
    (run.model_dir / ("features.joblib" + SUFFIX)).unlink()
    with pytest.raises(UnsignedFile, match="trust RUN_ID"):
        load_pickle(run.model_dir, "features.joblib")
    leads = tmp_path / "leads.csv"
    leads.write_text("Lead Origin,TotalVisits\nAPI,3\n")
    assert main(["score", "--run", run.id, "--data", str(leads), "--out", str(tmp_path / "out.csv")]) == 2
    assert "features.joblib" in capsys.readouterr().err
    assert not marker.exists()  # nothing planted ran


def test_a_run_stored_before_signing_loads_after_trust(run, monkeypatch, capsys):
    for sig in run.model_dir.glob("*" + SUFFIX):
        sig.unlink()  # as a run stored before this version has them
    with pytest.raises(UnsignedFile, match="trust RUN_ID"):
        load_approach(run.model_dir)
    # without a terminal and without --yes nothing is signed
    monkeypatch.setattr(sys, "stdin", None)
    assert main(["trust", run.id]) == 2
    assert "not signed" in capsys.readouterr().err and not list(run.model_dir.glob("*" + SUFFIX))
    assert main(["trust", run.id, "--yes"]) == 0
    assert "Signed" in capsys.readouterr().out
    load_approach(run.model_dir)
    assert main(["trust", run.id, "--yes"]) == 0  # again: nothing to do
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["../outside", "/etc", "20260101T120000-stacking-zzzzzz", "x\0y", "a" * 5000])
def test_trust_refuses_ids_that_name_no_run_of_the_store(workspace, bad, capsys):
    assert main(["trust", bad, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.strip() and "Traceback" not in err


def test_trust_refuses_a_model_folder_with_a_planted_link(run, tmp_path, capsys):
    (run.model_dir / "extra.joblib").symlink_to(tmp_path / "elsewhere.joblib")
    assert main(["trust", run.id, "--yes"]) == 2
    err = capsys.readouterr().err
    assert "extra.joblib" in err and "Traceback" not in err
    assert not (run.model_dir / ("extra.joblib" + SUFFIX)).exists()


def test_the_key_is_refused_inside_the_workspace_and_when_damaged(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, str(workspace / "signing.key"))
    with pytest.raises(ValueError, match="inside the workspace"):
        signing_key()
    short = tmp_path / "short.key"
    short.write_bytes(b"123")
    monkeypatch.setenv(KEY_ENV, str(short))
    with pytest.raises(ValueError, match="damaged"):
        signing_key()
    folder = tmp_path / "a_folder.key"
    folder.mkdir()
    monkeypatch.setenv(KEY_ENV, str(folder))
    with pytest.raises(ValueError, match="not a plain file"):
        signing_key()


def test_a_file_signed_with_another_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "one.key"))
    dump_signed({"a": 1}, tmp_path / "m" / "x.joblib")
    assert load_pickle(tmp_path / "m", "x.joblib") == {"a": 1}
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "two.key"))
    with pytest.raises(UnsignedFile, match="another key"):
        load_pickle(tmp_path / "m", "x.joblib")


def test_processes_making_the_key_at_once_end_with_one_key(tmp_path):
    path = tmp_path / "cfg" / "signing.key"
    code = "from engine.signing import signing_key; print(signing_key().hex())"
    env = {**os.environ, KEY_ENV: str(path), "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    keys = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4
    assert len(set(keys)) == 1 and len(bytes.fromhex(keys[0])) == 32
    assert path.read_bytes().hex() == keys[0]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_job_process_signs_with_the_callers_key(tmp_path, monkeypatch):
    """The key's path reaches a job's allowlisted environment, so what a job stores the caller can load."""
    from engine.executors import job_env

    monkeypatch.setenv(KEY_ENV, str(tmp_path / "job.key"))
    env = job_env()
    assert env[KEY_ENV] == str(tmp_path / "job.key")
    code = "from engine.signing import dump_signed; dump_signed([1, 2], r'%s')" % (tmp_path / "j" / "y.joblib")
    subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)}, check=True, timeout=120)
    assert load_pickle(tmp_path / "j", "y.joblib") == [1, 2]
