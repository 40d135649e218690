"""`deploy`, `deploy --rollback`, `live`, and `score` using the live run (engine/cli_live.py)."""

import pytest
from support import copy_run

from engine.cli import main
from engine.live import LiveStore

OLD, NEW = "20260101T120000-stacking-aaaaaa", "20260102T120000-stacking-bbbbbb"


@pytest.fixture
def two_runs(workspace, small_stack_run, tmp_path):
    """A workspace with two copies of the small stack run, and a lead file to score."""
    run, leads = small_stack_run
    for run_id in (OLD, NEW):
        copy_run(run.path, workspace / "runs", run_id)
    data = tmp_path / "leads.csv"
    leads.head(20).drop(columns=["Converted"], errors="ignore").to_csv(data, index=False)
    return workspace, data


def test_score_uses_the_live_run_not_the_newest(two_runs, capsys):
    workspace, data = two_runs
    assert main(["score", "--data", str(data), "--out", str(data.with_name("a.csv"))]) == 0
    captured = capsys.readouterr()
    assert "no live leads run is set" in captured.err and f"with run {NEW}" in captured.out
    assert main(["deploy", OLD, "--note", "the one reps trust"]) == 0
    assert f"live leads run of family 'demo leads' (version 1): {OLD}" in capsys.readouterr().out
    assert main(["score", "--data", str(data), "--out", str(data.with_name("b.csv"))]) == 0
    captured = capsys.readouterr()
    assert (
        f"scored with the live leads run {OLD} of family 'demo leads' (version 1)" in captured.err
        and f"with run {OLD}" in captured.out
    )
    assert main(["score", "--run", "latest", "--data", str(data), "--out", str(data.with_name("c.csv"))]) == 0
    assert f"with run {NEW}" in capsys.readouterr().out


def test_deploy_rollback_and_live_listing(two_runs, capsys):
    workspace, _ = two_runs
    assert main(["deploy", "--rollback"]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert main(["deploy", OLD]) == 0 and main(["deploy", NEW, "--kind", "leads"]) == 0
    assert f"instead of {OLD}" in capsys.readouterr().out
    assert main(["deploy", "--rollback", "--kind", "leads", "--note", "oops"]) == 0
    assert LiveStore(workspace).live("leads")["run_id"] == OLD
    capsys.readouterr()
    assert main(["live"]) == 0
    out = capsys.readouterr().out
    assert f"leads, family 'demo leads': {OLD} (stacking on demo leads), version 3" in out and ": oops" in out
    assert "transcripts: no live run" in out and "history (3 changes" in out
    assert "v3 " in out and f"rollback leads [demo leads] {OLD} (was {NEW})" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["deploy", "../../etc/passwd"], "a run id looks like"),
        (["deploy", "20300101T000000-stacking-ffffff"], "No run"),
        (["deploy", OLD, "--kind", "transcripts"], "scores leads, not transcripts"),
        (["deploy", OLD, "--kind", "pets"], "--kind takes leads or transcripts"),
        (["deploy"], "deploy needs a RUN_ID"),
    ],
)
def test_hostile_deploys_are_one_line_errors(two_runs, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (two_runs[0] / "live.json").exists()


def test_a_live_run_that_no_longer_loads_is_an_error_not_a_fall_back(two_runs, capsys):
    workspace, data = two_runs
    assert main(["deploy", OLD]) == 0
    for f in (workspace / "runs" / OLD / "model").iterdir():
        if f.is_file():
            f.write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["score", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"the live leads run {OLD} cannot be used" in err and "deploy --rollback" in err
    assert len(err.strip().splitlines()) == 1


def test_a_damaged_live_file_is_refused_by_score_and_live(two_runs, capsys):
    workspace, data = two_runs
    (workspace / "live.json").write_text("{half")
    assert main(["score", "--data", str(data)]) == 2
    assert "live.json is not valid JSON" in capsys.readouterr().err
    assert main(["live"]) == 2
    assert "Fix: move live.json aside" in capsys.readouterr().err
    assert main(["score", "--run", "live", "--data", str(data)]) == 2
    (workspace / "live.json").unlink()
    capsys.readouterr()
    assert main(["score", "--run", "live", "--data", str(data)]) == 2
    assert "no live leads run is set" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["model", "spec"])
def test_deploying_a_damaged_run_is_a_one_line_error_and_changes_nothing(two_runs, capsys, damage):
    workspace, _ = two_runs
    assert main(["deploy", OLD]) == 0
    folder = workspace / "runs" / NEW
    if damage == "model":
        for f in (folder / "model").iterdir():
            if f.is_file():
                f.write_bytes(b"garbage")
    else:
        (folder / "spec.json").write_text('{"input_kind": "leads", "approach": 7}')
    capsys.readouterr()
    assert main(["deploy", NEW]) == 2
    err = capsys.readouterr().err
    assert NEW in err and len(err.strip().splitlines()) == 1
    assert LiveStore(workspace).live("leads")["run_id"] == OLD and len(LiveStore(workspace).history()) == 1


def _second_family(workspace, small_stack_run, run_id="20260103T120000-stacking-cccccc", dataset="crm b"):
    import json

    folder = copy_run(small_stack_run[0].path, workspace / "runs", run_id)
    spec = json.loads((folder / "spec.json").read_text())
    (folder / "spec.json").write_text(json.dumps({**spec, "dataset": dataset}))
    return run_id


def test_score_and_rollback_with_two_families_live(two_runs, small_stack_run, capsys):
    workspace, data = two_runs
    other = _second_family(workspace, small_stack_run)
    assert main(["deploy", OLD]) == 0 and main(["deploy", other]) == 0 and main(["deploy", NEW]) == 0
    capsys.readouterr()
    out = str(data.with_name("a.csv"))
    assert main(["score", "--data", str(data), "--out", out]) == 2  # two families live: which one is said
    err = capsys.readouterr().err
    assert "2 dataset families" in err and "'crm b', 'demo leads'" in err and "--family NAME" in err
    assert main(["score", "--data", str(data), "--out", out, "--family", "crm b"]) == 0
    captured = capsys.readouterr()
    assert f"live leads run {other} of family 'crm b'" in captured.err and f"with run {other}" in captured.out
    assert main(["score", "--run", "live", "--data", str(data), "--out", out, "--family", " demo leads "]) == 0
    assert f"with run {NEW}" in capsys.readouterr().out
    assert main(["deploy", "--rollback", "--kind", "leads"]) == 2
    assert "--family NAME" in capsys.readouterr().err
    assert main(["deploy", "--rollback", "--kind", "leads", "--family", "demo leads"]) == 0
    assert LiveStore(workspace).live("leads", "demo leads")["run_id"] == OLD
    assert LiveStore(workspace).live("leads", "crm b")["run_id"] == other
    assert main(["live"]) == 0
    listing = capsys.readouterr().out
    assert f"leads, family 'crm b': {other}" in listing and f"leads, family 'demo leads': {OLD}" in listing
    # a challenger of another dataset replaces a family's champion when told to
    assert main(["deploy", NEW, "--family", "crm b", "--note", "beat it"]) == 0
    assert f"live leads run of family 'crm b' (version 5): {NEW}" in capsys.readouterr().out
    assert LiveStore(workspace).live("leads", "crm b")["run_id"] == NEW


@pytest.mark.parametrize(
    "family, message",
    [
        ("crm z", "no live leads run of the dataset family 'crm z'; live leads families: 'crm b', 'demo leads'"),
        ("", "--family is empty"),
        ("x" * 10_000, "--family is 10,000 characters long"),
        ("demo\tleads", "--family holds control characters"),
        ("calls", "that family has a live transcripts run"),
    ],
)
def test_hostile_family_flags_are_one_line_errors(two_runs, small_stack_run, capsys, family, message):
    workspace, data = two_runs
    other = _second_family(workspace, small_stack_run)
    assert main(["deploy", OLD]) == 0 and main(["deploy", other]) == 0
    if family == "calls":  # a family that only the other input kind has live
        import json

        state = json.loads((workspace / "live.json").read_text())
        entry = {"run_id": "20260109T120000-embeddings-ffffff", "family": "calls", "version": 9}
        state["live"]["transcripts"] = {"calls": entry}
        (workspace / "live.json").write_text(json.dumps(state))
    capsys.readouterr()
    before = (workspace / "live.json").read_text()
    for argv in (
        ["score", "--data", str(data), "--family", family],
        ["deploy", "--rollback", "--kind", "leads", "--family", family],
        ["retrain", "--live", "--family", family, "--no-wait"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and len(err) < 600
    assert (workspace / "live.json").read_text() == before
    assert main(["deploy", OLD, "--family", "crm z"]) == 2  # a family is never made up by a typing slip
    assert "no live leads run of the dataset family 'crm z'" in capsys.readouterr().err
    assert main(["score", "--run", OLD, "--data", str(data), "--family", "crm b"]) == 2
    assert "use it with --run live" in capsys.readouterr().err
