"""Stacked ensemble for lead tables: four base models, out-of-fold predictions, a Keras meta-network.

Pipeline (all fitted on training rows only):

1. Features: a scikit-learn ``ColumnTransformer`` (:func:`engine.approaches._stack_parts.make_features`),
   then ``StandardScaler``. Numbers: ``SimpleImputer(median, add_indicator=True)``. Categories (missing is
   its own level): ``OneHotEncoder(min_frequency, handle_unknown="infrequent_if_exist")``; many-level ones
   (``max_onehot``) a target encoder that cross-fits the training rows' encodings in ``fit_transform`` so a
   row's encoding never uses its own label: ``target_encoder="sklearn"`` (default, scikit-learn's
   ``TargetEncoder``) or ``"category_encoders"`` (its ``TargetEncoder`` in a cross-fitting wrapper). scikit-learn's
   is the default because it measured better: on Leads.csv with ``max_onehot=5`` (8 columns target encoded) the
   stack's ROC-AUC was the same within noise (0.8973 vs 0.8980, one split) while the cross-fitted encoding step
   took 0.03-0.08 s against 3.5-8 s (docs/RESULTS.md, 2026-12-02); at the default ``max_onehot`` no Leads.csv
   column is target encoded at all. Every output column comes from exactly
   one input column (``groups_``, read from ``get_feature_names_out``), which is what makes the per-feature
   explanations exact in the original feature space.
2. Base models: logistic regression, random forest, XGBoost, RBF SVC.
3. Out-of-fold predictions: ``cross_val_predict`` over Pipelines (features + model) with StratifiedKFold
   (``n_folds``): in each fold the preprocessing *and* the model are fitted on the other folds only, so a
   row never contributes to its own meta-feature.
   The base models' margins (logits; the SVC decision value) are the meta-features.
4. Meta-model (:class:`engine.approaches._stack_parts.MetaNetwork`): a small Keras network on the standardised out-of-fold margins: Dense(16, relu) ->
   Dropout -> Dense(1), plus (``meta_linear_skip``) a linear path from the inputs added to the logit, so
   the net starts from logistic stacking and learns interactions on top. Early stopping on an inner
   stratified validation split (``meta_patience`` epochs without a ``meta_min_delta`` gain) picks the number
   of epochs; with ``meta_refit_full`` the net is then
   retrained for that many epochs on every out-of-fold row. At inference its weights run in NumPy (a
   single lead in well under a millisecond; the saved ``.keras`` file is the source of truth).
5. The preprocessing and base models are refitted on all training rows for test-time predictions.
   The SVC's probability (for :meth:`base_predict_proba`) is a Platt sigmoid fitted on its out-of-fold
   decision values.

``explain`` gives per-feature contributions to the stack's probability that sum exactly to
P(row) - mean P(background) (a small background of training rows): ``explain_method="fast"`` (default)
part by part by the rescale rule, a few ms a lead, or ``"permutation"`` (sampled Shapley values of the whole
stack), both in :mod:`engine.approaches._stack_explain`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.approaches import _stack_explain as _explain
from engine.approaches import _stack_parts as _parts
from engine.approaches._stack_explain import EXPLAIN_METHODS  # noqa: F401 - part of this module's API
from engine.approaches.base import Approach
from engine.callbacks import CallbackList, Progress

BASE_MODELS = _parts.BASE_MODELS
#: A small stack that trains in seconds on a few hundred leads: the tests and the API bench use it.
SMALL_PARAMS = {
    "n_folds": 2,
    "rf_n_estimators": 20,
    "xgb_n_estimators": 30,
    "meta_epochs": 5,
    "svc_max_rows": 200,
    "n_jobs": 1,
}


def _column_kinds(X: pd.DataFrame) -> dict[str, str]:
    """numeric | categorical | high_cardinality | identifier | text: numbers by dtype, the rest as
    :func:`engine.data.leads.infer_kinds` reads them."""
    from engine.data.leads import infer_kinds

    kinds = infer_kinds(X)
    out = {}
    for col in X.columns:
        numeric = pd.api.types.is_numeric_dtype(X[col]) and not pd.api.types.is_bool_dtype(X[col])
        kind = kinds.get(col)
        if numeric:
            out[col] = "numeric"
        elif kind in ("high_cardinality", "identifier", "text"):
            out[col] = kind
        else:
            out[col] = "categorical"
    return out


class StackingApproach(Approach):
    """Logistic regression + random forest + XGBoost + SVC, stacked by a Keras network (see module doc)."""

    name = "stacking"
    label = "Stacked ensemble"
    input_kind = "leads"
    explain_budget = 10_000  # the fast additive path: about 1.3 ms a lead

    def __init__(
        self,
        n_folds: int = 5,
        seed: int = 42,
        n_jobs: int = 2,
        max_onehot: int = 25,
        min_frequency: int = 10,
        te_smoothing: float = 10.0,
        target_encoder: str = "sklearn",
        lr_C: float = 0.3,
        rf_n_estimators: int = 300,
        rf_min_samples_leaf: int = 2,
        rf_max_features: Any = "sqrt",
        xgb_n_estimators: int = 500,
        xgb_max_depth: int = 4,
        xgb_learning_rate: float = 0.05,
        xgb_subsample: float = 0.8,
        xgb_colsample_bytree: float = 0.7,
        xgb_min_child_weight: float = 2.0,
        svc_C: float = 1.0,
        svc_gamma: Any = "scale",
        svc_max_rows: int = 3000,
        meta_hidden: int = 16,
        meta_dropout: float = 0.2,
        meta_epochs: int = 100,
        meta_batch_size: int = 64,
        meta_learning_rate: float = 0.005,
        meta_patience: int = 10,
        meta_validation: float = 0.2,
        meta_raw_features: int = 0,
        meta_linear_skip: bool = True,
        meta_l2: float = 1e-3,
        meta_refit_full: bool = True,
        meta_min_delta: float = 1e-4,
        explain_background: int = 30,
        explain_permutations: int = 8,
        explain_method: str = "fast",
    ):
        self.n_folds = n_folds
        self.seed = seed
        self.n_jobs = n_jobs
        self.max_onehot = max_onehot
        self.min_frequency = min_frequency
        self.te_smoothing = te_smoothing
        self.target_encoder = target_encoder
        self.lr_C = lr_C
        self.rf_n_estimators = rf_n_estimators
        self.rf_min_samples_leaf = rf_min_samples_leaf
        self.rf_max_features = rf_max_features
        self.xgb_n_estimators = xgb_n_estimators
        self.xgb_max_depth = xgb_max_depth
        self.xgb_learning_rate = xgb_learning_rate
        self.xgb_subsample = xgb_subsample
        self.xgb_colsample_bytree = xgb_colsample_bytree
        self.xgb_min_child_weight = xgb_min_child_weight
        self.svc_C = svc_C
        self.svc_gamma = svc_gamma
        self.svc_max_rows = svc_max_rows
        self.meta_hidden = meta_hidden
        self.meta_dropout = meta_dropout
        self.meta_epochs = meta_epochs
        self.meta_batch_size = meta_batch_size
        self.meta_learning_rate = meta_learning_rate
        self.meta_patience = meta_patience
        self.meta_validation = meta_validation
        self.meta_raw_features = meta_raw_features
        self.meta_linear_skip = meta_linear_skip
        self.meta_l2 = meta_l2
        self.meta_refit_full = meta_refit_full
        self.meta_min_delta = meta_min_delta
        self.explain_background = explain_background
        self.explain_permutations = explain_permutations
        self.explain_method = explain_method

    # -- building blocks -----------------------------------------------------------------------
    def _features(self):
        """The unfitted feature pipeline (a scikit-learn ColumnTransformer, then scaling) for ``plan_``."""
        return _parts.make_features(
            self.plan_,
            min_frequency=self.min_frequency,
            te_smoothing=self.te_smoothing,
            seed=self.seed,
            target_encoder=self.target_encoder,
        )

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        missing_cols = [c for c in self.columns_ if c not in X.columns]
        if missing_cols:
            raise ValueError(
                f"Input is missing column(s) {missing_cols} the model was trained on; "
                "score a table with the same columns as the training data"
            )
        return _parts.features_transform(self.features_, X)

    def make_base_models(self) -> dict[str, Any]:
        """Fresh, unfitted base models with this approach's hyper-parameters."""
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import SVC
        from xgboost import XGBClassifier

        return {
            "logistic_regression": LogisticRegression(C=self.lr_C, max_iter=3000),
            "random_forest": RandomForestClassifier(
                n_estimators=self.rf_n_estimators,
                min_samples_leaf=self.rf_min_samples_leaf,
                max_features=self.rf_max_features,
                n_jobs=self.n_jobs,
                random_state=self.seed,
            ),
            "xgboost": XGBClassifier(
                n_estimators=self.xgb_n_estimators,
                max_depth=self.xgb_max_depth,
                learning_rate=self.xgb_learning_rate,
                subsample=self.xgb_subsample,
                colsample_bytree=self.xgb_colsample_bytree,
                min_child_weight=self.xgb_min_child_weight,
                tree_method="hist",
                n_jobs=self.n_jobs,
                random_state=self.seed,
                eval_metric="logloss",
            ),
            "svc": SVC(C=self.svc_C, gamma=self.svc_gamma, kernel="rbf", cache_size=500, random_state=self.seed),
        }

    def _fit_one(self, name: str, model: Any, Z: np.ndarray, y: np.ndarray) -> Any:
        """``model`` fitted on all rows (the SVC on at most ``svc_max_rows``, as in its out-of-fold fits)."""
        if name == "svc":
            return self._subsample(model).fit(Z, y).estimator_
        return model.fit(Z, y)

    def _subsample(self, model: Any) -> _parts.Subsample:
        return _parts.Subsample(model, max_rows=self.svc_max_rows, seed=self.seed)

    def _margin(self, name: str, model: Any, Z: np.ndarray) -> np.ndarray:
        """The model's score on the logit scale (SVC: its decision value). Small batches avoid thread
        start-up; the forest and the SVC run through exact NumPy re-implementations of their predict."""
        small = len(Z) < 200
        if name == "random_forest":
            if small:
                return _parts.logit(_parts.forest_proba(model, Z))
            return _parts.logit(model.predict_proba(Z)[:, 1])
        if name == "xgboost":
            if model is getattr(self, "models_", {}).get("xgboost"):
                booster = self._xgb_boosters[0 if small else 1]  # configured once: concurrent predicts share it as is
            else:  # a fold model during fit (one thread uses it)
                booster = model.get_booster()
            return np.asarray(booster.inplace_predict(Z, predict_type="margin"), dtype=np.float64)
        if name == "svc":
            return _parts.svc_decision(model, Z)
        return np.asarray(model.decision_function(Z), dtype=np.float64)

    def _prepare_predict(self) -> tuple:
        """Make the fitted models ready for concurrent scoring, once (after fit or load): the XGBoost
        booster as two configured copies, one thread for small batches (no thread start-up) and ``n_jobs``
        for large ones, and the forest's packed arrays. Scoring then changes no shared model state (setting
        ``nthread`` on a shared booster per call made concurrent predicts fail with XGBoost's
        ``need_configuration_`` check)."""
        booster = self.models_["xgboost"].get_booster()
        small, large = booster.copy(), booster.copy()
        small.set_param({"nthread": 1})
        large.set_param({"nthread": max(int(self.n_jobs or 1), 1)})
        width = booster.num_features()
        for b in (small, large):  # the first predict configures a booster: do it now, in one thread
            b.inplace_predict(np.zeros((1, width)), predict_type="margin")
        _parts.forest_arrays(self.models_["random_forest"])
        self._xgb_boosters = (small, large)
        return self._xgb_boosters

    def _meta_inputs(self, margins: np.ndarray, Z: np.ndarray) -> np.ndarray:
        extra = Z[:, self.meta_raw_index_] if len(self.meta_raw_index_) else np.zeros((len(Z), 0))
        M = np.hstack([margins, extra])
        return (M - self.meta_mean_) / self.meta_scale_

    # -- fit ----------------------------------------------------------------------------------------
    def _min_per_class(self) -> int:
        return int(self.n_folds)  # every fold holds rows of both classes

    def _fit(self, X: pd.DataFrame, y: np.ndarray, cb: CallbackList) -> None:
        import tempfile

        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import Pipeline

        _parts.check_target_encoder(self.target_encoder)
        n_models = len(BASE_MODELS)
        total = self.n_folds * n_models + n_models + self.meta_epochs
        cb.on_train_begin(total, stage="stacking")
        step = 0
        self.kinds_ = _column_kinds(X)
        self.columns_ = list(X.columns)

        # which lead column goes through which transformer: from the values alone (no labels)
        self.plan_ = _parts.plan_columns(X, self.kinds_, max_onehot=self.max_onehot, min_frequency=self.min_frequency)
        oof = np.zeros((len(y), n_models))
        skf = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.seed)
        # the four models' pipelines share each fold's fitted feature step (joblib's cache, a temporary folder)
        cache_dir = tempfile.TemporaryDirectory(prefix="clab-stack-")
        memory = joblib.Memory(cache_dir.name, verbose=0)
        for j, (name, model) in enumerate(self.make_base_models().items()):
            # out of fold: in each fold the feature pipeline *and* the model see the other folds only
            if name == "svc":
                model = self._subsample(model)
            pipe = Pipeline([("features", self._features()), ("model", model)], memory=memory)
            method = "decision_function" if name in ("logistic_regression", "svc") else "predict_proba"
            out = cross_val_predict(pipe, X, y, cv=skf, method=method)
            if name == "random_forest":
                oof[:, j] = _parts.logit(out[:, 1])
            elif name == "xgboost":  # its margin (logit) from the probability
                p = np.clip(out[:, 1].astype(np.float64), 1e-7, 1 - 1e-7)
                oof[:, j] = np.log(p / (1 - p))
            else:
                oof[:, j] = out
            step += self.n_folds
            cb.on_step_end(Progress(step=step, total=total, stage=f"out of fold {name} ({self.n_folds} folds)"))
        cache_dir.cleanup()
        self.oof_margins_ = oof

        # refit on all training rows
        self.features_ = self._features()
        Z = self.features_.fit_transform(X, y)
        self.groups_ = _parts.column_groups(self.features_, self.plan_, self.columns_)
        self.models_ = {}
        for name, model in self.make_base_models().items():
            self.models_[name] = self._fit_one(name, model, Z, y)
            step += 1
            cb.on_step_end(Progress(step=step, total=total, stage=f"refit {name}"))
        # Platt scaling of the SVC's out-of-fold decision values -> standalone SVC probabilities
        platt = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, [BASE_MODELS.index("svc")]], y)
        self.svc_platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))

        # meta-features: base margins (+ optionally the strongest numeric raw features)
        self.meta_raw_index_ = self._pick_raw_features(Z, y)
        raw = Z[:, self.meta_raw_index_] if len(self.meta_raw_index_) else np.zeros((len(y), 0))
        M = np.hstack([oof, raw])
        self.meta_mean_ = M.mean(axis=0)
        std = M.std(axis=0)
        self.meta_scale_ = np.where(std > 1e-12, std, 1.0)
        self.meta_model_ = self._fit_meta((M - self.meta_mean_) / self.meta_scale_, y, cb, step, total)
        self._cache_meta_weights()
        self._prepare_predict()

        rng = np.random.default_rng(self.seed)
        bg = rng.choice(len(X), size=min(self.explain_background, len(X)), replace=False)
        self.background_ = self._transform(X.iloc[np.sort(bg)])
        self.train_proba_ = self._proba_matrix(Z)
        cb.on_step_end(Progress(step=total, total=total, stage="done"))
        cb.on_train_end(stage="stacking")

    def _pick_raw_features(self, Z: np.ndarray, y: np.ndarray) -> list[int]:
        if not self.meta_raw_features:
            return []
        numeric = [self.groups_[c][0] for c in self.plan_["num"] if self.groups_[c]]
        if not numeric:
            return []
        corr = [abs(np.corrcoef(Z[:, i], y)[0, 1]) if Z[:, i].std() > 0 else 0.0 for i in numeric]
        order = np.argsort(corr)[::-1][: int(self.meta_raw_features)]
        return [int(numeric[i]) for i in order]

    def make_meta(self) -> _parts.MetaNetwork:
        """A fresh, unfitted meta network with this approach's ``meta_*`` parameters."""
        return _parts.MetaNetwork(
            hidden=self.meta_hidden,
            dropout=self.meta_dropout,
            epochs=self.meta_epochs,
            batch_size=self.meta_batch_size,
            learning_rate=self.meta_learning_rate,
            patience=self.meta_patience,
            validation=self.meta_validation,
            linear_skip=self.meta_linear_skip,
            l2=self.meta_l2,
            refit_full=self.meta_refit_full,
            seed=self.seed,
            min_delta=self.meta_min_delta,
        )

    def _fit_meta(self, M: np.ndarray, y: np.ndarray, cb: CallbackList, step: int, total: int):
        def on_epoch(done: int, logs: dict) -> None:
            cb.on_step_end(
                Progress(
                    step=min(step + done, total - 1),
                    total=total,
                    loss=float(logs.get("loss", np.nan)),
                    stage="meta network",
                    extra={"val_loss": float(logs.get("val_loss", np.nan))},
                )
            )

        meta = self.make_meta().fit(M, y, on_epoch=on_epoch)
        self.meta_ = meta
        self.meta_history_ = meta.history_
        self.meta_best_epoch_ = meta.best_epoch_
        return meta.model_

    def _keras_meta(self):
        """The Keras meta-model (loaded from its ``.keras`` file on first use after ``load``)."""
        if not hasattr(self, "meta_model_"):
            import keras

            self.meta_model_ = keras.models.load_model(self._meta_keras_path)
        return self.meta_model_

    def _cache_meta_weights(self) -> None:
        """NumPy copies of the meta-network's weights: fast, identical inference for any batch size."""
        meta = self.make_meta()
        meta.set_model(self.meta_model_)
        self.meta_weights_ = meta.weights_

    def _meta_forward(self, M: np.ndarray) -> np.ndarray:
        return _parts.meta_forward(self.meta_weights_, M)

    # -- predict ------------------------------------------------------------------------------------
    def _check_X(self, X) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame of lead features, not {type(X).__name__}")
        if len(X.columns) == 0:
            raise ValueError("X has no feature columns; check the leak policy and exclusions")
        return X

    def _margins(self, Z: np.ndarray) -> np.ndarray:
        return np.column_stack([self._margin(name, self.models_[name], Z) for name in BASE_MODELS])

    def _proba_matrix(self, Z: np.ndarray) -> np.ndarray:
        return self._meta_forward(self._meta_inputs(self._margins(Z), Z))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted("meta_weights_")
        Z = self._transform(self._check_X(X))
        p = self._proba_matrix(Z)
        return np.column_stack([1 - p, p])

    def variant_probas(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each base model's P(convert) on its own: the board's parts of the stack."""
        return {
            name: np.asarray(p)[:, 1] if np.ndim(p) == 2 else np.asarray(p)
            for name, p in self.base_predict_proba(X).items()
        }

    def base_predict_proba(self, X: pd.DataFrame, models: list[str] | None = None) -> dict[str, np.ndarray]:
        """P(convert) of each base model on its own (refitted on all training rows), by model name
        (``logistic_regression``, ``random_forest``, ``xgboost``, ``svc``)."""
        self._check_fitted("models_")
        unknown = set(models or []) - set(BASE_MODELS)
        if unknown:
            raise ValueError(f"Unknown base model(s) {sorted(unknown)}; choose from {list(BASE_MODELS)}")
        Z = self._transform(self._check_X(X))
        out = {}
        for name in models or BASE_MODELS:
            margin = self._margin(name, self.models_[name], Z)
            if name == "svc":
                a, b = self.svc_platt_
                margin = a * margin + b
            out[name] = _parts.sigmoid(margin) if name != "random_forest" else self._forest_p(Z)
        return out

    def _forest_p(self, Z: np.ndarray) -> np.ndarray:
        return _parts.forest_p(self.models_["random_forest"], Z)

    # -- explain (engine.approaches._stack_explain) -------------------------------------------------------
    def explain_matrix(
        self,
        X: pd.DataFrame,
        method: str | None = None,
        n_permutations: int | None = None,
        costs: dict | None = None,
        batch_size: int = 1000,
    ) -> np.ndarray:
        """Contributions as a ``(rows, len(columns_))`` array (probability points, in the order of
        ``columns_``); each row sums to ``P(row) - expected_value()``.

        ``method``: ``"fast"`` (default: ``explain_method``) explains the stack part by part and combines
        the parts by the rescale rule (exact for the logistic regression, XGBoost and the meta network,
        approximate for the forest and the SVC: see :mod:`engine.approaches._fast_explain`), a few ms a
        lead; ``"permutation"`` samples Shapley values of the whole stack (``n_permutations`` antithetic
        orders, default ``explain_permutations``), 0.1-0.7 s a lead. ``costs``: a dict that receives the
        seconds spent in each part (fast path)."""
        self._check_fitted("meta_weights_")
        method = _explain.check_method(self.explain_method if method is None else method)
        Z = self._transform(self._check_X(X))
        n_permutations = n_permutations or self.explain_permutations
        return _explain.explain_matrix(self, Z, method, n_permutations, costs=costs, batch_size=batch_size)

    def explain(self, X: pd.DataFrame, n_permutations: int | None = None, method: str | None = None) -> pd.DataFrame:
        """Per-feature contributions (probability points) for each row, against a background of training
        rows; they sum to P(row) - mean P(background) (``expected_value()``). ``method``: ``"fast"`` or
        ``"permutation"`` (default ``explain_method``; see :meth:`explain_matrix`)."""
        X = self._check_X(X)
        contrib = self.explain_matrix(X, method=method, n_permutations=n_permutations)
        return _explain.explain_frame(self.columns_, X, contrib)

    def expected_value(self) -> float:
        """Mean P(convert) over the explanation background (the baseline of ``explain``)."""
        self._check_fitted("background_")
        return float(self._proba_matrix(self.background_).mean())

    def save(self, path: str | Path) -> None:
        import joblib

        self._check_fitted("meta_weights_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.models_["xgboost"].save_model(path / "xgboost.json")
        for name in ("logistic_regression", "random_forest", "svc"):
            joblib.dump(self.models_[name], path / f"{name}.joblib")
        joblib.dump(self.features_, path / "features.joblib")
        self._keras_meta().save(path / "meta.keras")
        # The meta weights also go next to the state, so loading for scoring needs no TensorFlow import
        # (seconds saved on every dashboard page and API start); meta.keras stays the Keras model of record.
        weights = {f"meta__{layer}__{i}": w for layer, ws in self.meta_weights_.items() for i, w in enumerate(ws)}
        np.savez(
            path / "state.npz",
            meta_mean=self.meta_mean_,
            meta_scale=self.meta_scale_,
            background=self.background_,
            train_proba=self.train_proba_,
            meta_raw_index=np.asarray(self.meta_raw_index_, dtype=np.int64),
            **weights,
        )
        self._write_params(
            path,
            columns=self.columns_,
            kinds=self.kinds_,
            plan=self.plan_,
            groups=self.groups_,
            svc_platt=list(self.svc_platt_),
            base_models=list(BASE_MODELS),
            fit_seconds=getattr(self, "fit_seconds_", None),
            meta_history=getattr(self, "meta_history_", {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> StackingApproach:
        from xgboost import XGBClassifier

        from engine.storage import load_pickle

        path = Path(path)
        payload = cls._read_params(path)
        if payload.get("approach") != cls.name:
            raise ValueError(f"{path} holds a {payload.get('approach')!r} model, not a stacking model")
        if "plan" not in payload:
            raise ValueError(
                f"{path} was saved by an earlier version of the stack (hand-written feature "
                "preparation, before the scikit-learn ColumnTransformer); it no longer loads: "
                "train it again"
            )
        obj = cls(**payload["params"])
        obj.columns_ = payload["columns"]
        obj.plan_ = {k: list(v) for k, v in payload["plan"].items()}
        obj.groups_ = {k: [int(i) for i in v] for k, v in payload["groups"].items()}
        obj.kinds_ = payload["kinds"]
        obj.svc_platt_ = tuple(payload["svc_platt"])
        obj.meta_history_ = payload.get("meta_history", {})
        obj.features_ = load_pickle(path, "features.joblib")
        xgb = XGBClassifier()
        xgb.load_model(path / "xgboost.json")
        obj.models_ = {
            name: load_pickle(path, f"{name}.joblib") for name in ("logistic_regression", "random_forest", "svc")
        }
        obj.models_["xgboost"] = xgb
        obj.models_ = {name: obj.models_[name] for name in BASE_MODELS}
        obj._meta_keras_path = path / "meta.keras"
        state = np.load(path / "state.npz")
        weights: dict[str, list] = {}
        meta_keys = [k for k in state.files if k.startswith("meta__")]
        for key in sorted(meta_keys, key=lambda k: (k.split("__")[1], int(k.split("__")[2]))):
            weights.setdefault(key.split("__")[1], []).append(state[key])
        obj.meta_weights_ = weights
        obj.meta_mean_ = state["meta_mean"]
        obj.meta_scale_ = state["meta_scale"]
        obj.background_ = state["background"]
        obj.train_proba_ = state["train_proba"]
        obj.meta_raw_index_ = [int(i) for i in state["meta_raw_index"]]
        obj._prepare_predict()
        obj.classes_ = np.array([0, 1])
        return obj
