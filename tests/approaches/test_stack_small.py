"""The stack on tiny training sets: below ``meta_min_rows`` rows the meta step is the equal-weight mean of the base
models' standardised out-of-fold margins (a network learning weights from a few dozen noisy out-of-fold rows ended
up inverted: ROC-AUC 0.44 on 50 Leads.csv rows, docs/RESULTS.md); at or above it the stack is unchanged."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from engine import curves
from engine.approaches import _stack_parts as parts
from engine.approaches.registry import load_approach
from engine.approaches.stacking import SMALL_PARAMS, StackingApproach
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.evaluate import protocol_split
from engine.pipeline import check_params


def _subset(table, size: int, seed: int):
    """The learning curve's nested, stratified subset of ``size`` training rows, and the protocol's test rows."""
    y = np.asarray(table.y).astype(int)
    tr, te = protocol_split(table.y, test_size=0.3, seed=42)
    rows = curves.Curve(table.X, y, tr, te).subset(size, seed)
    return table.X.iloc[rows], y[rows], table.X.iloc[te], y[te]


@pytest.mark.slow
def test_fifty_real_leads_rank_held_out_leads_well_above_chance(leads_csv):
    """The finding itself: 50 Leads.csv rows (the curve's first draw). With the network (meta_min_rows=0, the stack
    before the rule) the held-out ROC-AUC was 0.43; the base models it averages score 0.72-0.78 on their own."""
    X, y, X_test, y_test = _subset(load_leads(leads_csv), 50, 0)
    model = StackingApproach().fit(X, y)
    assert model.meta_rule_ == "mean"
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.65


def test_tiny_training_set_uses_the_mean_of_the_base_models():
    """60 demo leads: the meta step is the mean of the standardised margins, its probabilities average the
    training rows' conversion rate, it ranks held-out leads well above chance, explains additively, and a saved
    run scores the same after loading."""
    X, y, X_test, y_test = _subset(load_leads(demo_leads(n=1500, seed=3)), 60, 0)
    model = StackingApproach(**SMALL_PARAMS).fit(X, y)
    assert model.meta_rule_ == "mean" and model.meta_best_epoch_ == 0
    M = (model.oof_margins_ - model.meta_mean_) / model.meta_scale_
    p_train = model.meta_.predict_proba(M)[:, 1]
    assert p_train.mean() == pytest.approx(y.mean(), abs=1e-6)
    # a monotone function of the plain mean: the same order as the mean of the standardised margins
    assert roc_auc_score(y, p_train) == pytest.approx(roc_auc_score(y, M.mean(axis=1)), abs=1e-12)
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.65
    rows = X_test.iloc[:2]
    table = model.explain(rows)
    for r in range(2):
        p = model.predict_proba(rows.iloc[[r]])[0, 1]
        got = table.loc[table["row"] == r, "contribution"].sum()
        assert got == pytest.approx(p - model.expected_value(), abs=1e-9)


def test_a_saved_mean_rule_run_loads_with_it(tmp_path):
    X, y, X_test, _ = _subset(load_leads(demo_leads(n=600, seed=4)), 60, 1)
    model = StackingApproach(**SMALL_PARAMS).fit(X, y)
    model.save(tmp_path / "m")
    loaded = load_approach(tmp_path / "m")
    assert loaded.meta_rule_ == "mean" and loaded.get_params()["meta_min_rows"] == 200
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), rtol=0, atol=1e-7)


def test_the_mean_rule_without_the_linear_path_gives_the_same_probabilities():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(80, 5))  # four margins and one raw feature (which weighs nothing)
    y = (rng.random(80) < 0.3).astype(int)
    wide = parts.MetaNetwork(linear_skip=True).fit_mean(M, y, n_margins=4)
    deep = parts.MetaNetwork(linear_skip=False, hidden=4).fit_mean(M, y, n_margins=4)
    z = M[:, :4].mean(axis=1)
    for meta in (wide, deep):
        p = meta.predict_proba(M)[:, 1]
        assert p.mean() == pytest.approx(y.mean(), abs=1e-6)
        slope = np.polyfit(z, np.log(p / (1 - p)), 1)[0]
        assert slope == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(wide.predict_proba(M), deep.predict_proba(M), atol=1e-6)
    with pytest.raises(ValueError, match="meta_linear_skip"):
        parts.MetaNetwork(linear_skip=False, hidden=1).fit_mean(M, y, n_margins=4)


def test_at_or_above_the_threshold_the_stack_is_unchanged():
    """1,000 training rows: the default stack is the network, prediction for prediction the stack with the rule off
    (meta_min_rows=0, the code path of the stack before the rule); the threshold itself is the network too."""
    X, y, X_test, _ = _subset(load_leads(demo_leads(n=2000, seed=5)), 1000, 0)
    default = StackingApproach(**SMALL_PARAMS).fit(X, y)
    before = StackingApproach(**SMALL_PARAMS, meta_min_rows=0).fit(X, y)
    assert default.meta_rule_ == before.meta_rule_ == "network" and default.meta_best_epoch_ > 0
    np.testing.assert_array_equal(default.predict_proba(X_test), before.predict_proba(X_test))
    X, y, _, _ = _subset(load_leads(demo_leads(n=600, seed=5)), 60, 0)
    assert StackingApproach(**SMALL_PARAMS, meta_min_rows=60).fit(X, y).meta_rule_ == "network"
    assert StackingApproach(**SMALL_PARAMS, meta_min_rows=61).fit(X, y).meta_rule_ == "mean"
    # the training rows decide, not the meta network's sample of them (meta_max_rows)
    assert StackingApproach(**SMALL_PARAMS, meta_min_rows=60, meta_max_rows=30).fit(X, y).meta_rule_ == "network"


@pytest.mark.parametrize("value", [-1, 1.5, "200", True, float("nan"), float("inf")])
def test_hostile_meta_min_rows_is_refused(value):
    with pytest.raises(ValueError, match="meta_min_rows"):
        check_params("stacking", {"meta_min_rows": value}, "leads")
    X, y, _, _ = _subset(load_leads(demo_leads(n=300, seed=6)), 40, 0)
    with pytest.raises(ValueError, match="meta_min_rows.*at least 0"):
        StackingApproach(**SMALL_PARAMS, meta_min_rows=value).fit(X, y)
