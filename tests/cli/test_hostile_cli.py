"""Hostile input to the command line and the training pipeline (issue 12, items 1, 2 and 7): run ids naming
folders outside the store, damaged runs, files a run cannot score, unwritable outputs, badly typed parameters,
failed or cancelled trainings, planted LoRA checkpoints. Every case gets one clear line and exit code 2, and
nothing outside the store is unpickled."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import pandas as pd
import pytest
from support import PlantedPickle, copy_run

from engine.approaches.stacking import SMALL_PARAMS
from engine.callbacks import Callback, TrainingCancelled
from engine.cli import build_parser, main
from engine.runs import RunStore

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(small_stack_run, tmp_path_factory):
    """The session's small stacking run (tests/conftest.py) and the lead file it was trained on."""
    run, frame = small_stack_run
    leads = tmp_path_factory.mktemp("hostile_cli") / "leads.csv"
    frame.to_csv(leads, index=False)
    return run.path, leads


@pytest.fixture
def store(workspace, trained):
    """A workspace whose run store holds a copy of the trained run."""
    src, _ = trained
    store = RunStore()
    copy_run(src, store.root)
    return store


def _plant(folder: Path, marker: Path) -> Path:
    """A folder shaped like a run whose model/features.joblib runs code when unpickled."""
    (folder / "model").mkdir(parents=True)
    (folder / "spec.json").write_text(
        json.dumps({"input_kind": "leads", "approach": "stacking", "columns": ["Lead Origin"], "kinds": {}})
    )
    (folder / "metrics.json").write_text(json.dumps({"metrics": {}}))
    (folder / "model" / "approach.json").write_text(json.dumps({"approach": "stacking", "params": {}}))
    joblib.dump(PlantedPickle(marker), folder / "model" / "features.joblib")
    for name in ("logistic_regression.joblib", "random_forest.joblib", "svc.joblib"):
        joblib.dump(PlantedPickle(marker), folder / "model" / name)
    return folder


# -- 1. run ids that name folders outside the store ------------------------------------------------
def test_score_refuses_a_run_id_naming_a_folder_outside_the_store(store, trained, tmp_path, capsys):
    _, leads = trained
    marker = tmp_path / "pwned"
    planted = _plant(tmp_path / "planted", marker)
    # the pickle really would run if loaded
    joblib.load(planted / "model" / "features.joblib")
    assert marker.exists()
    marker.unlink()

    relative = os.path.relpath(planted, store.root)
    assert relative.startswith("..")
    for run_id in (str(planted), relative, str(planted) + "/", f"{store.root}/{relative}"):
        assert main(["score", "--run", run_id, "--data", str(leads)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: No run ") and "a run id looks like" in err and len(err.splitlines()) == 1
        assert not marker.exists()


def test_a_run_folder_that_links_outside_the_store_is_neither_listed_nor_loaded(store, trained, tmp_path, capsys):
    _, leads = trained
    marker = tmp_path / "pwned"
    planted = _plant(tmp_path / "planted", marker)
    link_id = "20991231T235959-stacking-abcdef"  # would be the newest run
    (store.root / link_id).symlink_to(planted, target_is_directory=True)
    assert main(["score", "--run", link_id, "--data", str(leads)]) == 2
    assert f"No run '{link_id}'" in capsys.readouterr().err
    out = tmp_path / "scored.csv"
    assert main(["score", "--run", "latest", "--data", str(leads), "--out", str(out)]) == 0
    assert link_id not in capsys.readouterr().out
    assert not marker.exists() and len(pd.read_csv(out)) == len(pd.read_csv(leads))


# -- 2. damaged runs -------------------------------------------------------------------------------
def test_runs_skips_and_names_damaged_runs_and_aligns_every_kind(store, trained, capsys):
    src, _ = trained
    bad_spec = copy_run(src, store.root, "20990101T000001-stacking-000001")
    (bad_spec / "spec.json").write_text("{bad")
    bad_metrics = copy_run(src, store.root, "20990101T000002-stacking-000002")
    (bad_metrics / "metrics.json").write_text("[]")
    no_spec = copy_run(src, store.root, "20990101T000003-stacking-000003")
    (no_spec / "spec.json").unlink()
    emb = copy_run(src, store.root, "20990101T000004-embeddings-000004")
    spec = json.loads((emb / "spec.json").read_text())
    (emb / "spec.json").write_text(
        json.dumps({**spec, "approach": "embeddings", "input_kind": "transcripts", "dataset": "calls.jsonl"})
    )

    assert main(["runs"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("run ")
    assert lines[1].startswith(emb.name) and lines[2].startswith(src.name)
    for tokens in (
        ["dataset", "calls.jsonl", json.loads((src / "spec.json").read_text())["dataset"]],
        ["metric", "roc_auc", "roc_auc"],
    ):
        assert len({line.index(token) for line, token in zip(lines, tokens)}) == 1  # one column start
    err = captured.err
    assert "skipped 20990101T000001-stacking-000001: spec.json is not valid JSON" in err
    assert "skipped 20990101T000002-stacking-000002: metrics.json holds a list" in err
    assert "skipped 20990101T000003-stacking-000003: spec.json is missing" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("damage", ["truncated json", "truncated joblib", "missing file"])
def test_score_latest_falls_back_past_a_damaged_model_and_names_it(store, trained, tmp_path, capsys, damage):
    src, leads = trained
    broken = copy_run(src, store.root, "20990101T000001-stacking-00000a")
    model = broken / "model"
    if damage == "truncated json":
        text = (model / "base_xgb.json").read_text()
        (model / "base_xgb.json").write_text(text[: len(text) // 2])
    elif damage == "truncated joblib":
        data = (model / "features.joblib").read_bytes()
        (model / "features.joblib").write_bytes(data[: len(data) // 3])
    else:
        (model / "approach.json").unlink()

    out = tmp_path / "scored.csv"
    assert main(["score", "--run", "latest", "--data", str(leads), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"with run {src.name}" in captured.out
    assert f"skipped run {broken.name}: its model files cannot be loaded" in captured.err
    assert len(pd.read_csv(out)) == len(pd.read_csv(leads))

    assert main(["score", "--run", broken.name, "--data", str(leads)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run {broken.name} cannot be used: its model files cannot be loaded")
    assert len(err.splitlines()) == 1


# -- 7. files a run cannot score, outputs that cannot be written -----------------------------------
def test_score_refuses_files_that_share_no_column_with_the_run(store, trained, tmp_path, capsys):
    src, _ = trained
    jsonl = tmp_path / "calls.jsonl"
    jsonl.write_text('{"transcript": "hi, send me the brochure", "label": 1}\n{"transcript": "not interested"}\n')
    other = tmp_path / "other.csv"
    other.write_text("foo,bar\n1,2\n3,4\n")
    for data in (jsonl, other):
        assert main(["score", "--run", src.name, "--data", str(data)]) == 2
        err = capsys.readouterr().err.strip()
        assert data.name in err and "Lead Origin" in err and "TotalVisits" in err and len(err.splitlines()) == 1


def test_score_latest_takes_a_run_of_the_inputs_kind(store, trained, tmp_path, capsys):
    """Only a leads run is stored: transcripts (JSON Lines, or a CSV with a transcript column) are not scored
    with it."""
    jsonl = tmp_path / "calls.jsonl"
    jsonl.write_text('{"transcript": "hi, send me the brochure"}\n{"transcript": "not interested"}\n')
    calls_csv = tmp_path / "calls.csv"
    calls_csv.write_text("id,Transcript\n1,hello\n2,no thanks\n")
    for data in (jsonl, calls_csv):
        assert main(["score", "--data", str(data)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"error: {data.name} holds transcripts, and no stored transcripts run loads. Fix: train one "
            "with `python -m engine train transcripts` first, or pass --run RUN_ID "
            "(`python -m engine runs`)."
        )


def test_score_header_only_and_unwritable_out_give_one_clear_line(store, trained, tmp_path, capsys):
    _, leads = trained
    header = tmp_path / "header.csv"
    header.write_text(leads.read_text().splitlines()[0] + "\n")
    assert main(["score", "--data", str(header)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: header.csv has no rows to score (a header only?). Fix: give a file with at least one row."
    )

    missing_dir = tmp_path / "nowhere" / "scored.csv"
    assert main(["score", "--data", str(leads), "--out", str(missing_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --out {missing_dir}: the folder {missing_dir.parent} does not exist. Fix: create it "
        "first or write the scores somewhere else."
    )
    assert not missing_dir.parent.exists()

    assert main(["score", "--data", str(leads), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: --out {tmp_path} is a folder.")

    assert main(["score", "--data", str(tmp_path / "absent.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def _clash_cases(tmp_path: Path, leads: Path) -> list[tuple[list[str], str]]:
    """(score flags, the start of the error) for outputs that name the input, or each other, however spelt."""
    data = tmp_path / "in" / "leads.csv"
    data.parent.mkdir()
    data.write_bytes(leads.read_bytes())
    (tmp_path / "link.csv").symlink_to(data)
    os.link(data, tmp_path / "hard.csv")
    report_data = tmp_path / "week.report.json"  # the default report of --out week.csv
    report_data.write_text("[]")
    out = tmp_path / "out.csv"
    clash = "is the same file as --data"
    return [
        (["--data", str(data), "--out", str(data)], f"--out {data} {clash} {data}"),
        (["--data", str(data), "--out", str(tmp_path / "in" / ".." / "in" / "leads.csv")], "--out"),
        (["--data", str(data), "--out", str(tmp_path / "link.csv")], f"--out {tmp_path / 'link.csv'} {clash}"),
        (["--data", str(tmp_path / "link.csv"), "--out", str(data)], "--out"),
        (["--data", str(data), "--out", str(tmp_path / "hard.csv")], "--out"),
        (["--data", str(data), "--report", str(data)], f"--report {data} {clash}"),
        (["--data", str(data), "--out", str(out), "--report", str(out)], f"--report {out} is the same file as --out"),
        (["--data", str(report_data), "--out", str(tmp_path / "week.csv")], "--report"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_score_refuses_outputs_naming_its_input_or_each_other_before_reading_anything(
    workspace, trained, tmp_path, capsys, case
):
    """Issue 22: ``--out`` naming the ``--data`` file (another spelling, a link) replaced the input with the
    ranked list; ``--report`` naming ``--out`` replaced the list with the JSON report. The workspace holds no
    run, so the clash is found before any run or file is read."""
    _, leads = trained
    flags, start = _clash_cases(tmp_path, leads)[case]
    before = {f: f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()}
    assert main(["score", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {start}") and "would replace" in err and "Fix: give" in err
    assert len(err.splitlines()) == 1
    assert {f: f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()} == before


def test_score_writes_beside_its_input_when_the_names_differ(store, trained, tmp_path):
    _, leads = trained
    data = tmp_path / "leads.csv"
    data.write_bytes(leads.read_bytes())
    assert main(["score", "--data", str(data), "--out", str(tmp_path / "leads_scored.csv"), "--explain", "0"]) == 0
    assert data.read_bytes() == leads.read_bytes() and (tmp_path / "leads_scored.report.json").is_file()


def test_audit_refuses_a_json_report_naming_its_data(workspace, trained, tmp_path, capsys):
    _, leads = trained
    data = tmp_path / "leads.csv"
    data.write_bytes(leads.read_bytes())
    assert main(["audit", "leads", "--data", str(data), "--json", str(tmp_path / "." / "leads.csv")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --json {tmp_path / '.' / 'leads.csv'} is the same file")
    assert data.read_bytes() == leads.read_bytes()


def _unreadable(tmp_path: Path, case: str) -> Path:
    if case == "folder":
        return tmp_path
    if case == "name too long":
        return tmp_path / ("x" * 300 + ".csv")
    if case == "no permission":
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their permissions")
        path = tmp_path / "locked.csv"
        path.write_text("Lead Origin,TotalVisits\nAPI,3\n")
        path.chmod(0)
        return path
    if case == "fifo":
        path = tmp_path / "pipe.csv"
        os.mkfifo(path)
        return path
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 40)
    return path


@pytest.mark.parametrize("command", ["score", "audit"])
@pytest.mark.parametrize("case", ["folder", "name too long", "no permission", "fifo", "binary garbage"])
def test_an_unreadable_data_file_gives_one_line_not_a_traceback(store, tmp_path, capsys, command, case):
    path = _unreadable(tmp_path, case)
    argv = ["score", "--data", str(path)] if command == "score" else ["audit", "leads", "--data", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert {
        "folder": "is a folder",
        "name too long": "cannot be read",
        "no permission": "cannot be read",
        "fifo": "plain",
    }.get(case, "") in err
    assert "Fix:" in err or "Export the table" in err


@pytest.mark.parametrize(
    "file, content",
    [
        ("train_sample.csv", b"\x00\xff\xfe garbage \x81"),
        ("train_sample.csv", b""),
        ("train_sample.csv", b"colour,size\nred,1\n"),
        ("train_sample.csv", b'Lead Origin,TotalVisits\n"API,3\n'),
        ("training_profile.json", b"{bad"),
        ("training_profile.json", b"[]"),
        ("training_profile.json", b'{"columns": "Lead Origin"}'),
        ("training_profile.json", b'{"columns": {"Lead Origin": {"categories": ["API"]}}}'),
    ],
)
def test_score_goes_on_past_a_damaged_training_sample_or_profile_and_says_so(
    store, trained, tmp_path, capsys, file, content
):
    """Issue 22: a damaged train_sample.csv or training_profile.json made ``score`` refuse the whole file. The
    leads are scored; the check that file serves is not made, and a warning (and the report) names it."""
    _, leads = trained
    run = store.list_runs()[0]
    (run.path / file).write_bytes(content)
    out, report = tmp_path / "out.csv", tmp_path / "report.json"
    assert main(["score", "--data", str(leads), "--out", str(out), "--report", str(report), "--explain", "0"]) == 0
    err = capsys.readouterr().err
    assert len(pd.read_csv(out)) == len(pd.read_csv(leads))
    body = json.loads(report.read_text())
    if file == "train_sample.csv":
        assert "shift" not in body and file in body["shift_not_checked"] and "without the shift check" in err
        assert next(line for line in err.splitlines() if file in line).startswith("warning: scored without")
    else:
        assert "shift" in body  # the sample is fine: the shift check is made
        line = next(m for m in body["messages"] if file in m)
        assert "never seen in training were not looked for" in line and f"note: {line}" in err


def test_score_and_serve_help_describe_their_options(capsys):
    for command, words in (("score", ["--run", "latest", "--data", "--out"]), ("serve", ["--host", "--port"])):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = capsys.readouterr().out
        assert all(w in text for w in words) and "default" in text


def test_bench_api_takes_requests_and_concurrency():
    args = build_parser().parse_args(["bench", "api", "--requests", "40", "--concurrency", "4", "--json", "x.json"])
    assert (args.input, args.requests, args.concurrency, args.json) == ("api", 40, 4, "x.json")
    args = build_parser().parse_args(["bench", "api"])
    assert (args.requests, args.concurrency) == (2000, 16)


# -- 7. parameters and failed trainings -----------------------------------------------------------
@pytest.mark.parametrize(
    "param, words",
    [
        ("n_folds=abc", ["'n_folds'", "a whole number", "'abc'"]),
        ("n_folds=2.5", ["'n_folds'", "a whole number", "2.5"]),
        ("meta_linear_skip=1", ["'meta_linear_skip'", "true/false"]),
        ("lr_C=high", ["'lr_C'", "a number", "'high'"]),
        ("nonsense=1", ["no parameter(s) ['nonsense']"]),
        ("n_folds", ["--param expects KEY=VALUE"]),
    ],
)
def test_a_badly_typed_param_fails_before_any_run_folder_exists(workspace, trained, capsys, param, words):
    _, leads = trained
    assert main(["train", "leads", "--data", str(leads), "--quiet", "--param", param]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and all(w in err for w in words)
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_build_approach_converts_values_of_the_right_kind():
    from engine.pipeline import build_approach

    model = build_approach(
        "stacking", {"n_folds": 3.0, "lr_C": 1, "rf_max_features": 0.5, "meta_linear_skip": False}, "leads"
    )
    settings = model.get_params()  # the base models' settings, nested (the flat names are their aliases)
    assert model.n_folds == 3 and isinstance(model.n_folds, int) and settings["lr__C"] == 1
    assert settings["rf__max_features"] == 0.5
    lora = build_approach("lora", {"epochs": 1.5, "target_modules": ["q_proj"]}, "leads")
    assert lora.epochs == 1.5 and lora.target_modules == ("q_proj",)
    with pytest.raises(ValueError, match="'target_modules'.*a list of text"):
        build_approach("lora", {"target_modules": "q_proj"}, "leads")


class CancelAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, progress):
        if progress.step >= self.step:
            raise TrainingCancelled("cancelled by the test")


@pytest.mark.parametrize("case", ["error in fit", "cancelled", "interrupted"])
def test_a_failed_or_cancelled_training_leaves_no_run_folder(workspace, trained, case):
    from engine import pipeline

    _, leads = trained
    params, callbacks, expected = dict(SMALL_PARAMS), [], ValueError
    if case == "error in fit":
        params["n_folds"] = 1  # the right type, refused by scikit-learn's folds inside fit
    elif case == "cancelled":
        callbacks, expected = [CancelAt(2)], TrainingCancelled
    else:

        class Interrupt(Callback):
            def on_step_end(self, progress):
                raise KeyboardInterrupt

        callbacks, expected = [Interrupt()], KeyboardInterrupt
    with pytest.raises(expected):
        pipeline.train_leads(leads, params=params, callbacks=callbacks)
    store = RunStore()
    assert store.list_runs(complete_only=False) == [] and not any(store.root.iterdir())


def test_a_terminated_training_process_removes_its_run_folder(workspace, trained):
    """SIGTERM (how a job is cancelled) ends `train` through SystemExit, so the half-made run goes too."""
    _, leads = trained
    env = {**os.environ, "CLAB_WORKSPACE": str(workspace)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "train",
            "leads",
            "--data",
            str(leads),
            "--quiet",
            "--param",
            "n_jobs=1",
            "--param",
            "meta_epochs=400",
            "--param",
            "meta_patience=400",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = workspace / "runs"
    try:
        deadline = time.monotonic() + 120
        while not (runs.exists() and any(runs.iterdir())) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None and any(runs.iterdir()), "the training should still be running"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any(runs.iterdir())


def test_a_training_killed_outright_leaves_nothing_a_listing_misses(workspace, tmp_path):
    """SIGKILL gives `train` no chance to clean up. It trains in a staging folder (a dot name no listing shows),
    so no half-made run hides among the runs; the store's next listing removes the folder (its process is gone),
    and names it. Liveness is the folder's lock, not the pid in its name: a staging folder whose lock nobody holds
    goes even when that pid now belongs to a live process (a reused pid)."""
    from support import start_cli_training, wait_for_staging

    from engine.data.demo import demo_leads
    from engine.runs import RUN_ID_PATTERN, STAGING_LOCK

    data = tmp_path / "leads.csv"
    demo_leads(n=300, seed=4).to_csv(data, index=False)
    runs = workspace / "runs"
    proc = start_cli_training(workspace, data, meta_epochs=400, meta_patience=400)
    try:
        staging = wait_for_staging(runs, proc)
        time.sleep(0.5)  # training
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert staging.exists() and (staging / "spec.json").exists()  # the half-made run, under its staging name
    assert (staging / STAGING_LOCK).exists()  # its lock file, which nobody holds now
    assert not [p for p in runs.iterdir() if RUN_ID_PATTERN.match(p.name)]  # nothing shaped like a run
    reused = runs / f".incomplete-20200101T000000-stacking-0000aa-p{os.getpid()}"  # a live pid, not its owner
    reused.mkdir()
    (reused / STAGING_LOCK).touch()  # unlocked
    foreign = runs / ".incomplete-not-made-by-the-store"
    foreign.mkdir()
    store = RunStore(runs)
    assert store.list_runs(complete_only=False) == []
    assert sorted(store.swept) == sorted([staging.name, reused.name])
    assert sorted(p.name for p in runs.iterdir()) == [foreign.name]  # a name the store does not make: left alone


# -- 1. LoRA checkpoints ----------------------------------------------------------------------------
def test_a_planted_lora_checkpoint_is_refused_unrun(tmp_path):
    import torch

    from engine.approaches.lora import CHECKPOINT_STATE, LoraApproach

    marker = tmp_path / "pwned"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save(
        {"step": 3, "run_key": "k", "optimizer": {}, "scheduler": {}, "payload": PlantedPickle(marker)},
        folder / CHECKPOINT_STATE,
    )
    torch.load(folder / CHECKPOINT_STATE, weights_only=False)  # the plant is real: a full unpickle runs it
    assert marker.exists()
    marker.unlink()
    model = LoraApproach(checkpoint_dir=str(folder), resume=True)
    with pytest.raises(ValueError) as info:
        model._load_checkpoint(None, None, "k")
    assert str(folder / CHECKPOINT_STATE) in str(info.value) and "resume=False" in str(info.value)
    assert not marker.exists()

    (folder / CHECKPOINT_STATE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="damaged"):
        model._load_checkpoint(None, None, "k")


@pytest.mark.parametrize("planted", ["features.joblib", "base_svc.joblib", "estimators.joblib"])
def test_a_link_planted_inside_a_stored_model_folder_is_never_unpickled(store, trained, tmp_path, capsys, planted):
    """The store's own run id, but one of its pickles swapped for a link to a file elsewhere: refused by name."""
    import joblib

    src, leads = trained
    run = copy_run(src, store.root, "20990101T000003-stacking-00000c")
    marker = tmp_path / "executed"
    outside = tmp_path / "evil.joblib"
    joblib.dump(PlantedPickle(marker), outside)
    (run / "model" / planted).unlink()
    (run / "model" / planted).symlink_to(outside)
    assert main(["score", "--run", run.name, "--data", str(leads)]) == 2
    assert f"model/{planted}: a symbolic link" in capsys.readouterr().err  # refused before any file is read
    assert not marker.exists()


# -- 8. specs that parse but hold wrong types (issue: one typed run spec) ---------------------------
def _plant_wrong_types(store, src) -> dict[str, tuple[str, str]]:
    """Every :data:`support.SPEC_WRONG_TYPES` damage on its own copy of the run, each newer than the real one:
    corruption -> (run id, the field its reason names)."""
    from support import SPEC_WRONG_TYPES, damage_spec

    out = {}
    for i, corruption in enumerate(SPEC_WRONG_TYPES):
        run_id = f"20990101T{i:06d}-stacking-{i:06x}"
        out[corruption] = (run_id, damage_spec(copy_run(src, store.root, run_id), corruption))
    return out


def test_runs_and_score_skip_and_name_every_spec_with_wrong_types(store, trained, tmp_path, capsys):
    src, leads = trained
    planted = _plant_wrong_types(store, src)
    assert store.latest().id == src.name and [r.id for r in store.list_runs()] == [src.name]

    assert main(["runs"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(src.name)
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(planted) and "Traceback" not in captured.err
    for run_id, field in planted.values():
        line = next(line for line in skipped if line.startswith(f"skipped {run_id}: "))
        assert "spec.json" in line and f"'{field}" in line, line  # 'columns' or 'columns[0]'...

    out = tmp_path / "scored.csv"
    assert main(["score", "--run", "latest", "--data", str(leads), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"with run {src.name}" in captured.out and len(pd.read_csv(out)) == len(pd.read_csv(leads))
    assert all(f"skipped run {run_id}: spec.json" in captured.err for run_id, _ in planted.values())
    for corruption, (run_id, field) in planted.items():
        assert main(["score", "--run", run_id, "--data", str(leads)]) == 2, corruption
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"run {run_id} cannot be used: spec.json" in err, err
        assert f"'{field}" in err and "Traceback" not in err


def test_every_kind_of_listed_broken_run_can_be_deleted(store, trained, tmp_path, capsys):
    src, _ = trained
    broken = {}
    for i, damage in enumerate(["spec missing", "spec not json", "spec wrong types", "metrics list", "model cut"]):
        folder = copy_run(src, store.root, f"20990102T00000{i}-stacking-00000{i}")
        if damage == "spec missing":
            (folder / "spec.json").unlink()
        elif damage == "spec not json":
            (folder / "spec.json").write_text("{bad")
        elif damage == "spec wrong types":
            (folder / "spec.json").write_text(json.dumps({"approach": "stacking", "columns": "Lead Origin"}))
        elif damage == "metrics list":
            (folder / "metrics.json").write_text("[]")
        else:
            (folder / "model" / "approach.json").write_text("{")
        broken[damage] = folder
    store.list_runs()
    store.latest_loadable()
    assert main(["runs"]) == 0
    listed = capsys.readouterr().err
    outside = tmp_path / "outside"
    shutil.copytree(src, outside)
    link = store.root / "20990103T000000-stacking-aaaaaa"
    link.symlink_to(outside, target_is_directory=True)
    (store.root / "20990103T000001-stacking-bbbbbb").write_text("a file, not a run folder")

    for damage, folder in broken.items():
        assert folder.name in listed or damage == "model cut"  # a damaged model is found when it is loaded
        assert main(["delete", "run", folder.name, "--yes"]) == 0, damage
        out = capsys.readouterr().out
        assert f"Deleted run {folder.name}" in out and ("damaged" in out or damage == "model cut"), out
        assert not folder.exists()
    for name in (link.name, "20990103T000001-stacking-bbbbbb", "../outside", str(outside)):
        assert main(["delete", "run", name, "--yes"]) == 2
        assert "No run" in capsys.readouterr().err
    assert link.is_symlink() and (outside / "spec.json").exists() and (src / "spec.json").exists()
    assert store.broken() == []


@pytest.mark.parametrize(
    "param, words",
    [
        ("meta_batch_size=0", ["'meta_batch_size'", "at least 1", "got 0"]),
        ("n_jobs=-100", ["'n_jobs'", "-1 (every core) or from 1 to 256", "got -100"]),
        ("n_jobs=0", ["'n_jobs'", "-1 (every core)", "got 0"]),
        ("meta_epochs=-3", ["'meta_epochs'", "at least 1"]),
        ("meta_dropout=1", ["'meta_dropout'", "from 0 and below 1"]),
        ("xgb_subsample=0", ["'xgb_subsample'", "above 0 to 1"]),
        ("meta_validation=1.5", ["'meta_validation'", "above 0 and below 1"]),
        ("lr_C=0", ["'lr_C'", "above 0"]),
        ("lr_C=1e400", ["'lr_C'", "finite number"]),
        ("lr_C=NaN", ["'lr_C'", "a number", "'NaN'"]),
        ("n_folds=1_000", ["'n_folds'", "a whole number", "'1_000'"]),
        ("n_folds=\u0661\u0660", ["'n_folds'", "a whole number"]),  # Arabic-Indic digits
        ("n_folds=\uff11\uff10", ["'n_folds'", "a whole number"]),  # fullwidth digits
        ("seed=-1", ["'seed'", "from 0 to"]),
        ("xgb__max_depth=0", ["'xgb__max_depth'", "from 1 to 64"]),  # the nested spelling, checked the same
        ("rf__n_estimators=2.5", ["'rf__n_estimators'", "a whole number"]),
        ("xgb__no_such=1", ["no parameter(s) ['xgb__no_such']", "MODEL__SETTING"]),
        ("gbm__max_depth=3", ["no parameter(s) ['gbm__max_depth']", "MODEL__SETTING"]),
        ('estimators=[["lr", "x"]]', ["no parameter(s) ['estimators']", "set from Python"]),
    ],
)
def test_a_param_out_of_range_or_not_a_plain_number_fails_in_one_line(workspace, trained, capsys, param, words):
    _, leads = trained
    assert main(["train", "leads", "--data", str(leads), "--quiet", "--param", param]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


@pytest.mark.parametrize(
    "flags",
    [
        ["--missing-value", "TotalVisits=1_000"],
        ["--missing-value", "TotalVisits=\u0661\u0660\u0660\u0660"],
        ["--missing-value", "TotalVisits=\uff11\uff10\uff10\uff10"],
        ["--epochs", "\uff11"],
        ["--batch-size", "1_000"],
        ["--model-seed", "\u0664\u0662"],
        ["--split-seed", "4_2"],
        ["--test-size", "nan"],
    ],
)
def test_a_number_flag_takes_plain_ascii_digits_only(workspace, flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "leads", *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert flags[0] in err and ("not COLUMN=NUMBER" in err or "not a plain number" in err), err
    assert not (workspace / "runs").exists()


def test_plain_numbers_and_the_edges_of_each_range_are_taken():
    from engine.cli import build_parser
    from engine.pipeline import check_params

    args = build_parser().parse_args(
        ["train", "leads", "--missing-value", "TotalVisits=-1.5e2", "--epochs", "2", "--model-seed", "+7"]
    )
    assert args.missing_value == [("TotalVisits", -150.0)] and args.epochs == 2.0 and args.model_seed == 7
    edges = {"n_jobs": -1, "meta_dropout": 0.0, "xgb_subsample": 1, "meta_batch_size": 1, "seed": 2**32 - 1}
    assert check_params("stacking", edges) == {**edges, "xgb_subsample": 1.0}
    assert check_params("embeddings", {"epochs": 0, "C": None}) == {"epochs": 0}
    with pytest.raises(ValueError, match="'top_layers' of the 'lora' approach must be at least 1"):
        check_params("lora", {"top_layers": 0})
    with pytest.raises(ValueError, match="'train_rows' of the 'lora' approach must be at least 1, got 'many'"):
        check_params("lora", {"train_rows": "many"})  # no annotation, a None default: the range says a number


def test_the_job_path_refuses_a_param_out_of_range_before_queueing(workspace, trained, tmp_path):
    """The Train page and any job go through JobRunner.submit_train: its TrainSpec is checked before the job is
    queued; a spec written by hand is refused by the job's own process, in result.json."""
    from engine.jobs import JobRunner
    from engine.jobspec import TrainSpec

    _, leads = trained
    runner = JobRunner(workspace)
    with pytest.raises(ValueError, match="'meta_batch_size' of the 'stacking' approach must be at least 1, got 0"):
        runner.submit_train(TrainSpec("leads", str(leads), "stacking", params={"meta_batch_size": 0}))
    with pytest.raises(ValueError, match=r"'n_jobs' .* must be -1 \(every core\) or from 1 to 256, got -100"):
        TrainSpec.from_dict({"input_kind": "leads", "params": {"n_jobs": -100}})
    with pytest.raises(ValueError, match="'margin' of the 'embeddings' approach must be above 0"):
        TrainSpec(input_kind="transcripts", params={"margin": -1.0})  # the default approach of transcripts
    assert runner.list(limit=10) == []
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps({"input_kind": "leads", "params": {"xgb_subsample": 2}}))
    assert main(["run-job", str(folder)]) == 2
    assert "'xgb_subsample'" in json.loads((folder / "result.json").read_text())["error"]
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


# -- serve: the API is not opened to the network without a key ------------------------------------------
def test_serve_beyond_loopback_needs_a_key_or_no_auth(workspace, monkeypatch, capsys):
    """``serve --host 0.0.0.0`` without CLAB_API_KEY: one line naming the fix, exit 2, nothing bound (a real
    process); loopback needs no key; a key or ``--no-auth`` (with a warning) lets it start."""
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "CLAB_API_KEY"}
    for host in ("0.0.0.0", "::", "192.168.1.20"):
        done = subprocess.run(
            [sys.executable, "-m", "engine", "serve", "--host", host, "--port", "1"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert lines[0].startswith("error: refusing to serve on") and host in lines[0]
        assert "CLAB_API_KEY" in lines[0] and "--no-auth" in lines[0] and "127.0.0.1" in lines[0]

    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))  # the server, not the models
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert main(["serve", "--host", host]) == 0
        assert capsys.readouterr().err == ""
    assert main(["serve", "--host", "0.0.0.0", "--no-auth"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: serving on 0.0.0.0 with no API key") and "open" in err
    monkeypatch.setenv("CLAB_API_KEY", "s3cret")
    assert main(["serve", "--host", "0.0.0.0"]) == 0
    assert capsys.readouterr().err == ""
    assert [kw["host"] for kw in started] == ["127.0.0.1", "::1", "localhost", "127.0.0.2", "0.0.0.0", "0.0.0.0"]


def test_score_gives_finite_scores_for_huge_numbers(store, trained, tmp_path, capsys):
    """A lead file with 1e308 in a number column: every row gets a finite probability and a 1-99 score (the
    stack used to answer NaN and -9223372036854775808 for it)."""
    src, leads = trained
    frame = pd.read_csv(leads).head(20)
    for col in ("TotalVisits", "Page Views Per Visit", "Total Time Spent on Website"):
        frame[col] = frame[col].astype(float)
    frame.loc[0, "TotalVisits"] = 1e308
    frame.loc[1, "Page Views Per Visit"] = -1e308
    frame.loc[2, "Total Time Spent on Website"] = 1.7e308
    data = tmp_path / "huge.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    assert main(["score", "--run", src.name, "--data", str(data), "--out", str(out), "--explain", "all"]) == 0
    scored = pd.read_csv(out)
    assert len(scored) == 20 and scored["probability"].between(0, 1).all()
    assert scored["score"].between(1, 99).all() and scored["tier"].isin(list("ABCD")).all()
