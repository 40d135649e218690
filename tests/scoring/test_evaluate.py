"""engine.evaluate: the protocol split, metrics (checked against scikit-learn), bootstrap intervals,
curves, thresholds, scores and timing."""

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from engine.evaluate import (
    METRIC_NAMES,
    ScoreScale,
    choose_threshold,
    compute_metrics,
    confusion_at,
    curve_data,
    protocol_split,
    time_scoring,
    to_score,
)


def _scores(n, seed=0, signal=1.5, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.38).astype(int)
    logit = signal * (2 * y - 1) + rng.normal(0, 1.5, n)
    p = 1 / (1 + np.exp(-logit))
    if ties:
        p = np.round(p, 2)  # many tied scores
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_metric_values_equal_scikit_learn(ties):
    y, p = _scores(1500, seed=3, ties=ties)
    m = compute_metrics(y, p, n_boot=50)
    assert set(m) == set(METRIC_NAMES)
    pred = (p >= 0.5).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "brier": skm.brier_score_loss(y, p),
        "log_loss": skm.log_loss(y, p),
    }
    for name, value in expected.items():
        assert m[name]["value"] == pytest.approx(value, abs=1e-10), name
    # ECE: hand-computed with 10 equal-width bins
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(
        (bins == b).mean() * abs(p[bins == b].mean() - y[bins == b].mean()) for b in range(10) if (bins == b).any()
    )
    assert m["ece"]["value"] == pytest.approx(ece, abs=1e-12)


def test_bootstrap_intervals_contain_value_and_narrow_with_more_data():
    y_small, p_small = _scores(300, seed=1)
    y_big, p_big = _scores(6000, seed=1)
    small = compute_metrics(y_small, p_small, n_boot=400, seed=0)
    big = compute_metrics(y_big, p_big, n_boot=400, seed=0)
    for name in METRIC_NAMES:
        for m in (small, big):
            assert m[name]["low"] <= m[name]["value"] <= m[name]["high"], name
        width_small = small[name]["high"] - small[name]["low"]
        width_big = big[name]["high"] - big[name]["low"]
        assert width_big < width_small, name
    assert small["roc_auc"]["high"] - small["roc_auc"]["low"] > 0.02  # a real interval, not a point


def test_bootstrap_is_deterministic_and_fast():
    y, p = _scores(3000, seed=2)
    start = time.process_time()  # CPU time: wall time on a shared machine says little
    a = compute_metrics(y, p, n_boot=1000, seed=0)
    elapsed = time.process_time() - start
    b = compute_metrics(y, p, n_boot=1000, seed=0)
    assert a == b
    assert elapsed < 1.5  # about 0.4 s of CPU


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="rows"):
        compute_metrics([0, 1, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="0/1"):
        compute_metrics([0, 2], [0.2, 0.8])


def test_protocol_split_is_stratified_and_deterministic():
    y = np.array([1] * 300 + [0] * 700)
    tr, te = protocol_split(y)
    tr2, te2 = protocol_split(y)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    assert len(te) == 300 and len(tr) == 700
    assert not set(tr) & set(te) and len(set(tr) | set(te)) == 1000
    assert y[te].mean() == pytest.approx(0.3, abs=0.005)
    assert y[tr].mean() == pytest.approx(0.3, abs=0.005)
    _, te3 = protocol_split(y, seed=7)
    assert set(te3) != set(te)
    with pytest.raises(ValueError, match="each class"):
        protocol_split(np.array([0] * 50 + [1]))


def test_curve_data_shapes_and_json():
    y, p = _scores(5000, seed=4)
    c = curve_data(y, p)
    json.dumps(c)
    assert 2 <= len(c["roc"]["fpr"]) <= 200 and len(c["roc"]["fpr"]) == len(c["roc"]["tpr"])
    assert c["roc"]["fpr"][0] == 0.0 and c["roc"]["tpr"][-1] == 1.0
    assert np.all(np.diff(c["roc"]["fpr"]) >= 0)
    assert len(c["pr"]["precision"]) <= 200 and len(c["pr"]["precision"]) == len(c["pr"]["recall"])
    assert sum(c["calibration"]["count"]) == 5000
    assert len(c["gains"]["fraction"]) == 100 and c["gains"]["captured"][-1] == pytest.approx(1.0)
    assert np.all(np.diff(c["gains"]["captured"]) >= 0)
    assert c["deciles"]["lift"][0] > 1.5  # informative scores: top decile converts far above average
    bands = c["score_bands"]
    assert bands["band"] == ["1-20", "21-40", "41-60", "61-80", "81-99"]
    assert sum(bands["count"]) == 5000
    rates = [r for r in bands["conversion_rate"] if r is not None]
    assert rates == sorted(rates)  # higher score band, higher conversion


def test_older_score_scale_and_tiers_by_quartiles():
    np.testing.assert_array_equal(to_score([0.0, 0.5, 1.0, 0.004]), [1, 50, 99, 1])
    legacy = ScoreScale.from_metrics({"train_score_quartiles": [0.2, 0.4, 0.6]})
    assert not legacy.by_rank
    assert list(legacy.tier([0.9, 0.5, 0.3, 0.1, 0.6])) == ["A", "B", "C", "D", "A"]
    same_score = [0.6 - 0.001, 0.6 + 0.001]  # shown with the same score: the same tier
    assert len(set(legacy.score(same_score))) == 1 and list(legacy.tier(same_score)) == ["A", "A"]


@pytest.mark.parametrize("rate", [0.02, 0.11, 0.40])
def test_tiers_are_quarters_of_the_training_leads_at_any_conversion_rate(rate):
    """A real model's probabilities on leads that convert at ``rate``: the tiers split the training leads into
    quarters, are monotone in the probability, and the score separates the leads (not all 1)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    n = 8000
    X = rng.normal(size=(n, 3))
    logit = X @ np.array([1.2, -0.8, 0.5]) + np.log(rate / (1 - rate)) - 0.6
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = LogisticRegression().fit(X[:6000], y[:6000])
    train_p, new_p = model.predict_proba(X[:6000])[:, 1], model.predict_proba(X[6000:])[:, 1]
    scale = ScoreScale.from_training(train_p)
    shares = pd.Series(scale.tier(train_p)).value_counts(normalize=True)
    assert set(shares.index) == {"A", "B", "C", "D"}
    np.testing.assert_allclose(shares[["A", "B", "C", "D"]].to_numpy(), 0.25, atol=0.01)
    new_shares = pd.Series(scale.tier(new_p)).value_counts(normalize=True)  # new leads from the same source
    assert new_shares.min() > 0.2
    order = np.argsort(new_p)
    rank = {"D": 0, "C": 1, "B": 2, "A": 3}
    tiers = np.array([rank[t] for t in scale.tier(new_p[order])])
    scores = scale.score(new_p[order])
    assert (np.diff(tiers) >= 0).all() and (np.diff(scores) >= 0).all()  # never above a likelier lead
    assert scores.min() >= 1 and scores.max() <= 99 and len(np.unique(scores)) > 90
    if rate == 0.02:  # the older probability scale gives most of these leads the same score
        assert (to_score(new_p) <= 2).mean() > 0.5 and (scores <= 2).mean() < 0.05
    stored = ScoreScale.from_metrics(scale.to_metrics())
    np.testing.assert_array_equal(stored.score(new_p), scale.score(new_p))
    assert stored.by_rank and scale.to_metrics()["train_score_quartiles"] == pytest.approx(
        np.quantile(train_p, [0.25, 0.5, 0.75])
    )


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"train_score_percentiles": [0.5] * 10},
        {"train_score_percentiles": [float("nan")] * 99},
        {"train_score_percentiles": list(np.linspace(1, 0, 99))},  # out of order
        {"train_score_percentiles": "many"},
        {"train_score_quartiles": [0.2, 0.5, 7.0]},
        {"train_score_quartiles": ["a", "b", "c"]},
    ],
)
def test_a_damaged_stored_scale_is_no_scale(metrics):
    assert ScoreScale.from_metrics(metrics) is None


def test_score_scale_refuses_non_finite_training_probabilities():
    with pytest.raises(ValueError, match="finite probabilities"):
        ScoreScale.from_training([0.1, float("nan")])


def test_thresholds_on_constructed_data():
    # positives at 0.7-0.9, negatives at 0.1-0.6 except a few: best cut is around 0.65
    y = np.array([1] * 40 + [0] * 60)
    p = np.r_[np.linspace(0.7, 0.9, 40), np.linspace(0.1, 0.6, 60)]
    for method in ("f1", "youden"):
        t = choose_threshold(y, p, method=method)
        assert 0.6 < t <= 0.7
        assert confusion_at(y, p, t)["accuracy"] == 1.0
    # calling is cheap relative to a conversion: call (almost) everyone with any chance
    assert choose_threshold(y, p, "cost", cost_per_call=1, value_per_conversion=1000) <= 0.7
    # calling costs more than a conversion is worth: call nobody
    t = choose_threshold(y, p, "cost", cost_per_call=10, value_per_conversion=1)
    assert confusion_at(y, p, t)["tp"] + confusion_at(y, p, t)["fp"] == 0
    with pytest.raises(ValueError, match="youden"):
        choose_threshold(y, p, method="magic")
    c = confusion_at(y, p, 0.65)
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (40, 0, 60, 0)


def test_time_scoring_measures_a_model():
    class Slow:
        def predict_proba(self, X):
            time.sleep(0.002)
            p = np.full(len(X), 0.3)
            return np.column_stack([1 - p, p])

    X = pd.DataFrame({"a": np.arange(500)})
    t = time_scoring(Slow(), X, n_one=5)
    assert t["score_one_ms"] >= 2.0
    assert t["score_rows_per_second"] > 1000


def test_paired_roc_auc_difference_is_zero_for_the_same_scores_and_positive_for_better_ones():
    from sklearn.metrics import roc_auc_score

    from engine.evaluate import paired_difference

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 0.8, 300)
    noise = rng.normal(0, 1, 300)
    same = paired_difference(y, good, good, "roc_auc", n_boot=200)
    assert same == {"value": 0.0, "low": 0.0, "high": 0.0}
    diff = paired_difference(y, good, noise, "roc_auc", n_boot=500)
    assert np.isclose(diff["value"], roc_auc_score(y, good) - roc_auc_score(y, noise))
    assert 0 < diff["low"] < diff["value"] < diff["high"]


def test_the_verdict_of_a_paired_difference_reads_its_interval():
    """engine.verdicts.difference_verdict, shared by the blend and the text-worth board, on real paired intervals
    and on the edges: an interval touching 0 is no clear difference."""
    from engine.evaluate import paired_difference
    from engine.verdicts import difference_verdict

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good, noise = y + rng.normal(0, 0.8, 300), rng.normal(0, 1, 300)
    assert difference_verdict(paired_difference(y, good, noise, n_boot=300)) == "better"
    assert difference_verdict(paired_difference(y, noise, good, n_boot=300)) == "worse"
    assert difference_verdict(paired_difference(y, good, good, n_boot=300)) == "no clear difference"
    assert difference_verdict({"value": 0.01, "low": 0.0, "high": 0.02}) == "no clear difference"
    assert difference_verdict({"value": -0.01, "low": -0.02, "high": 0.0}) == "no clear difference"
    assert difference_verdict({}) == "no clear difference"  # a blend recorded without its interval
