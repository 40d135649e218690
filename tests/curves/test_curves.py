"""Learning curves (engine.curves, ``bench curve``): nested stratified subsets, the same test rows at every size,
calibration from the subset only, resuming without refitting, and hostile command lines. Real fits throughout: a
small calibrating approach (tests/plugins/calibrating_logistic.py) where fits are counted, the shipped stack and
embeddings where the curve's numbers are checked."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support import SMALL_STACK

from engine import curves
from engine.approaches import registry
from engine.benchmarks.curve import run_curve
from engine.cli import main
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.evaluate import protocol_split

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
POINT_KEYS = {"approach", "size", "seed", "roc_auc", "roc_auc_ci", "accuracy", "fit_seconds"}


@pytest.fixture
def calibrating(monkeypatch):
    """The calibrating test approach, registered for this test; its module (fits and scoring calls recorded)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setitem(registry._ADDED, "calibrating_logistic", "calibrating_logistic:CalibratingLogistic")
    import calibrating_logistic

    calibrating_logistic.FITS.clear()
    calibrating_logistic.SCORED.clear()
    return calibrating_logistic


@pytest.fixture(scope="module")
def leads_file(tmp_path_factory) -> Path:
    """300 synthetic demo leads as a CSV file (210 training rows, 90 test rows)."""
    path = tmp_path_factory.mktemp("curve") / "leads.csv"
    demo_leads(n=300, seed=3).to_csv(path, index=False)
    return path


def quiet(_message: str) -> None:
    pass


def _curve(leads_file) -> curves.Curve:
    table = load_leads(leads_file)
    train_idx, test_idx = protocol_split(table.y)
    return curves.Curve(table.X, np.asarray(table.y).astype(int), train_idx, test_idx)


def test_nested_subsets_are_nested_stratified_and_inside_the_training_rows(leads_file):
    curve = _curve(leads_file)
    rate = curve.y_train.mean()
    sizes, _ = curves.resolve_sizes([20, 50, 100, 150, "all"], len(curve.train_idx))
    for seed in (0, 1, 2):
        previous: set = set()
        for size in sizes:
            rows = curve.subset(size, seed)
            assert len(rows) == len(set(rows)) == size
            assert previous <= set(rows)  # nested: each size holds the smaller ones
            assert set(rows) <= set(curve.train_idx) and not set(rows) & set(curve.test_idx)
            assert abs(curve.y[rows].sum() - size * rate) <= 1  # stratified within one row at every size
            previous = set(rows)
    assert set(curve.subset(50, 0)) != set(curve.subset(50, 1))  # each seed is its own draw
    assert set(curve.subset(len(curve.train_idx), 1)) == set(curve.train_idx)
    # every prefix is stratified, not only the sizes asked for
    order = curves.nested_order(curve.y_train, 7)
    running = np.cumsum(curve.y_train[order])
    assert np.all(np.abs(running - np.arange(1, len(order) + 1) * rate) <= 1)


def test_sizes_are_checked_and_capped(leads_file):
    assert curves.resolve_sizes([300, 50, "all", 50], 210) == (
        [50, 210],
        ["size 300 is above the 210 training rows: capped at all of them"],
    )
    for bad in (0, -3):
        with pytest.raises(ValueError, match="below 1 row"):
            curves.resolve_sizes([bad], 210)
    with pytest.raises(ValueError, match="not a whole number"):
        curves.resolve_sizes([2.5], 210)
    assert curves.seeds_for(50, 210, 3, 1000) == [0, 1, 2]
    assert curves.seeds_for(210, 210, 3, 1000) == [0]  # all of the rows is one draw
    assert curves.seeds_for(1000, 5000, 3, 1000) == [0]


def test_points_share_the_test_rows_and_calibrate_on_the_subset_only(leads_file, tmp_path, calibrating):
    out = tmp_path / "curve.json"
    result = run_curve(leads_file, out, ["calibrating_logistic"], [40, 80, "all"], seeds=2, n_boot=50, log=quiet)
    curve = _curve(leads_file)
    test_rows = list(curve.test_idx)
    assert list(curve.X.index) == list(range(len(curve.X)))  # index labels are row positions
    assert [(p["size"], p["seed"]) for p in result["points"]] == [(40, 0), (40, 1), (80, 0), (80, 1), (210, 0)]
    assert len(calibrating.FITS) == 5
    for point, fit in zip(sorted(result["points"], key=lambda p: (p["size"], p["seed"])), calibrating.FITS):
        subset = set(curve.subset(point["size"], point["seed"]))
        assert set(fit["rows"]) == subset  # the approach is given the subset's rows and nothing else
        assert fit["calibration"] and set(fit["calibration"]) <= subset
        assert not set(fit["calibration"]) & set(test_rows)
        assert point["positives"] == int(curve.y[list(subset)].sum())
    full_calls = [rows for rows in calibrating.SCORED if len(rows) > 2]
    assert len(full_calls) == 5 and all(rows == test_rows for rows in full_calls)  # the same test rows each time
    assert result["test_rows"] == len(test_rows) == 90
    assert all(POINT_KEYS <= set(p) for p in result["points"])
    spread = {(s["approach"], s["size"]): s for s in result["spread"]}
    assert spread[("calibrating_logistic", 40)]["seeds"] == 2
    low, high = spread[("calibrating_logistic", 40)]["roc_auc_min"], spread[("calibrating_logistic", 40)]["roc_auc_max"]
    assert low == min(p["roc_auc"] for p in result["points"] if p["size"] == 40)
    assert high == max(p["roc_auc"] for p in result["points"] if p["size"] == 40)
    assert json.loads(out.read_text()) == result


def test_a_resumed_curve_fits_only_the_missing_points(leads_file, tmp_path, calibrating):
    out = tmp_path / "curve.json"
    first = run_curve(leads_file, out, ["calibrating_logistic"], [40, 80], seeds=2, n_boot=50, log=quiet)
    assert len(calibrating.FITS) == 4
    # a cancelled job: two of the four points written
    kept = [p for p in first["points"] if p["size"] == 40]
    out.write_text(json.dumps({**first, "points": kept}))
    calibrating.FITS.clear()
    messages: list[str] = []
    resumed = run_curve(leads_file, out, ["calibrating_logistic"], [40, 80], seeds=2, n_boot=50, log=messages.append)
    assert len(calibrating.FITS) == 2  # only the two missing points were fitted
    assert any("2 of 4 points already there, 2 to fit" in m for m in messages)
    assert [p for p in resumed["points"] if p["size"] == 40] == kept  # the finished points untouched, timings too
    numbers = ("approach", "size", "seed", "roc_auc", "roc_auc_ci", "accuracy", "positives")
    assert [[p[k] for k in numbers] for p in resumed["points"]] == [[p[k] for k in numbers] for p in first["points"]]
    calibrating.FITS.clear()
    run_curve(leads_file, out, ["calibrating_logistic"], [40, 80], seeds=2, n_boot=50, log=quiet)
    assert calibrating.FITS == []  # nothing left to fit
    bigger = run_curve(leads_file, out, ["calibrating_logistic"], [40, 80, 120], seeds=2, n_boot=50, log=quiet)
    assert len(calibrating.FITS) == 2 and len(bigger["points"]) == 6  # a new size: its points only


def test_a_curve_of_another_dataset_or_parameters_is_not_resumed(leads_file, tmp_path, calibrating):
    out = tmp_path / "curve.json"
    run_curve(leads_file, out, ["calibrating_logistic"], [40], seeds=1, n_boot=50, log=quiet)
    before = out.read_bytes()
    other = tmp_path / "other.csv"
    demo_leads(n=300, seed=4).to_csv(other, index=False)
    with pytest.raises(ValueError, match="another dataset .*not resumed. Fix: give another --json"):
        run_curve(other, out, ["calibrating_logistic"], [40], seeds=1, n_boot=50, log=quiet)
    with pytest.raises(ValueError, match="another test split"):
        run_curve(leads_file, out, ["calibrating_logistic"], [40], seeds=1, n_boot=50, split_seed=7, log=quiet)
    with pytest.raises(ValueError, match="other parameters \\(C\\)"):
        run_curve(
            leads_file, out, ["calibrating_logistic"], [40], {"calibrating_logistic": {"C": 0.1}}, n_boot=50, log=quiet
        )
    assert out.read_bytes() == before


def test_two_writers_of_one_curve_lose_no_point(leads_file, tmp_path, calibrating):
    """Two curves written into one JSON at once (two jobs given the same --json): every point of both is kept."""
    out = tmp_path / "curve.json"
    errors: list[BaseException] = []

    def write(sizes):
        try:
            run_curve(leads_file, out, ["calibrating_logistic"], sizes, seeds=3, n_boot=50, log=quiet)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(sizes,)) for sizes in ([40, 60], [80, 100])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    points = json.loads(out.read_text())["points"]
    assert sorted((p["size"], p["seed"]) for p in points) == [(s, k) for s in (40, 60, 80, 100) for k in range(3)]


@pytest.mark.slow
def test_stack_and_embeddings_draw_one_curve_on_demo_leads(leads_file, tmp_path):
    """The shipped approaches on one curve (the embeddings read the lead table as text), and a point is exactly
    ``clone(approach)`` fitted on its subset and scored on the test rows. About 2 minutes on 2 busy cores."""
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score

    from engine.pipeline import build_approach

    out = tmp_path / "curve.json"
    params = {"stacking": SMALL_STACK, "embeddings": {"fine_tune": False}}
    result = run_curve(leads_file, out, ["stacking", "embeddings"], [60, 120], params, seeds=1, n_boot=100, log=quiet)
    assert sorted((p["approach"], p["size"]) for p in result["points"]) == [
        ("embeddings", 60),
        ("embeddings", 120),
        ("stacking", 60),
        ("stacking", 120),
    ]
    for p in result["points"]:
        low, high = p["roc_auc_ci"]
        assert 0 <= low <= p["roc_auc"] <= high <= 1
        assert p["fit_seconds"] > 0 and p["score_rows_per_second"] > 0 and p["score_one_ms"] > 0
    assert result["approaches"]["stacking"]["params"]["n_folds"] == SMALL_STACK["n_folds"]
    curve = _curve(leads_file)
    rows = curve.subset(120, 0)
    stack = clone(build_approach("stacking", SMALL_STACK)).fit(curve.X.iloc[rows], curve.y[rows])
    expected = roc_auc_score(curve.y[curve.test_idx], stack.predict_proba(curve.X.iloc[curve.test_idx])[:, 1])
    point = next(p for p in result["points"] if p["approach"] == "stacking" and p["size"] == 120)
    assert point["roc_auc"] == pytest.approx(expected, abs=1e-9)


# -- the command line ---------------------------------------------------------------------------
def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["bench", "curve", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    "sizes, words",
    [
        ("0,50", "size 0 is below 1 row"),
        ("-50", "size -50 is below 1 row"),
        ("fifty", "size 'fifty' is not a whole number of rows or 'all'"),
        ("50,,100", "size '' is not a whole number"),
        ("1e9999", "is not a whole number of rows"),
    ],
)
def test_bad_sizes_are_refused_with_the_fix(capsys, tmp_path, sizes, words):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "curve", "--sizes", sizes, "--json", str(tmp_path / "c.json")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "--sizes 50,100,300,all" in err
    assert not (tmp_path / "c.json").exists()


def test_unknown_approach_lists_the_known_ones(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["bench", "curve", "--approaches", "stacking,gpt5", "--json", str(tmp_path / "c.json")])
    err = capsys.readouterr().err
    assert "unknown approach 'gpt5'" in err and "stacking, lora, embeddings" in err


def test_missing_or_folder_data_and_bad_json_targets_are_refused(capsys, tmp_path, leads_file):
    code, text = _cli(capsys, "--data", str(tmp_path / "nope.csv"), "--json", str(tmp_path / "c.json"))
    assert code == 2 and "nope.csv: no such file. Fix: give a lead table" in text
    code, text = _cli(capsys, "--data", str(tmp_path), "--json", str(tmp_path / "c.json"))
    assert code == 2 and "is a folder" in text
    code, text = _cli(capsys, "--data", str(leads_file), "--json", str(tmp_path / "missing" / "c.json"))
    assert code == 2 and "does not exist. Fix: create it first" in text
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "notes"}')
    code, text = _cli(capsys, "--data", str(leads_file), "--json", str(mine))
    assert code == 2 and "is not a learning curve" in text and "left as it is" in text
    assert mine.read_text() == '{"my": "notes"}'  # a file the engine did not write is never replaced
    code, text = _cli(capsys, "--data", str(leads_file), "--param", "lora.epochs=1", "--json", str(tmp_path / "c.json"))
    assert code == 2 and "lora is not in --approaches" in text
    code, text = _cli(
        capsys, "--data", str(leads_file), "--param", "stacking.bogus=1", "--json", str(tmp_path / "c.json")
    )
    assert code == 2 and "has no parameter(s) ['bogus']" in text
    assert not (tmp_path / "c.json").exists()


def test_a_size_too_small_for_an_approach_is_refused_before_any_fit(capsys, tmp_path, leads_file, calibrating):
    code, text = _cli(
        capsys,
        "--data",
        str(leads_file),
        "--approaches",
        "calibrating_logistic",
        "--sizes",
        "5,50",
        "--json",
        str(tmp_path / "c.json"),
    )
    assert code == 2 and "size 5 holds only 2 rows of the rarer class" in text and "Give sizes of at least" in text
    assert calibrating.FITS == []


def test_cli_caps_sizes_above_the_training_rows_with_a_note(capsys, tmp_path, leads_file, calibrating):
    out = tmp_path / "c.json"
    code, text = _cli(
        capsys,
        "--data",
        str(leads_file),
        "--approaches",
        "calibrating_logistic",
        "--sizes",
        "60,5000",
        "--seeds",
        "1",
        "--n-boot",
        "50",
        "--json",
        str(out),
    )
    assert code == 0, text
    assert "note: size 5,000 is above the 210 training rows: capped at all of them" in text
    curve = json.loads(out.read_text())
    assert [p["size"] for p in curve["points"]] == [60, 210] and curve["notes"]


def _ray_against_local(capsys, monkeypatch, tmp_path, gcs: str, argv: list[str]) -> list[dict]:
    """The curve of ``argv`` drawn here and as Ray tasks at ``gcs``: the same points, the same numbers."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, text = _cli(capsys, *argv, "--json", str(tmp_path / "local.json"))
    assert code == 0, text
    monkeypatch.setenv("RAY_ADDRESS", gcs)
    code, text = _cli(capsys, *argv, "--json", str(tmp_path / "ray.json"))
    assert code == 0, text
    local = json.loads((tmp_path / "local.json").read_text())["points"]
    remote = json.loads((tmp_path / "ray.json").read_text())["points"]
    assert f"{len(local)} points sent to Ray" in text
    assert [(p["approach"], p["size"], p["seed"], p["positives"]) for p in remote] == [
        (p["approach"], p["size"], p["seed"], p["positives"]) for p in local
    ]
    for mine, theirs in zip(local, remote):
        for key in ("roc_auc", "roc_auc_ci", "accuracy", "accuracy_ci", "pr_auc"):
            assert theirs[key] == pytest.approx(mine[key], abs=1e-9), (mine["approach"], mine["size"], key)
    return remote


def test_points_run_as_ray_tasks_give_the_local_numbers(
    leads_file, tmp_path, calibrating, monkeypatch, capsys, ray_cluster_addresses
):
    """`bench curve` with RAY_ADDRESS set: every point a Ray task on the suite's local cluster, the same numbers as
    the curve drawn here (the workers import the test approach by path, as a plug-in)."""
    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))  # for the workers (the engine's own folder is added by it)
    monkeypatch.setenv("CLAB_APPROACHES", "calibrating_logistic=calibrating_logistic:CalibratingLogistic")
    argv = ["--data", str(leads_file), "--approaches", "calibrating_logistic", "--sizes", "40,80,all"]
    before = len(calibrating.FITS)
    points = _ray_against_local(capsys, monkeypatch, tmp_path, ray_cluster_addresses["gcs"], [*argv, "--n-boot", "100"])
    assert len(points) == 7
    assert len(calibrating.FITS) == before + 7  # the local curve's fits only: Ray's ran in its workers


@pytest.mark.slow
def test_the_stack_as_ray_tasks_gives_the_local_numbers(
    leads_file, tmp_path, monkeypatch, capsys, ray_cluster_addresses
):
    """The shipped stack's points as Ray tasks: the local numbers (about 1.5 minutes on 2 busy cores)."""
    argv = ["--data", str(leads_file), "--approaches", "stacking", "--sizes", "60,120", "--seeds", "1"]
    params = [f"--param=stacking.{k}={json.dumps(v)}" for k, v in SMALL_STACK.items()]
    _ray_against_local(capsys, monkeypatch, tmp_path, ray_cluster_addresses["gcs"], [*argv, *params, "--n-boot", "100"])


def test_a_cancelled_curve_job_resumes_without_redoing_finished_points(leads_file, tmp_path, monkeypatch, calibrating):
    """`bench curve` as a job: each point is in the JSON as it lands; cancelled, then submitted again with the same
    arguments, the job fits only the points the first one did not finish."""
    from engine.benchmarks.curve import submit_curve
    from engine.jobs import JobRunner

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(repo)]))
    monkeypatch.setenv("CLAB_APPROACHES", "calibrating_logistic=calibrating_logistic:CalibratingLogistic")
    runner = JobRunner(tmp_path / "workspace")
    out = tmp_path / "curve.json"
    argv = ["--data", str(leads_file), "--approaches", "calibrating_logistic", "--sizes", "40,80,120,160"]
    argv += ["--seeds", "1", "--n-boot", "50", "--param", "calibrating_logistic.delay=2", "--json", str(out)]
    first = submit_curve(runner, argv)
    deadline = time.monotonic() + 90
    while not (out.exists() and json.loads(out.read_text())["points"]):  # the first point, as it lands
        assert time.monotonic() < deadline, runner.log_tail(first)
        runner.tick()
        time.sleep(0.2)
    assert runner.cancel(first).state == "cancelled"
    done = json.loads(out.read_text())["points"]
    assert 1 <= len(done) < 4
    second = submit_curve(runner, argv)
    job = runner.wait(second, timeout=120)
    assert job.state == "succeeded", runner.log_tail(second)
    assert f"{len(done)} of 4 points already there, {4 - len(done)} to fit" in runner.log_tail(second, 200)
    final = json.loads(out.read_text())["points"]
    assert [p["size"] for p in final] == [40, 80, 120, 160]
    assert final[: len(done)] == done  # the finished points as they were (their fit times too): not refitted


def test_results_doc_renders_a_curve(leads_file, tmp_path, calibrating):
    from engine.benchmarks.report import render

    bench = tmp_path / "bench"
    bench.mkdir()
    result = run_curve(
        leads_file, bench / "curve_test.json", ["calibrating_logistic"], [40, "all"], n_boot=50, log=quiet
    )
    text = render(bench)
    assert "**Learning curve** (`bench curve` on leads.csv, 90 test rows; `curve_test.json`" in text
    s40 = next(s for s in result["spread"] if s["size"] == 40)
    p40 = next(p for p in result["points"] if p["size"] == 40 and p["seed"] == 0)
    row = f"| calibrating_logistic | 40 | 3 | {p40['roc_auc']:.3f} [{p40['roc_auc_ci'][0]:.3f}, "
    assert row in text and f"{s40['roc_auc_min']:.3f}-{s40['roc_auc_max']:.3f}" in text
    assert "| calibrating_logistic | 210 | 1 |" in text


def test_flags_before_the_word_curve_are_refused_with_the_fix(capsys, leads_file):
    assert main(["bench", "--data", str(leads_file), "curve"]) == 2
    assert "give bench curve's flags after the word curve" in capsys.readouterr().err
