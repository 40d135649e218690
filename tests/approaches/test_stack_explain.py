"""The stack's fast explanations: each exact part against a reference (shap, brute force), exact
additivity of the whole, agreement with the permutation Shapley values, the output table, the parameter."""

import math
import time
from itertools import combinations

import numpy as np
import pytest
from scipy.stats import pearsonr

from engine.approaches import _fast_explain as fx
from engine.approaches._stack_parts import forest_arrays as _forest_arrays
from engine.approaches._stack_parts import forest_leaves as _forest_leaves
from engine.approaches.base import CONTRIBUTION_COLUMNS
from engine.approaches.stacking import SMALL_PARAMS, StackingApproach
from engine.evaluate import protocol_split

SMALL = {**SMALL_PARAMS, "explain_background": 15, "explain_permutations": 4}


def _leads(n=900):
    from engine.data.demo_leads import demo_leads
    from engine.data.leads import load_leads

    table = load_leads(demo_leads(n=n, seed=0))
    return table.X, table.y


@pytest.fixture(scope="module")
def stack():
    X, y = _leads(900)
    tr, te = protocol_split(y)
    return StackingApproach(**SMALL).fit(X.iloc[tr], y[tr]), X.iloc[te].reset_index(drop=True)


def test_xgboost_table_equals_shap_interventional():
    import shap
    from xgboost import XGBClassifier

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 6))
    y = (Z[:, 0] + Z[:, 1] * Z[:, 2] + rng.normal(size=400) > 0).astype(int)
    model = XGBClassifier(n_estimators=30, max_depth=4, n_jobs=1).fit(Z, y)
    bg = Z[:20]
    table = fx.TreeTable.from_xgboost(model.get_booster(), bg)
    ref = shap.TreeExplainer(
        model.get_booster(), data=bg, feature_perturbation="interventional", model_output="raw"
    ).shap_values(Z[20:60], check_additivity=False)
    np.testing.assert_allclose(table.shap_values(Z[20:60]), ref, atol=1e-5)
    margin = model.get_booster().inplace_predict(Z, predict_type="margin")
    np.testing.assert_allclose(table.shap_values(Z[20:60]).sum(axis=1), margin[20:60] - margin[:20].mean(), atol=1e-5)


def test_forest_saabas_equals_shap_approximate(stack):
    import shap

    model, X = stack
    forest = model.models_["rf"]
    Z = model.features_.transform(X.iloc[:250])
    saabas = fx.ForestSaabas(_forest_arrays(forest), Z.shape[1])
    ref = np.asarray(
        shap.TreeExplainer(forest).shap_values(
            Z.astype(np.float32).astype(np.float64), approximate=True, check_additivity=False
        )
    )[..., 1]
    for rows in (Z[:5], Z):  # the NumPy walk (few rows) and scikit-learn's apply (many) give the same leaves
        np.testing.assert_allclose(saabas.values(_forest_leaves(forest, rows)), ref[: len(rows)], atol=1e-12)


def test_meta_shapley_equals_brute_force():
    rng = np.random.default_rng(1)
    W1, W2 = rng.normal(size=(4, 5)), rng.normal(size=5)
    f = lambda A: 1 / (1 + np.exp(-(np.maximum(A @ W1, 0) @ W2)))  # noqa: E731
    M, M_bg = rng.normal(size=(3, 4)), rng.normal(size=(7, 4))

    def v(x, S):
        h = M_bg.copy()
        h[:, list(S)] = x[list(S)]
        return f(h).mean()

    k = 4
    brute = np.zeros((3, k))
    for r, x in enumerate(M):
        for i in range(k):
            rest = [j for j in range(k) if j != i]
            for s in range(k):
                for S in combinations(rest, s):
                    w = math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                    brute[r, i] += w * (v(x, S + (i,)) - v(x, S))
    np.testing.assert_allclose(fx.meta_shapley(f, M, M_bg), brute, atol=1e-12)
    grouped = fx.meta_shapley(f, M, M_bg, players=[[0], [1], [2, 3]])
    np.testing.assert_allclose(grouped.sum(axis=1), f(M) - f(M_bg).mean(), atol=1e-12)
    np.testing.assert_allclose(grouped[:, 2], brute[:, 2] + brute[:, 3], atol=0.2)  # loose: Owen != sum


def test_rescale_keeps_each_row_sum():
    Phi = np.array([0.3, -0.2, 0.1])
    phi = np.array([[1.0, 2.0, -1.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])  # normal, flat, zero
    out = fx.rescale(Phi, phi)
    np.testing.assert_allclose(out.sum(axis=1), Phi, atol=1e-15)
    np.testing.assert_allclose(out[0], 0.3 * phi[0] / 2.0)
    assert np.all(np.isfinite(out))


def test_fast_explain_is_exactly_additive_and_keeps_the_table(stack):
    model, X = stack
    assert model.explain_method == "fast"
    rows = X.iloc[:200]
    start = time.perf_counter()
    contrib = model.explain_matrix(rows)
    elapsed = time.perf_counter() - start
    p = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(contrib.sum(axis=1), p - model.expected_value(), atol=1e-9)
    assert elapsed < 20  # a few ms a lead (plus the one-off tables); the permutation path takes ~0.1 s a lead
    table = model.explain(rows.iloc[:3])
    perm = model.explain(rows.iloc[:3], method="permutation")
    assert list(table.columns) == CONTRIBUTION_COLUMNS and len(table) == 3 * X.shape[1]
    key = ["row", "feature"]
    merged = table.merge(perm, on=key, suffixes=("", "_perm"))
    assert len(merged) == len(table) and (merged["value"] == merged["value_perm"]).all()  # same value texts
    for r in range(3):
        part = table[table["row"] == r]
        assert part["contribution"].sum() == pytest.approx(p[r] - model.expected_value(), abs=1e-9)
        assert perm[perm["row"] == r]["contribution"].sum() == pytest.approx(p[r] - model.expected_value(), abs=1e-9)
    one = model.explain_matrix(rows.iloc[[5]])  # a lead's explanation does not depend on its neighbours
    np.testing.assert_allclose(one[0], contrib[5], atol=1e-12)


def test_fast_agrees_with_many_permutations(stack):
    model, X = stack
    rows = X.iloc[:12]
    fast = model.explain_matrix(rows)
    perm = model.explain_matrix(rows, method="permutation", n_permutations=64)
    active = [j for j, c in enumerate(model.columns_) if model.groups_[c]]
    corr = [pearsonr(f[active], q[active])[0] for f, q in zip(fast, perm)]
    top3 = [len(set(np.argsort(-np.abs(f))[:3]) & set(np.argsort(-np.abs(q))[:3])) / 3 for f, q in zip(fast, perm)]
    assert np.mean(corr) > 0.8, corr
    assert np.mean(top3) > 0.5, top3


def test_explain_method_parameter(stack):
    model, X = stack
    with pytest.raises(ValueError, match="explain method"):
        model.explain(X.iloc[:2], method="exactish")
    other = StackingApproach(explain_method="permutation")
    assert other.get_params()["explain_method"] == "permutation"
    from engine.pipeline import build_approach

    assert build_approach("stacking", {"explain_method": "permutation"}, "leads").explain_method == "permutation"
    with pytest.raises((TypeError, ValueError)):
        build_approach("stacking", {"explain_method": 3}, "leads")


def test_fast_explain_after_save_and_load(stack, tmp_path):
    model, X = stack
    model.save(tmp_path / "m")
    loaded = StackingApproach.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.explain_matrix(X.iloc[:20]), model.explain_matrix(X.iloc[:20]), atol=1e-12)
