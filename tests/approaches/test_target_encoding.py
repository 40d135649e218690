"""The stack's ``target_encoder`` choice: category_encoders' TargetEncoder in a cross-fitting wrapper
(:class:`CrossFitTargetEncoder`) next to scikit-learn's TargetEncoder: no label leak on training rows, the two
agree on new rows, scikit-learn can clone it, a bad value is refused, and a stack fits with each."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import TargetEncoder

from engine.approaches._stack_parts import TARGET_ENCODERS, CrossFitTargetEncoder, features_transform
from engine.approaches.stacking import SMALL_PARAMS, StackingApproach
from engine.pipeline import build_approach

LEVELS = [f"level_{i}" for i in range(30)]


def _levels(n=600, seed=0):
    """Two text columns: a 30-level one whose rate drives y, and one unique per row (pure memorisation)."""
    rng = np.random.default_rng(seed)
    level = rng.choice(LEVELS, n)
    rate = {v: 0.1 + 0.2 * (i % 5) for i, v in enumerate(LEVELS)}
    y = (rng.random(n) < np.array([rate[v] for v in level])).astype(int)
    X = np.column_stack([level, [f"id_{seed}_{i}" for i in range(n)]]).astype(object)
    return X, y


def test_training_rows_are_encoded_out_of_fold_so_a_unique_column_carries_no_label():
    X, y = _levels()
    encoder = CrossFitTargetEncoder(cv=5, seed=0)
    Z = encoder.fit_transform(X, y)
    # a level seen in the other folds keeps its signal; a row-unique id never is: its encoding is a fold prior
    assert roc_auc_score(y, Z[:, 0]) > 0.7
    assert abs(roc_auc_score(y, Z[:, 1]) - 0.5) < 0.05
    # the same encoder fitted and applied on the same rows (no cross-fitting) memorises the labels
    assert roc_auc_score(y, encoder.transform(X)[:, 1]) > 0.9
    assert Z.shape == X.shape and np.isfinite(Z).all()


def test_both_encoders_rank_new_rows_alike():
    X, y = _levels()
    new, _ = _levels(n=300, seed=1)  # the same levels, new ids (unseen: the prior for both)
    ours = CrossFitTargetEncoder(cv=5, seed=0).fit(X, y)
    theirs = TargetEncoder(target_type="binary", smooth=10.0, cv=5, shuffle=True, random_state=0).fit(X, y)
    a, b = ours.transform(new), theirs.transform(new)
    # different smoothing (a sigmoid of the count vs an m-estimate), the same order and nearly the same rates
    assert spearmanr(a[:, 0], b[:, 0]).statistic > 0.95
    assert np.abs(a[:, 0] - b[:, 0]).max() < 0.15
    np.testing.assert_allclose(a[:, 1], y.mean())
    np.testing.assert_allclose(b[:, 1], y.mean())
    # the fitted attributes read like scikit-learn's (the NumPy transform of the stack reads them)
    assert [list(c) for c in ours.categories_] == [list(c) for c in theirs.categories_]
    lookup = dict(zip(ours.categories_[0], ours.encodings_[0]))
    np.testing.assert_allclose(a[:, 0], [lookup[v] for v in new[:, 0]])
    assert ours.target_mean_ == pytest.approx(theirs.target_mean_)


def test_clone_and_params():
    encoder = CrossFitTargetEncoder(smoothing=3.0, cv=4, seed=7)
    copy = clone(encoder)
    assert copy.get_params() == {"smoothing": 3.0, "min_samples_leaf": 20, "cv": 4, "seed": 7}
    assert not hasattr(copy, "encoder_")
    X, y = _levels(200)
    fitted = CrossFitTargetEncoder().fit(X, y)
    assert list(fitted.get_feature_names_out(["kind", "id"])) == ["kind", "id"]
    stack = StackingApproach(target_encoder="category_encoders")
    assert clone(stack).get_params()["target_encoder"] == "category_encoders"
    assert StackingApproach().target_encoder == "sklearn" and TARGET_ENCODERS == ("sklearn", "category_encoders")


def _frame(n=400, seed=0):
    """A small lead table: the 30-level column that drives y, a high-cardinality one (60 cities), a number."""
    rng = np.random.default_rng(seed)
    levels, y = _levels(n, seed)
    X = pd.DataFrame(
        {
            "Source": pd.array(levels[:, 0], dtype="str"),
            "City": pd.array(rng.choice([f"city_{i}" for i in range(60)], n), dtype="str"),
            "Visits": rng.poisson(3, n).astype(float),
        }
    )
    return X, y


@pytest.mark.parametrize("bad", ["category-encoders", "", "SKLEARN", None, 3])
def test_a_bad_target_encoder_is_refused_by_name(bad):
    X, y = _frame(120)
    with pytest.raises(ValueError, match=r"target_encoder .*choose one of \['sklearn', 'category_encoders'\]"):
        StackingApproach(**SMALL_PARAMS, target_encoder=bad).fit(X, y)
    if isinstance(bad, str):  # the factory the CLI and dashboard use passes it through to the same check
        with pytest.raises(ValueError, match="choose one of"):
            build_approach("stacking", {**SMALL_PARAMS, "target_encoder": bad}).fit(X, y)


def test_category_encoders_refuses_sklearns_auto_smoothing():
    X, y = _frame(120)
    with pytest.raises(ValueError, match="te_smoothing='auto'.*number"):
        StackingApproach(**SMALL_PARAMS, target_encoder="category_encoders", te_smoothing="auto").fit(X, y)


@pytest.mark.parametrize("encoder", TARGET_ENCODERS)
def test_a_stack_fits_with_each_encoder(encoder, tmp_path):
    X, y = _frame(500)
    model = StackingApproach(**{**SMALL_PARAMS, "explain_background": 5}, max_onehot=10, target_encoder=encoder)
    model.fit(X.iloc[:400], y[:400])
    assert model.plan_["target"] == ["Source", "City"]  # more levels than max_onehot: target encoded
    p = model.predict_proba(X.iloc[400:])[:, 1]
    assert roc_auc_score(y[400:], p) > 0.65
    # the NumPy transform of a few rows equals the fitted ColumnTransformer's, unseen levels included
    rows = X.iloc[400:].copy()
    rows.loc[rows.index[:5], "City"] = "never seen"
    np.testing.assert_allclose(features_transform(model.features_, rows), model.features_.transform(rows), atol=1e-12)
    model.save(tmp_path / "m")
    loaded = StackingApproach.load(tmp_path / "m")
    assert loaded.target_encoder == encoder
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[400:])[:, 1], p, atol=1e-12)
