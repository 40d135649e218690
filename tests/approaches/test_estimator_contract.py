"""Every approach is a scikit-learn estimator: clone, get_params/set_params, classes_ after fit, and the
parts of scikit-learn's own estimator checks that apply to an estimator whose input is a DataFrame."""

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.utils import estimator_checks as checks

from engine.approaches.registry import REGISTRY, get_approach_class
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.pipeline import build_approach

NON_DEFAULT = {
    "stacking": {"n_folds": 3, "xgb_max_depth": 2, "explain_method": "permutation"},
    "lora": {"r": 4, "target_modules": ("q_proj",), "epochs": 0.5},
    "embeddings": {"classifier_type": "xgboost", "n_pairs": 3, "epochs": 2},
}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_clone_keeps_every_parameter_and_no_fitted_state(name):
    model = build_approach(name, NON_DEFAULT[name])
    model.fitted_thing_ = object()  # fitted state must not survive a clone
    twin = clone(model)
    assert type(twin) is type(model) and twin is not model
    assert twin.stored_params() == model.stored_params()  # every setting, base models' included, as JSON
    assert not hasattr(twin, "fitted_thing_")
    assert is_classifier(model)
    assert set(model.get_params(deep=False)) == set(get_approach_class(name)._param_names())
    assert set(model.get_params(deep=False)) <= set(model.get_params(deep=True))
    with pytest.raises(ValueError):
        model.set_params(no_such_parameter=1)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_scikit_learn_checks_that_apply(name):
    """check_estimator as a whole feeds NumPy arrays to fit, which these approaches refuse by design (a lead
    table's columns have names and kinds; a transcript is text), so only the checks that need no fit run:
    constructor defaults, no attributes set in __init__, get_params invariance and set_params."""
    cls = get_approach_class(name)
    checks.check_parameters_default_constructible(name, cls())
    checks.check_no_attributes_set_in_init(name, cls())
    checks.check_get_params_invariance(name, cls())
    checks.check_set_params(name, cls())


def test_a_fitted_stack_has_classes_and_a_clone_refits_the_same():
    table = load_leads(demo_leads(n=300, seed=4))
    fast = {
        "n_folds": 2,
        "rf_n_estimators": 10,
        "xgb_n_estimators": 10,
        "meta_epochs": 3,
        "svc_max_rows": 100,
        "n_jobs": 1,
        "explain_background": 5,
    }
    model = build_approach("stacking", fast).fit(table.X, table.y)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    again = clone(model).fit(table.X, table.y)
    np.testing.assert_allclose(again.predict_proba(table.X), model.predict_proba(table.X), atol=1e-6)
