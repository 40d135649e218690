"""The stacking approach: fit / predict / explain / save / load on small data with tiny configs, no
self-leakage of out-of-fold predictions, and one run on a sample of the real lead export."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import roc_auc_score
from support import BENCH_ROW_KEYS

from engine.approaches import _stack_parts as parts
from engine.approaches.base import CONTRIBUTION_COLUMNS
from engine.approaches.registry import load_approach
from engine.approaches.stacking import BASE_MODELS, SMALL_PARAMS, StackingApproach, _column_kinds
from engine.callbacks import Callback
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.evaluate import protocol_split
from engine.pipeline import build_approach

SMALL = {**SMALL_PARAMS, "explain_background": 15, "explain_permutations": 4}


def _synthetic_leads(n=900, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    """A small lead-like table: numeric (with missing), categorical, Yes/No, and a many-level column."""
    rng = np.random.default_rng(seed)
    time_on_site = np.where(rng.random(n) < 0.3, 0.0, np.round(np.exp(rng.normal(5.5, 1.0, n))))
    visits = rng.poisson(3, n).astype(float)
    visits[rng.random(n) < 0.03] = np.nan
    origin = rng.choice(["API", "Landing Page Submission", "Lead Add Form"], n, p=[0.4, 0.5, 0.1])
    occupation = rng.choice(["Unemployed", "Working Professional", "Student", None], n, p=[0.6, 0.1, 0.05, 0.25])
    do_not_email = rng.choice(["Yes", "No"], n, p=[0.1, 0.9])
    country = rng.choice([f"country_{i}" for i in range(40)], n)  # many levels, no signal
    logit = (
        -1.2
        + 1.1 * np.log1p(time_on_site) / 3
        + 1.5 * (origin == "Lead Add Form")
        + 1.2 * (occupation == "Working Professional")
        - 1.0 * (do_not_email == "Yes")
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-(logit - 0.5)))).astype(int)
    X = pd.DataFrame(
        {
            "Lead Origin": pd.array(origin, dtype="str"),
            "TotalVisits": visits,
            "Total Time Spent on Website": time_on_site,
            "What is your current occupation": pd.array(occupation, dtype="str"),
            "Do Not Email": pd.array(do_not_email, dtype="str"),
            "Country": pd.array(country, dtype="str"),
        }
    )
    return X, y


def _demo(n=900):
    """The demo leads through the real loader."""
    table = load_leads(demo_leads(n=n, seed=0))
    return table.X, table.y


class Recorder(Callback):
    def __init__(self):
        self.stages, self.began, self.ended, self.losses = [], [], [], []

    def on_train_begin(self, total_steps, stage="train"):
        self.began.append((total_steps, stage))

    def on_step_end(self, progress):
        self.stages.append(progress.stage)
        if progress.loss is not None:
            self.losses.append(progress.loss)

    def on_train_end(self, stage="train"):
        self.ended.append(stage)


@pytest.fixture(scope="module")
def fitted():
    X, y = _demo(900)
    tr, te = protocol_split(y)
    rec = Recorder()
    model = StackingApproach(**SMALL).fit(X.iloc[tr], y[tr], callbacks=[rec])
    return model, X, y, tr, te, rec


def test_fit_predict_and_progress(fitted):
    model, X, y, tr, te, rec = fitted
    proba = model.predict_proba(X.iloc[te])
    assert proba.shape == (len(te), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(y[te], proba[:, 1]) > 0.7
    base = model.base_predict_proba(X.iloc[te])
    assert list(base) == list(BASE_MODELS)
    for name, p in base.items():
        assert p.shape == (len(te),) and roc_auc_score(y[te], p) > 0.6, name
    # progress: every fold and base model, then the meta network with a loss, then the end
    assert rec.began and rec.ended == ["stacking"]
    folds = f"({model.n_folds} folds)"
    assert f"out of fold lr {folds}" in rec.stages and f"out of fold svc {folds}" in rec.stages
    assert "meta network" in rec.stages and rec.losses
    assert build_approach("stacking", dict(n_folds=2)).n_folds == 2


def test_save_load_gives_identical_probabilities(fitted, tmp_path):
    model, X, y, tr, te, _ = fitted
    model.save(tmp_path / "m")
    for name in ("base_xgb.json", "estimators.joblib", "meta.keras", "approach.json"):
        assert (tmp_path / "m" / name).exists()
    loaded = load_approach(tmp_path / "m")
    assert isinstance(loaded, StackingApproach)
    assert loaded.stored_params() == model.stored_params()  # the base models and their settings too
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[te]), model.predict_proba(X.iloc[te]), rtol=0, atol=1e-7)
    for name, p in loaded.base_predict_proba(X.iloc[te[:50]]).items():
        np.testing.assert_allclose(p, model.base_predict_proba(X.iloc[te[:50]])[name], atol=1e-7)
    # The .keras file is the meta-model of record: its weights are the ones used for scoring.
    keras_weights = {
        layer.name: [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
        for layer in loaded._keras_meta().layers
        if layer.get_weights()
    }
    assert keras_weights.keys() == loaded.meta_weights_.keys()
    for name, ws in keras_weights.items():
        for a, b in zip(ws, loaded.meta_weights_[name]):
            np.testing.assert_array_equal(a, b)


def test_loading_for_scoring_does_not_import_tensorflow(fitted, tmp_path):
    import subprocess
    import sys

    model, X, y, tr, te, _ = fitted
    model.save(tmp_path / "m")
    X.iloc[te[:5]].to_pickle(tmp_path / "rows.pkl")
    code = (
        "import sys, pandas as pd; from engine.approaches.registry import load_approach; "
        f"m = load_approach({str(tmp_path / 'm')!r}); "
        f"print(m.predict_proba(pd.read_pickle({str(tmp_path / 'rows.pkl')!r}))[:, 1].tolist()); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-1] == "False False"
    np.testing.assert_allclose(eval(out[0]), model.predict_proba(X.iloc[te[:5]])[:, 1], atol=1e-7)


def test_single_row_and_unseen_values(fitted):
    model, X, y, tr, te, _ = fitted
    row = X.iloc[[te[0]]].copy()
    start = time.perf_counter()
    p1 = model.predict_proba(row)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_allclose(p1, model.predict_proba(X.iloc[te])[:1], atol=1e-12)  # batch == one row
    odd = row.copy()
    for col in odd.columns:
        if not pd.api.types.is_numeric_dtype(odd[col]):
            odd[col] = pd.array(["never seen before"], dtype="str")
        else:
            odd[col] = np.nan
    p = model.predict_proba(odd)
    assert np.isfinite(p).all()
    with pytest.raises(ValueError, match="missing column"):
        model.predict_proba(row.drop(columns=[X.columns[0]]))


def test_explain_shape_and_additivity(fitted):
    model, X, y, tr, te, _ = fitted
    rows = X.iloc[te[:3]]
    start = time.perf_counter()
    table = model.explain(rows.iloc[[0]])
    assert time.perf_counter() - start < 2.0
    table = model.explain(rows)
    assert list(table.columns) == CONTRIBUTION_COLUMNS
    assert len(table) == 3 * X.shape[1]
    for r in range(3):
        part = table[table["row"] == r]
        assert sorted(part["feature"]) == sorted(X.columns)  # one row per original feature
        # Shapley efficiency: contributions add up to P(row) - mean P(background)
        p = model.predict_proba(rows.iloc[[r]])[0, 1]
        assert part["contribution"].sum() == pytest.approx(p - model.expected_value(), abs=1e-9)
        col = X.columns[0]
        original = rows.iloc[r][col]
        shown = part.loc[part["feature"] == col, "value"].iloc[0]
        assert shown == (
            "missing" if pd.isna(original) else (f"{original:g}" if isinstance(original, float) else str(original))
        )


def test_out_of_fold_predictions_do_not_leak():
    """A row-id feature lets the models memorise their training rows. In-sample the forest is near
    perfect; out of fold it must be no better than chance, since a row never predicts itself."""
    rng = np.random.default_rng(1)
    n = 600
    y = (rng.random(n) < 0.4).astype(int)
    X = pd.DataFrame(
        {"row_id": rng.permutation(n).astype(float), "noise": pd.array(rng.choice(["a", "b"], n), dtype="str")}
    )
    model = StackingApproach(**{**SMALL, "rf_min_samples_leaf": 1, "xgb_max_depth": 8}).fit(X, y)
    in_sample = model.base_predict_proba(X)["rf"]
    assert roc_auc_score(y, in_sample) > 0.9  # memorised: the check below could fail
    for j, name in enumerate(BASE_MODELS):
        assert roc_auc_score(y, model.oof_margins_[:, j]) < 0.62, name


def test_features_are_column_separable_and_handle_high_cardinality():
    X, y = _synthetic_leads(400)
    plan = parts.plan_columns(X, _column_kinds(X), max_onehot=10, min_frequency=5)
    assert plan["target"] == ["Country"]  # 40 levels > max_onehot
    assert "Lead Origin" in plan["onehot"]
    assert {"TotalVisits", "Total Time Spent on Website"} <= set(plan["num"])
    feats = parts.make_features(plan, min_frequency=5)
    Z = feats.fit_transform(X, y)
    assert Z.shape[0] == 400 and np.isfinite(Z).all()
    groups = parts.column_groups(feats, plan, list(X.columns))
    assert sorted(i for g in groups.values() for i in g) == list(range(Z.shape[1]))
    assert len(groups["TotalVisits"]) == 2  # the value and its missing indicator
    # the target encoding of the training rows is cross-fitted (scikit-learn's TargetEncoder.fit_transform)
    assert not np.allclose(Z[:, groups["Country"]], feats.transform(X)[:, groups["Country"]])
    # changing one input column changes only that column's outputs
    X2 = X.copy()
    X2["Lead Origin"] = pd.array(["API"] * len(X2), dtype="str")
    diff = np.flatnonzero(np.abs(feats.transform(X2) - feats.transform(X)).max(axis=0) > 0)
    assert set(diff) <= set(groups["Lead Origin"])


def test_bad_input_is_explained():
    X, y = _synthetic_leads(200)
    with pytest.raises(RuntimeError, match="fit"):
        StackingApproach().predict_proba(X)
    with pytest.raises(ValueError, match="each class"):
        StackingApproach(**SMALL).fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(TypeError, match="DataFrame"):
        StackingApproach(**SMALL).fit(X.to_numpy(), y)


def test_real_leads_sample_fits_and_explains(leads_csv):
    table = load_leads(leads_csv)
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(len(table.y), size=1500, replace=False))
    X, y = table.X.iloc[keep].reset_index(drop=True), table.y[keep]
    tr, te = protocol_split(y)
    model = StackingApproach(**{**SMALL, "rf_n_estimators": 60, "xgb_n_estimators": 80}).fit(X.iloc[tr], y[tr])
    rows = X.iloc[te]
    p = model.predict_proba(rows)[:, 1]
    assert roc_auc_score(y[te], p) > 0.8
    # the fast explanation on real leads: exactly additive, and close to many sampled permutations
    contrib = model.explain_matrix(rows)
    np.testing.assert_allclose(contrib.sum(axis=1), p - model.expected_value(), atol=1e-9)
    perm = model.explain_matrix(rows.iloc[:8], method="permutation", n_permutations=32)
    corr = [pearsonr(f, q)[0] for f, q in zip(contrib[:8], perm) if np.std(f) > 0 and np.std(q) > 0]
    assert np.mean(corr) > 0.8, corr
    frame = model.explain(rows.iloc[:4])
    assert isinstance(frame, pd.DataFrame) and len(frame) == 4 * X.shape[1]


def test_leads_bench_reports_every_model(tmp_path):
    """`bench leads` end to end on a small table (about 20 s): it broke unseen once while this test was slow-marked."""
    import json

    from engine.benchmarks.leads import run_leads_bench

    X, y = _synthetic_leads(500, seed=3)
    frame = X.assign(Converted=y)
    out = tmp_path / "bench.json"
    result = run_leads_bench(frame, out, params={**SMALL, "meta_epochs": 10}, n_boot=20, verbose=False)
    saved = json.loads(out.read_text())
    assert saved["rows"] == 500 and saved["split"]["test_rows"] == 150
    expected = {"stacking", *BASE_MODELS, "peer_sklearn_stacking", "peer_xgboost_default"}
    assert set(saved["models"]) == expected == set(result["models"])
    for name, m in saved["models"].items():
        for key in BENCH_ROW_KEYS:
            assert np.isfinite(m[key]), (name, key)
        assert m["roc_auc"] > 0.6, name


def test_a_run_saved_before_the_column_transformer_is_refused_with_its_reason(fitted, tmp_path):
    import json

    model = fitted[0]
    model.save(tmp_path / "m")
    payload = json.loads((tmp_path / "m" / "approach.json").read_text())
    del payload["plan"], payload["groups"]
    (tmp_path / "m" / "approach.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="earlier version of the stack"):
        load_approach(tmp_path / "m")
