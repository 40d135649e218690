"""The stack's base models as a list of (name, estimator): nested settings, the flat names as aliases, a fifth
model the stack's code does not know, runs saved before the change, and the same numbers as before."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression
from sklearn.metrics import roc_auc_score

from engine.approaches.registry import load_approach
from engine.approaches.stacking import SMALL_PARAMS, StackingApproach, default_estimators
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.pipeline import build_approach, check_params

#: a stack saved by the engine before this change (see make_old.py beside it)
BEFORE = Path(__file__).parent / "fixtures" / "stack_before_estimators"


@pytest.fixture(scope="module")
def before_table():
    return load_leads(demo_leads(n=240, seed=4))


# -- settings: nested is canonical, the flat names are aliases --------------------------------------------
def test_default_stack_lists_its_base_models_settings_nested_and_set_params_changes_them():
    stack = StackingApproach()
    deep = stack.get_params(deep=True)
    assert [deep[name].__class__.__name__ for name in ("lr", "rf", "xgb", "svc")] == [
        "LogisticRegression",
        "RandomForestClassifier",
        "XGBClassifier",
        "SVC",
    ]
    assert deep["xgb__max_depth"] == 4 and deep["rf__n_estimators"] == 300 and deep["lr__C"] == 0.3
    assert stack.set_params(xgb__max_depth=3) is stack
    assert stack.get_params()["xgb__max_depth"] == 3
    assert clone(stack).get_params()["xgb__max_depth"] == 3  # clone keeps it
    assert StackingApproach().get_params()["xgb__max_depth"] == 4  # no other stack's default changed
    stack.set_params(rf_n_estimators=7)  # the flat name sets the same setting
    assert stack.get_params()["rf__n_estimators"] == 7
    with pytest.raises(ValueError, match="names no base model"):
        stack.set_params(gbm__max_depth=3)
    with pytest.raises(ValueError, match="no parameter 'nonsense'"):
        stack.set_params(nonsense=1)


def test_flat_and_nested_names_are_one_setting_everywhere_data_comes_in():
    flat = StackingApproach(xgb_max_depth=3, lr_C=0.5)
    nested = build_approach("stacking", {"xgb__max_depth": 3, "lr__C": 0.5})
    assert flat.stored_params() == nested.stored_params()
    assert flat.get_params()["xgb__max_depth"] == 3 and nested.get_params()["lr__C"] == 0.5
    # checked the same under both names: type and range
    assert check_params("stacking", {"xgb__max_depth": 3.0, "rf_max_features": 0.5}) == {
        "xgb__max_depth": 3,
        "rf_max_features": 0.5,
    }
    with pytest.raises(ValueError, match=r"'xgb__max_depth'.*from 1 to 64"):
        check_params("stacking", {"xgb__max_depth": 0})
    with pytest.raises(ValueError, match=r"'lr__C'.*a number"):
        check_params("stacking", {"lr__C": "high"})
    # a setting of a default model without a flat name is there too; names that are none are refused with the fix
    assert check_params("stacking", {"rf__criterion": "entropy"}) == {"rf__criterion": "entropy"}
    for bad in ("xgb__no_such_setting", "gbm__max_depth", "estimators"):
        with pytest.raises(ValueError, match=r"no parameter\(s\).*MODEL__SETTING"):
            check_params("stacking", {bad: 1})
    with pytest.raises(ValueError, match="given twice"):
        StackingApproach(xgb_max_depth=3, xgb__max_depth=4)
    with pytest.raises(ValueError, match="'rf__n_estimators' names no base model"):
        StackingApproach(estimators=[("hgb", HistGradientBoostingClassifier())], rf_n_estimators=20)


def test_the_train_form_keeps_the_flat_names_and_their_defaults():
    form = StackingApproach.data_params()
    assert "estimators" not in form  # objects: set from Python
    for name in ("xgb_max_depth", "rf_n_estimators", "lr_C", "svc_gamma", "meta_epochs", "n_folds"):
        assert name in form
    defaults = StackingApproach().get_params()
    assert form["xgb_max_depth"].default == defaults["xgb__max_depth"] == 4
    assert form["rf_max_features"].default == defaults["rf__max_features"] == "sqrt"


# -- hostile estimators ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "estimators, error, words",
    [
        ("xgb", TypeError, "list of (name, estimator) pairs"),
        ({"lr": None}, TypeError, "list of (name, estimator) pairs"),
        ([], ValueError, "at least one base model"),
        ([("lr",)], TypeError, "not a (name, estimator) pair"),
        ([("a b", HistGradientBoostingClassifier())], ValueError, "a letter then up to 31"),
        ([("x__y", HistGradientBoostingClassifier())], ValueError, "a letter then up to 31"),
        ([("../evil", HistGradientBoostingClassifier())], ValueError, "a letter then up to 31"),
        ([(3, HistGradientBoostingClassifier())], ValueError, "a letter then up to 31"),
        (
            [("h", HistGradientBoostingClassifier()), ("h", HistGradientBoostingClassifier())],
            ValueError,
            "Two base models are named 'h'",
        ),
        ([("seed", HistGradientBoostingClassifier())], ValueError, "is a parameter of the stack"),
        ([("ols", LinearRegression())], TypeError, "has no predict_proba"),
        ([("text", "not a model")], TypeError, "has no fit, get_params, predict_proba"),
    ],
)
def test_bad_estimators_fail_before_any_work_naming_the_problem(before_table, estimators, error, words):
    with pytest.raises(error) as caught:
        StackingApproach(estimators=estimators, **SMALL_PARAMS).fit(before_table.X, before_table.y)
    assert words in str(caught.value)


# -- a fifth base model the stack's code does not know -------------------------------------------------------
@pytest.fixture(scope="module")
def five(before_table):
    hgb = HistGradientBoostingClassifier(max_iter=40, max_depth=3)
    estimators = [*default_estimators(), ("hgb", hgb)]
    stack = StackingApproach(estimators=estimators, **{**SMALL_PARAMS, "explain_background": 8})
    X, y = before_table.X, before_table.y
    return stack.fit(X.iloc[:180], y[:180]), X.iloc[180:].reset_index(drop=True), y[180:]


def test_a_fifth_base_model_trains_and_scores(five):
    stack, X, y = five
    assert stack.base_names_ == ["lr", "rf", "xgb", "svc", "hgb"] and stack.base_kinds_["hgb"] == "other"
    assert stack.models_["hgb"].n_iter_ > 0  # its refit on every training row
    assert stack.get_params()["hgb__max_iter"] == 40 and stack.oof_margins_.shape[1] == 5
    p = stack.predict_proba(X)[:, 1]
    assert np.isfinite(p).all() and roc_auc_score(y, p) > 0.7
    alone = stack.base_predict_proba(X, models=["hgb"])["hgb"]
    np.testing.assert_allclose(alone, stack.models_["hgb"].predict_proba(stack.features_.transform(X))[:, 1])
    assert set(stack.variant_probas(X)) == {"lr", "rf", "xgb", "svc", "hgb"}


def test_a_fifth_base_model_is_explained_exactly_additively(five):
    stack, X, _ = five
    costs: dict = {}
    contrib = stack.explain_matrix(X.iloc[:6], costs=costs)
    p = stack.predict_proba(X.iloc[:6])[:, 1]
    np.testing.assert_allclose(contrib.sum(axis=1), p - stack.expected_value(), atol=1e-9)
    assert costs["hgb"] > 0  # its own part was explained
    slow = stack.explain_matrix(X.iloc[:2], method="permutation", n_permutations=2)
    np.testing.assert_allclose(slow.sum(axis=1), p[:2] - stack.expected_value(), atol=1e-9)
    frame = stack.explain(X.iloc[:3])
    assert set(frame["feature"]) <= set(stack.columns_) and len(frame) == 3 * len(stack.columns_)


def test_an_unknown_model_alone_is_explained_by_the_columns_it_reads():
    """The generic path on its own: a stack of one HistGradientBoosting model on leads whose outcome is one
    column; that column must carry the explanation."""
    rng = np.random.default_rng(3)
    n = 300
    signal = rng.normal(size=n)
    X = pd.DataFrame({"signal": signal, "noise": rng.normal(size=n), "kind": rng.choice(["a", "b", "c"], n)})
    y = (signal + 0.3 * rng.normal(size=n) > 0).astype(int)
    stack = StackingApproach(
        estimators=[("hgb", HistGradientBoostingClassifier(max_iter=30))],
        n_folds=2,
        meta_epochs=5,
        n_jobs=1,
        explain_background=10,
    ).fit(X, y)
    contrib = stack.explain_matrix(X.iloc[:40])
    share = np.abs(contrib).mean(axis=0) / np.abs(contrib).mean(axis=0).sum()
    assert share[stack.columns_.index("signal")] > 0.8, share
    np.testing.assert_allclose(
        contrib.sum(axis=1), stack.predict_proba(X.iloc[:40])[:, 1] - stack.expected_value(), atol=1e-9
    )


def test_a_fifth_base_model_saves_and_loads(five, tmp_path):
    stack, X, _ = five
    stack.save(tmp_path / "m")
    assert (tmp_path / "m" / "base_hgb.joblib").exists() and (tmp_path / "m" / "base_xgb.json").exists()
    back = load_approach(tmp_path / "m")
    np.testing.assert_allclose(back.predict_proba(X), stack.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(back.explain_matrix(X.iloc[:2]), stack.explain_matrix(X.iloc[:2]), atol=1e-12)
    assert back.stored_params() == stack.stored_params()
    assert ["hgb", "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"] in (
        back.stored_params()["estimators"]
    )


def test_a_tampered_base_model_name_in_a_saved_run_is_refused(five, tmp_path):
    stack, _, _ = five
    stack.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "approach.json").read_text())
    meta["base_models"][-1] = "../../outside"
    meta["base_kinds"]["../../outside"] = "other"
    (tmp_path / "m" / "approach.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="is not one this engine saves"):
        load_approach(tmp_path / "m")


# -- runs saved before, and the same numbers -----------------------------------------------------------------
def test_a_stack_saved_before_the_change_loads_scores_and_explains(before_table, tmp_path):
    from engine.signing import UnsignedFile, sign_file

    shutil.copytree(BEFORE / "model", tmp_path / "model")
    expected = np.load(BEFORE / "expected.npz")
    with pytest.raises(UnsignedFile, match="trust RUN_ID"):  # stored before models were signed
        load_approach(tmp_path / "model")
    for pickle in (tmp_path / "model").glob("*.joblib"):
        sign_file(pickle)  # what `python -m engine trust RUN_ID` does once the user vouches for the run
    old = load_approach(tmp_path / "model")
    X = before_table.X.iloc[:40]
    np.testing.assert_allclose(old.predict_proba(X)[:, 1], expected["proba"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(old.explain_matrix(X.iloc[:5]), expected["explain"], rtol=0, atol=1e-12)
    base = old.base_predict_proba(X)
    np.testing.assert_allclose(base["rf"], expected["base_rf"], atol=1e-12)
    np.testing.assert_allclose(base["svc"], expected["base_svc"], atol=1e-12)
    # its flat settings read as the nested ones
    assert old.base_names_ == ["lr", "rf", "xgb", "svc"]
    settings = old.get_params()
    assert settings["xgb__max_depth"] == 3 and settings["lr__C"] == 0.5 and settings["rf__n_estimators"] == 8
    # saved again, it is the new layout and gives the same numbers
    old.save(tmp_path / "again")
    again = load_approach(tmp_path / "again")
    np.testing.assert_allclose(again.predict_proba(X)[:, 1], expected["proba"], atol=1e-12)


def test_the_default_stack_gives_the_numbers_it_gave_before(before_table):
    """Trained now with the flat settings the old run was trained with: the same probabilities and explanations
    as the engine before the change, on the same rows."""
    params = json.loads((BEFORE / "params.json").read_text())
    expected = np.load(BEFORE / "expected.npz")
    model = build_approach("stacking", params).fit(before_table.X, before_table.y)
    X = before_table.X.iloc[:40]
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], expected["proba"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.explain_matrix(X.iloc[:5]), expected["explain"], rtol=0, atol=1e-9)
