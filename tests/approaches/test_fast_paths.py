"""The stack's hand-written NumPy prediction paths (kept: they make one-lead scoring take milliseconds) equal
the libraries they stand in for, on random and real inputs; the private library attributes they read are
pinned and checked."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn

from engine.approaches import stacking
from engine.approaches._stack_parts import MetaNetwork, forest_leaves, forest_proba, meta_forward, svc_decision
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.pipeline import build_approach

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
FAST = {**stacking.SMALL_PARAMS, "explain_background": 5}


@pytest.fixture(scope="module")
def stack():
    table = load_leads(demo_leads(n=500, seed=12))
    model = build_approach("stacking", FAST).fit(table.X, table.y)
    Z = model.features_.transform(table.X)
    rng = np.random.default_rng(0)
    noise = Z + rng.normal(0, 1.0, Z.shape)  # random inputs around the real ones, outside them too
    return model, Z, noise


def test_forest_walk_equals_scikit_learn(stack):
    model, Z, noise = stack
    forest = model.models_["rf"]
    for X in (Z[:150], noise[:150]):  # the NumPy walk serves fewer than 200 rows
        np.testing.assert_allclose(forest_proba(forest, X), forest.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(forest_leaves(forest, X), forest.apply(X.astype(np.float32)))


def test_svc_decision_equals_scikit_learn(stack):
    model, Z, noise = stack
    svc = model.models_["svc"]
    for X in (Z, noise):
        np.testing.assert_allclose(svc_decision(svc, X), svc.decision_function(X), rtol=0, atol=1e-9)


def test_meta_network_forward_equals_keras(stack):
    model, Z, noise = stack
    keras_model = model._keras_meta()
    for X in (Z, noise):
        M = model._meta_inputs(model._margins(X), X)
        want = np.asarray(keras_model.predict(M.astype(np.float32), verbose=0)).ravel()
        np.testing.assert_allclose(meta_forward(model.meta_weights_, M), want, rtol=0, atol=2e-5)
        np.testing.assert_array_equal(model._meta_forward(M), meta_forward(model.meta_weights_, M))


def test_private_attributes_read_are_pinned_and_mean_what_we_assume(stack):
    """svc_decision reads SVC._gamma (scikit-learn's resolved gamma); that is only safe under the pinned
    version, and only while it still equals the documented formula for gamma='scale'."""
    pinned = next(
        line.split("==")[1].strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.startswith("scikit-learn==")
    )
    assert sklearn.__version__ == pinned, "scikit-learn changed: re-check the private attributes the stack reads"
    model, Z, _ = stack
    svc = model.models_["svc"]
    assert svc.gamma == "scale" and hasattr(svc, "_gamma")
    fitted_rows = svc.support_vectors_.shape[1]
    assert fitted_rows == Z.shape[1]
    assert svc._gamma > 0 and np.isfinite(svc._gamma)


def test_the_stack_uses_the_one_fast_path_module():
    """The NumPy re-implementations live in engine.approaches._stack_parts only: the stack and its explanation
    module define no function of their own with those names."""
    import inspect

    from engine.approaches import _stack_explain, _stack_parts

    fast = {"forest_proba", "forest_leaves", "forest_arrays", "walk", "svc_decision", "meta_forward", "logit"}
    for module in (stacking, _stack_explain):
        defined = {
            name.lstrip("_")
            for name, obj in vars(module).items()
            if inspect.isfunction(obj) and obj.__module__ == module.__name__
        }
        assert not defined & fast, (module.__name__, defined & fast)
    assert {name for name in fast if inspect.isfunction(getattr(_stack_parts, name, None))} == fast


def test_meta_network_stops_early_and_its_numpy_forward_equals_keras():
    """MetaNetwork: __init__ stores parameters only; training stops once the validation loss stops moving
    (long before ``epochs``), the best weights restored; predict_proba (NumPy) equals keras on random inputs."""
    meta = MetaNetwork(hidden=4, epochs=300, patience=3, batch_size=32, refit_full=False, seed=0)
    assert not hasattr(meta, "model_") and vars(meta)["patience"] == 3
    rng = np.random.default_rng(0)
    M = rng.normal(size=(400, 3))
    y = (rng.random(400) < 1 / (1 + np.exp(-M[:, 0]))).astype(int)
    meta.fit(M, y)
    assert meta.epochs_run_ < 300 and meta.best_epoch_ <= meta.epochs_run_
    assert meta.epochs_run_ - meta.best_epoch_ <= 3
    noise = rng.normal(0, 3.0, (200, 3))
    want = np.asarray(meta.model_.predict(noise.astype(np.float32), verbose=0)).ravel()
    np.testing.assert_allclose(meta.predict_proba(noise)[:, 1], want, rtol=0, atol=2e-5)


def test_feature_transform_of_a_few_rows_equals_the_column_transformer(stack):
    """The NumPy transform of the fitted ColumnTransformer (used up to 10,000 rows) equals scikit-learn's, on
    real rows and on hostile ones: unseen levels, missing values, numbers as text, negative numbers."""
    from engine.approaches._stack_parts import FEATURES_NUMPY_ROWS, features_transform

    model, _, _ = stack
    table = load_leads(demo_leads(n=500, seed=12))
    real = table.X.iloc[:150]
    rng = np.random.default_rng(1)
    odd = real.copy()
    for col in odd.columns:
        pick = rng.random(len(odd)) < 0.4
        if pd.api.types.is_numeric_dtype(odd[col]):
            odd[col] = np.where(pick, np.nan, -odd[col].to_numpy(dtype=float) * rng.random(len(odd)) * 3)
        else:
            odd[col] = pd.array(np.where(pick, "never seen before", odd[col].astype(object)), dtype=object)
            odd.loc[odd.index[:5], col] = None
    text_numbers = real.copy()
    for col in text_numbers.columns:
        if pd.api.types.is_numeric_dtype(text_numbers[col]):
            text_numbers[col] = text_numbers[col].astype(str).where(rng.random(len(real)) < 0.7, "n/a")
    for X in (real, odd, text_numbers, real.iloc[[3]], table.X):
        assert len(X) <= FEATURES_NUMPY_ROWS
        np.testing.assert_array_equal(features_transform(model.features_, X), model.features_.transform(X))
