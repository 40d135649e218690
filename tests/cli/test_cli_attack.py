"""An attacker's pass over the command line's output flags: ``--out``, ``--report`` and ``--json`` never write
into the workspace (its runs, live runs, scored lists and jobs are the engine's own files), and ``join --json``
is checked like every other output before any work (never over the user's lead table, calls or joined file).
Each case is one line and exit code 2, before anything is read, and every file is left as it was."""

import json

import pytest

from engine.cli import main
from engine.data.demo import demo_leads
from engine.storage import write_json


@pytest.fixture
def files(workspace, tmp_path):
    """A lead table, calls that join it, and a live.json in the workspace (what a stray --out would replace)."""
    leads = demo_leads(n=30, seed=3)
    leads.insert(0, "Lead ID", [f"L{i}" for i in range(len(leads))])
    (tmp_path / "leads.csv").write_text(leads.to_csv(index=False))
    calls = [{"transcript": "we talked about the budget", "label": 1, "metadata": {"lead_id": "L1"}}]
    (tmp_path / "calls.jsonl").write_text("\n".join(json.dumps(c) for c in calls))
    write_json(workspace / "live.json", {"format": 2, "version": 0, "live": {}})
    (workspace / "runs").mkdir(parents=True, exist_ok=True)
    return tmp_path


def _snapshot(*folders):
    return {f: f.read_bytes() for folder in folders for f in folder.rglob("*") if f.is_file()}


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "--data", "{t}/leads.csv", "--out", "{w}/live.json"],
        ["score", "--data", "{t}/leads.csv", "--out", "{t}/ranked.csv", "--report", "{w}/runs/x.json"],
        ["score", "--data", "{t}/leads.csv", "--out", "{w}/../workspace/scored.csv"],
        ["audit", "leads", "--data", "{t}/leads.csv", "--json", "{w}/live.json"],
        ["outcomes", "--data", "{t}/leads.csv", "--json", "{w}/live.json"],
        ["join", "--leads", "{t}/leads.csv", "--calls", "{t}/calls.jsonl", "--out", "{w}/joined.csv"],
        ["join", "--leads", "{t}/leads.csv", "--calls", "{t}/calls.jsonl", "--out", "{t}/j.csv", "--json", "{w}/r"],
    ],
)
def test_no_output_flag_writes_into_the_workspace(workspace, files, capsys, argv):
    argv = [a.format(t=files, w=workspace) for a in argv]
    before = _snapshot(files, workspace)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "workspace" in err and "Fix:" in err, err
    assert _snapshot(files, workspace) == before


@pytest.mark.parametrize("target", ["leads.csv", "calls.jsonl", "j.csv"])
def test_join_json_never_replaces_the_tables_it_joins(workspace, files, capsys, target):
    before = _snapshot(files)
    argv = ["join", "--leads", f"{files}/leads.csv", "--calls", f"{files}/calls.jsonl", "--id", "Lead ID"]
    assert main([*argv, "--out", f"{files}/j.csv", "--json", f"{files}/./{target}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --json") and "same file" in err and len(err.splitlines()) == 1
    assert _snapshot(files) == before and not (files / "j.csv").exists()


def test_join_json_that_is_a_folder_is_one_line_before_any_work(workspace, files, capsys):
    argv = ["join", "--leads", f"{files}/leads.csv", "--calls", f"{files}/calls.jsonl", "--id", "Lead ID"]
    assert main([*argv, "--out", f"{files}/j.csv", "--json", str(files)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a folder" in err and len(err.splitlines()) == 1 and not (files / "j.csv").exists()


def test_join_json_is_written_when_it_names_a_new_file(workspace, files):
    argv = ["join", "--leads", f"{files}/leads.csv", "--calls", f"{files}/calls.jsonl", "--id", "Lead ID"]
    assert main([*argv, "--out", f"{files}/j.csv", "--json", f"{files}/report.json"]) == 0
    assert (files / "j.csv").is_file() and isinstance(json.loads((files / "report.json").read_text()), dict)


@pytest.mark.parametrize("where", ["inside", "file"])
def test_train_out_is_refused_before_any_training(workspace, files, capsys, where):
    """``train --out FOLDER`` wrote the new run's metrics.json into any folder, after the training: a run folder
    of the store (replacing that run's metrics) or over a file (a traceback after minutes of training)."""
    (workspace / "runs" / "20990101T000000-stacking-abcdef").mkdir(parents=True)
    out = workspace / "runs" / "20990101T000000-stacking-abcdef" if where == "inside" else files / "leads.csv"
    before = _snapshot(files, workspace)
    assert main(["train", "leads", "--data", f"{files}/leads.csv", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {out}") and "Fix:" in err and len(err.splitlines()) == 1, err
    assert _snapshot(files, workspace) == before
    assert sorted(p.name for p in (workspace / "runs").iterdir()) == ["20990101T000000-stacking-abcdef"]
