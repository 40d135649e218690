"""``bench scale`` (engine.benchmarks.scale) and the stack's row budgets for large tables (engine.approaches)."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from engine.approaches import _stack_params as sp
from engine.approaches.stacking import SMALL_PARAMS, StackingApproach
from engine.benchmarks import scale
from engine.data.demo_leads import demo_leads


# -- hostile input: every flag says what is wrong and how to fix it -------------------------------------------
@pytest.mark.parametrize(
    "rows, says",
    [
        ("abc", "'abc' is not a whole number of rows"),
        ("10000,-5", "'-5' is not a whole number of rows"),
        ("500", "outside 1,000 to 1,000,000"),
        ("2000000", "outside 1,000 to 1,000,000"),
        ("10000,10000", "names a size twice"),
        ("", "'' is not a whole number"),
    ],
)
def test_bad_rows_are_refused_with_the_fix(tmp_path, capsys, rows, says):
    with pytest.raises(SystemExit) as stop:
        scale.main(["--rows", rows, "--json", str(tmp_path / "s.json")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Fix: e.g. --rows 10000,100000,1000000" in err or "give each size once" in err
    assert not (tmp_path / "s.json").exists()


def test_bad_json_paths_are_refused_and_nothing_is_overwritten(tmp_path, capsys):
    assert scale.main(["--rows", "1000", "--json", str(tmp_path)]) == 2
    assert "is a folder; give a file name" in capsys.readouterr().err
    assert scale.main(["--rows", "1000", "--json", str(tmp_path / "no" / "s.json")]) == 2
    assert "does not exist; create it" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"models": {"stacking": {}}}))
    assert scale.main(["--rows", "1000", "--json", str(other)]) == 2
    assert "is not a bench scale JSON; choose another file" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert scale.main(["--rows", "1000", "--json", str(broken)]) == 2
    assert "is not a bench scale JSON" in capsys.readouterr().err
    seeded = tmp_path / "seeded.json"
    seeded.write_text(json.dumps({"bench": "scale", "seed": 7, "points": []}))
    assert scale.main(["--rows", "1000", "--json", str(seeded), "--seed", "0"]) == 2
    assert "holds points of seed 7, not 0" in capsys.readouterr().err
    assert json.loads(other.read_text()) == {"models": {"stacking": {}}}
    assert broken.read_text() == "{not json"


def test_the_cli_hands_bench_scale_over(tmp_path, capsys):
    from engine.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["bench", "scale", "--rows", "12", "--json", str(tmp_path / "s.json")])
    assert stop.value.code == 2 and "outside 1,000 to 1,000,000" in capsys.readouterr().err
    assert main(["bench", "--json", "x.json", "scale"]) == 2
    assert "give bench scale's flags after the word scale" in capsys.readouterr().err


def test_summary_says_targets_met_and_growth():
    def point(rows, fit, rss, speed):
        return {
            "rows": rows,
            "fit_seconds": fit,
            "fit_cpu_seconds": fit * 1.5,
            "peak_rss_gb": rss,
            "score_rows_per_second": speed,
        }

    out = scale._summary([point(100_000, 100.0, 2.0, 60_000.0), point(1_000_000, 950.0, 7.0, 40_000.0)])
    assert out["met"] == {"fit_seconds": False, "peak_rss_gb": True, "score_rows_per_second": False}
    assert out["growth"] == [
        {
            "from_rows": 100_000,
            "to_rows": 1_000_000,
            "rows_ratio": 10.0,
            "fit_ratio": 9.5,
            "fit_cpu_ratio": 9.5,
            "at_most_linear": True,
        }
    ]
    out = scale._summary([point(10_000, 1.0, 1.0, 1.0), point(100_000, 20.0, 2.0, 2.0)])
    assert "met" not in out and out["growth"][0]["at_most_linear"] is False


# -- the stage timer on a real (small) training ---------------------------------------------------------------
def test_stage_timer_names_every_part_of_a_real_training(tmp_path):
    from engine.pipeline import train_leads
    from engine.runs import RunStore

    data = tmp_path / "leads.csv"
    demo_leads(600, seed=1).to_csv(data, index=False)
    gc.collect()  # the suite's garbage: a collection inside the fit lands in one clock and not the other
    timer = scale._stage_timer()
    run = train_leads(data, params=dict(SMALL_PARAMS), store=RunStore(tmp_path / "runs"), callbacks=[timer])
    stages = timer.close()
    names = [s["stage"] for s in stages]
    for part in ("out of fold lr", "out of fold rf", "out of fold xgb", "out of fold svc", "refit rf", "meta network"):
        assert any(part in n for n in names if n.startswith("fit: ")), (part, names)
    assert any(n.startswith("evaluate: ") for n in names) and any(n.startswith("explain: ") for n in names)
    fit = sum(s["seconds"] for s in stages if s["stage"].startswith("fit: "))
    # the stages cover the fit: within a quarter, or 2 s on a shared 2-core machine (the full suite measured 3.5 s
    # of stages against a 2.5 s fit once; a stage missing would be off by a whole part of the fit)
    assert fit == pytest.approx(run.metrics["fit_seconds"], rel=0.25, abs=2.0)
    assert all(s["seconds"] >= 0 and s["cpu_seconds"] >= 0 for s in stages)


# -- the row budgets -----------------------------------------------------------------------------------------
def test_row_budget_limits_each_forest_tree_and_leaves_the_rest_alone():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(2000, 5)), rng.integers(0, 2, 2000)
    forest = sp.row_budget(RandomForestClassifier(n_estimators=5, random_state=0), 2000, 300).fit(Z, y)
    assert forest.max_samples == pytest.approx(0.15)
    assert all(t.tree_.weighted_n_node_samples[0] == 300 for t in forest.estimators_)  # each tree's bootstrap
    small = RandomForestClassifier()
    assert sp.row_budget(small, 300, 300).max_samples is None  # within the budget: unchanged
    given = RandomForestClassifier(max_samples=0.5)
    assert sp.row_budget(given, 10_000, 300).max_samples == 0.5  # the user's own choice is kept
    assert sp.row_budget(RandomForestClassifier(bootstrap=False), 10_000, 300).max_samples is None
    assert sp.row_budget(LogisticRegression(), 10_000, 300).get_params() == LogisticRegression().get_params()
    assert sp.row_budget(RandomForestClassifier(), 10_000, 0).max_samples is None  # 0: no budget


def test_a_stack_over_its_budgets_samples_and_still_scores_well():
    X = demo_leads(1500, seed=3)
    y = X.pop("Converted").to_numpy()
    params = {**SMALL_PARAMS, "rf_max_rows": 200, "meta_max_rows": 300, "large_rows": 1000, "large_n_folds": 2}
    stack = StackingApproach(**{**params, "n_folds": 3}).fit(X, y)
    assert stack.n_folds_ == 2  # above large_rows: the large table's folds
    forest = stack.models_["rf"]
    assert all(t.tree_.weighted_n_node_samples[0] == 200 for t in forest.estimators_)
    assert len(stack.train_proba_) == len(y)
    assert stack.meta_.history_  # the meta network was fitted (on its sample)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, stack.predict_proba(X)[:, 1]) > 0.8
    within = StackingApproach(**{**params, "n_folds": 3, "large_rows": 10_000}).folds_for(len(y))
    assert within == 3


def test_sample_rows_is_stratified_and_bounded():
    y = np.array([0] * 900 + [1] * 100)
    stack = StackingApproach(seed=5)
    keep = stack._sample_rows(y, 200)
    assert len(keep) == 200 and np.all(np.diff(keep) > 0) and y[keep].sum() == 20
    assert np.array_equal(stack._sample_rows(y, 5000), np.arange(1000))
    assert np.array_equal(stack._sample_rows(y, None), np.arange(1000))


@pytest.mark.parametrize("key, value", [("rf_max_rows", 0), ("meta_max_rows", -1), ("large_n_folds", 1)])
def test_budget_parameters_are_checked(key, value):
    from engine.pipeline import check_params

    with pytest.raises(ValueError, match=key):
        check_params("stacking", {key: value}, "leads")


@pytest.mark.slow
def test_bench_scale_end_to_end(tmp_path):
    """One real size in its own process, merged with a point of another size kept from the file."""
    out = tmp_path / "scale.json"
    kept = {
        "rows": 5000,
        "fit_seconds": 10.0,
        "fit_cpu_seconds": 10.0,
        "peak_rss_gb": 1.0,
        "score_rows_per_second": 1.0,
    }
    out.write_text(json.dumps({"bench": "scale", "seed": 0, "points": [kept]}))
    result = scale.run_scale([1000], out, verbose=False)
    assert [p["rows"] for p in result["points"]] == [1000, 5000]
    point = result["points"][0]
    assert point["train_rows"] + point["test_rows"] <= 1000 and point["roc_auc"] > 0.7
    assert point["peak_rss_gb"] > 0.2 and point["score_rows_per_second"] > 0 and point["stages"]
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))


def test_results_doc_renders_a_scale_json(tmp_path):
    from engine.benchmarks.report import render

    point = {
        "rows": 1_000_000,
        "train_rows": 630_000,
        "fit_seconds": 812.5,
        "fit_cpu_seconds": 1400.0,
        "train_seconds": 1000.0,
        "peak_rss_gb": 6.5,
        "score_rows_per_second": 52_000.0,
        "score_one_ms": 3.1,
        "roc_auc": 0.8712,
        "load_after": [3.0, 2.0, 1.0],
    }
    payload = {
        "bench": "scale",
        "seed": 0,
        "points": [point],
        "machine": "test box",
        "date": "2026-01-03",
        **scale._summary([point]),
    }
    (tmp_path / "scale_2026-01-03.json").write_text(json.dumps(payload))
    text = render(tmp_path)
    assert "**The stack by size** (`bench scale`, `scale_2026-01-03.json`; 2026-01-03, test box)" in text
    assert "| 1,000,000 | 630,000 | 812.5 | 1,400 | 1,000.0 | 6.50 | 52,000 | 3.10 | 0.8712 | 3.0 |" in text
    assert "fit_seconds 900: met, peak_rss_gb 8: met, score_rows_per_second 50,000: met." in text


def test_points_of_this_run_and_other_sizes_are_all_kept(tmp_path):
    """Sizes land one by one; a file's points of sizes not run now stay, sizes run now are replaced."""
    out = tmp_path / "scale.json"
    old = [{"rows": 5000, "fit_seconds": 1.0}, {"rows": 10000, "fit_seconds": 2.0}]
    out.write_text(json.dumps({"bench": "scale", "seed": 0, "points": old}))
    first = {"rows": 10000, "fit_seconds": 3.0}
    assert scale._merge(out, 0, [10000, 20000], [first]) == [old[0], first]
    out.write_text(json.dumps({"bench": "scale", "seed": 0, "points": [old[0], first]}))  # as written after it
    second = {"rows": 20000, "fit_seconds": 4.0}
    assert scale._merge(out, 0, [10000, 20000], [first, second]) == [old[0], first, second]
