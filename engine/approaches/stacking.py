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
   column is target encoded at all. A free-text column (kind ``text``: notes, a call) becomes one column, the
   out-of-fold logit of a TF-IDF logistic regression (:class:`engine.approaches._stack_text.TextScore`; the
   model fitted on every training row scores new rows), and its reasons quote the lead's words that moved it.
   Every output column comes from exactly
   one input column (``groups_``, read from ``get_feature_names_out``), which is what makes the per-feature
   explanations exact in the original feature space.
2. Base models: ``estimators``, a list of ``(name, estimator)`` as scikit-learn's ``StackingClassifier`` takes;
   by default logistic regression, random forest, XGBoost and an RBF SVC (``lr``, ``rf``, ``xgb``, ``svc``:
   :func:`engine.approaches._stack_params.default_estimators`). Their settings are scikit-learn's nested
   ``name__setting`` (``set_params(xgb__max_depth=3)``); today's flat names (``xgb_max_depth``) are accepted
   everywhere and translated in one place (:mod:`engine.approaches._stack_params`). A base model of a kind the
   stack has no fast path for (``HistGradientBoostingClassifier``, LightGBM...) is scored by its
   ``predict_proba`` and explained by its single-column effects against the background.
3. Out-of-fold predictions: ``cross_val_predict`` over Pipelines (features + model) with StratifiedKFold
   (``n_folds``): in each fold the preprocessing *and* the model are fitted on the other folds only, so a
   row never contributes to its own meta-feature.
   The base models' margins (logits; an SVC's decision value) are the meta-features.
4. Meta-model (:class:`engine.approaches._stack_parts.MetaNetwork`): a small Keras network on the standardised out-of-fold margins: Dense(16, relu) ->
   Dropout -> Dense(1), plus (``meta_linear_skip``) a linear path from the inputs added to the logit, so
   the net starts from logistic stacking and learns interactions on top. Early stopping on an inner
   stratified validation split (``meta_patience`` epochs without a ``meta_min_delta`` gain) picks the number
   of epochs; with ``meta_refit_full`` the net is then
   retrained for that many epochs on every out-of-fold row. At inference its weights run in NumPy (a
   single lead in well under a millisecond; the saved ``.keras`` file is the source of truth).
   Below ``meta_min_rows`` training rows (0: never) nothing is learned at this step: the same network holds fixed
   weights whose logit is the equal-weight mean of the standardised margins, plus the intercept that matches the
   rows' conversion rate (``meta_rule_`` says which). A few dozen rows' out-of-fold margins (folds of ten rows)
   are mostly noise: on 50 Leads.csv rows the learned network ranked held-out leads below chance (ROC-AUC 0.43)
   while the mean of the same base models scored 0.77 (docs/RESULTS.md, "Learning curve").
5. The preprocessing and base models are refitted on all training rows for test-time predictions.
   An SVC's probability (for :meth:`base_predict_proba`) is a Platt sigmoid fitted on its out-of-fold
   decision values.

Large tables (README, "The stack at a million leads", measured by ``bench scale``): the costs that grow faster
than the rows get row budgets, which a table of up to ``rf_max_rows`` training rows never reaches (Leads.csv's
numbers are the same): each forest tree draws its bootstrap of at most ``rf_max_rows`` rows (scikit-learn's
``max_samples``; without it a tree splits every row down to ``min_samples_leaf``, so the forest's fit, size,
scoring and explanations all grow with the rows), the meta network learns from a stratified sample of at most
``meta_max_rows`` out-of-fold rows (four inputs; its Keras epochs otherwise grow with the rows), the training
probabilities that place the 1-99 score are kept for at most :data:`TRAIN_PROBA_ROWS` rows, and above
``large_rows`` training rows the out-of-fold step uses ``large_n_folds`` folds.

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
from engine.approaches import _stack_params as _sp
from engine.approaches import _stack_parts as _parts
from engine.approaches._stack_explain import EXPLAIN_METHODS  # noqa: F401 - part of this module's API
from engine.approaches.base import Approach
from engine.callbacks import CallbackList, Progress
from engine.data.leads import kinds_given_else_inferred
from engine.signing import dump_signed, load_pickle
from engine.storage import jsonable

#: the default base models' names, in the order of the meta-network's inputs
BASE_MODELS = _parts.BASE_MODELS
#: the four base models that ship, fresh: ``StackingApproach(estimators=[*default_estimators(), ("gbm", ...)])``
default_estimators = _sp.default_estimators
#: The training rows whose probabilities a fitted stack keeps (``train_proba_``: the 1-99 score's percentiles).
TRAIN_PROBA_ROWS = 100_000
#: A small stack that trains in seconds on a few hundred leads: the tests and the API bench use it.
SMALL_PARAMS = {
    "n_folds": 2,
    "rf_n_estimators": 20,
    "xgb_n_estimators": 30,
    "meta_epochs": 5,
    "svc_max_rows": 200,
    "n_jobs": 1,
}


def _column_kinds(X: pd.DataFrame, given: dict[str, str] | None = None) -> dict[str, str]:
    """numeric | categorical | high_cardinality | identifier | text: numbers by dtype, the rest as ``given`` (the
    training table's kinds, the user's included) says, else as :func:`engine.data.leads.infer_kinds` reads them."""
    kinds = kinds_given_else_inferred(X, given)
    out = {}
    for col in X.columns:
        numeric = pd.api.types.is_numeric_dtype(X[col]) and not pd.api.types.is_bool_dtype(X[col])
        kind = kinds[str(col)]
        if numeric:
            out[col] = "numeric"
        elif kind in ("high_cardinality", "identifier", "text"):
            out[col] = kind
        else:
            out[col] = "categorical"
    return out


def _apply_nested(items: list[tuple[str, Any]], nested: dict[str, Any]) -> None:
    """Set ``model__setting`` values on the named models of ``items`` (in place, as scikit-learn's set_params)."""
    models = dict(items)
    by_model: dict[str, dict[str, Any]] = {}
    for key, value in nested.items():
        model, _, setting = key.partition("__")
        if model not in models:
            raise ValueError(
                f"{key!r} names no base model: the stack's base models are {list(models)} "
                "(a setting is written MODEL__SETTING, e.g. xgb__max_depth)"
            )
        by_model.setdefault(model, {})[setting] = value
    for model, settings in by_model.items():
        models[model].set_params(**settings)


def _check_meta_min_rows(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"meta_min_rows must be a whole number of rows, at least 0 (0: always the meta network), got {value!r}"
        )


class StackingApproach(Approach):
    """Base models (``estimators``; by default logistic regression, random forest, XGBoost and an SVC) stacked by a
    Keras network (see module doc). Flat settings (``xgb_max_depth=3``) are accepted as keywords and set the
    nested ones (``xgb__max_depth``): the only thing ``__init__`` does beyond storing its keywords."""

    name = "stacking"
    label = "Stacked ensemble"
    input_kind = "leads"
    explain_budget = 10_000  # the fast additive path: about 1.3 ms a lead
    param_hint = (
        "A base model's setting is MODEL__SETTING (MODEL: lr, rf, xgb or svc; e.g. xgb__max_depth=3) or its flat "
        "name (xgb_max_depth=3); other base models (estimators=[(name, estimator), ...]) are set from Python."
    )

    def __init__(
        self,
        estimators: Any = None,
        n_folds: int = 5,
        seed: int = 42,
        n_jobs: int = 2,
        max_onehot: int = 25,
        min_frequency: int = 10,
        te_smoothing: float = 10.0,
        target_encoder: str = "sklearn",
        svc_max_rows: int = 3000,
        rf_max_rows: int = 50_000,
        meta_max_rows: int = 50_000,
        meta_min_rows: int = 200,
        large_rows: int = 200_000,
        large_n_folds: int = 3,
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
        **base_params: Any,
    ):
        self.estimators = estimators
        self.n_folds = n_folds
        self.seed = seed
        self.n_jobs = n_jobs
        self.max_onehot = max_onehot
        self.min_frequency = min_frequency
        self.te_smoothing = te_smoothing
        self.target_encoder = target_encoder
        self.svc_max_rows = svc_max_rows
        self.rf_max_rows = rf_max_rows
        self.meta_max_rows = meta_max_rows
        self.meta_min_rows = meta_min_rows
        self.large_rows = large_rows
        self.large_n_folds = large_n_folds
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
        if base_params:  # the base models' settings given flat (xgb_max_depth=3) or nested (xgb__max_depth=3)
            self.estimators = self._with_settings(estimators, base_params)

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

    # -- the base models: a list of (name, estimator), settings as name__setting --------------------------
    @classmethod
    def _with_settings(cls, estimators: Any, settings: dict[str, Any]) -> list[tuple[str, Any]]:
        """Copies of ``estimators`` (None: the four that ship) with ``settings`` (flat or nested names) applied."""
        from sklearn.base import clone

        _, nested = _sp.split_params(settings, own=())
        items = [(name, clone(model)) for name, model in _sp.check_estimators(estimators, cls._param_names())]
        _apply_nested(items, nested)
        return items

    def _estimator_items(self) -> list[tuple[str, Any]]:
        """``estimators`` checked (the four that ship when None)."""
        return _sp.check_estimators(self.estimators, self._param_names())

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The stack's parameters; with ``deep`` also each base model by name and its settings as
        ``name__setting`` (``xgb__max_depth``), as scikit-learn's ``StackingClassifier`` lists them."""
        out = super().get_params(deep=False)
        if not deep:
            return out
        try:
            items = self._estimator_items()
        except (TypeError, ValueError):  # an invalid list says so at fit; its parameters are what they are
            return out
        for name, model in items:
            out[name] = model
            out.update({f"{name}__{key}": value for key, value in model.get_params(deep=True).items()})
        return out

    def set_params(self, **params: Any) -> StackingApproach:
        """Set the stack's parameters, a base model by name (``svc=SVC(...)``) or its settings, nested
        (``xgb__max_depth=3``) or flat (``xgb_max_depth=3``). The default base models are made on the first
        setting of one of them (``estimators`` is None until then); a given list's models are changed in place,
        as scikit-learn does."""
        own = self._param_names()
        names = []
        if any(key not in own for key in params):
            names = [name for name, _ in self._estimator_items()]
        whole = {key: params.pop(key) for key in list(params) if key in names and key not in own}
        mine, nested = _sp.split_params(params, own)
        for key, value in mine.items():
            setattr(self, key, value)
        if whole or nested:
            items = [(name, whole.get(name, model)) for name, model in self._estimator_items()]
            _apply_nested(items, nested)
            self.estimators = items
        return self

    @classmethod
    def data_params(cls) -> dict[str, Any]:
        """What a run's settings may name (``--param``, the API, a job, the Train page): the stack's own
        parameters but ``estimators`` (objects, set from Python), and the default base models' settings by
        their flat names (``xgb_max_depth``), in the order of today's form."""
        import inspect

        own = {name: p for name, p in super().data_params().items() if name != "estimators"}
        defaults = _sp.flat_defaults()
        flat = {
            name: inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=defaults[name],
                annotation="Any" if isinstance(defaults[name], str) else inspect.Parameter.empty,
            )
            for name in _sp.FLAT_NAMES
        }
        at = list(own).index("target_encoder") + 1
        order = [*list(own)[:at], *flat, *list(own)[at:]]
        return {name: own.get(name) or flat[name] for name in order}

    @classmethod
    def data_param(cls, key: str) -> Any:
        """The parameter ``key`` names in a run's settings: one of :meth:`data_params` or a default base model's
        setting nested (``xgb__max_depth``, ``rf__criterion``), checked as its flat name is when it has one."""
        import inspect

        known = cls.data_params()
        if key in known:
            return known[key]
        model, _, setting = key.partition("__")
        flat = {nested: name for name, nested in _sp.NESTED_NAMES.items()}
        if key in flat:
            return known[flat[key]].replace(name=key)
        defaults = dict(_sp.default_estimators())
        if model in defaults and setting in defaults[model].get_params():
            value = defaults[model].get_params()[setting]
            return inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value)
        return None

    def stored_params(self) -> dict[str, Any]:
        """The settings a run records (JSON): the stack's own, each base model's class as ``estimators``, and the
        base models' settings that differ from their class's defaults, nested (``xgb__max_depth``)."""
        out = {k: v for k, v in self.get_params(deep=False).items() if k != "estimators"}
        items = self._estimator_items()
        out["estimators"] = [[name, f"{type(m).__module__}.{type(m).__qualname__}"] for name, m in items]
        for name, model in items:
            try:
                plain = type(model)().get_params(deep=False)
            except Exception:  # noqa: BLE001 - a class that needs arguments: record every setting
                plain = {}
            for key, value in model.get_params(deep=False).items():
                if key not in plain or repr(plain[key]) != repr(value):
                    out[f"{name}__{key}"] = value
        return jsonable(out, fallback=repr)

    def make_base_models(self) -> dict[str, Any]:
        """Fresh, unfitted base models by name, as the stack fits them: ``random_state`` / ``n_jobs`` from the
        stack's ``seed`` / ``n_jobs`` where a model leaves them unset (an SVC on at most ``svc_max_rows`` rows is
        :meth:`_fit_one`'s)."""
        return {name: _sp.prepared(model, self.seed, self.n_jobs) for name, model in self._estimator_items()}

    def _fit_one(self, name: str, model: Any, Z: np.ndarray, y: np.ndarray) -> Any:
        """``model`` fitted on all rows (an SVC on at most ``svc_max_rows``, as in its out-of-fold fits)."""
        if _sp.base_kind(model) == "svc":
            return self._subsample(model).fit(Z, y).estimator_
        return _sp.row_budget(model, len(y), self.rf_max_rows).fit(Z, y)

    def _subsample(self, model: Any) -> _parts.Subsample:
        return _parts.Subsample(model, max_rows=self.svc_max_rows, seed=self.seed)

    def _margin(self, name: str, model: Any, Z: np.ndarray) -> np.ndarray:
        """The model's score on the logit scale (an SVC: its decision value). Small batches avoid thread
        start-up; the forest and the SVC run through exact NumPy re-implementations of their predict."""
        small = len(Z) < 200
        kind = _sp.base_kind(model)
        if kind == "forest":
            if small:
                return _parts.logit(_parts.forest_proba(model, Z))
            return _parts.logit(model.predict_proba(Z)[:, 1])
        if kind == "xgboost":
            if model is getattr(self, "models_", {}).get(name):
                booster = self._xgb_boosters[name][0 if small else 1]  # configured once: shared by concurrent predicts
            else:  # a fold model during fit (one thread uses it)
                booster = model.get_booster()
            return np.asarray(booster.inplace_predict(Z, predict_type="margin"), dtype=np.float64)
        if kind == "svc":
            return _parts.svc_decision(model, Z)
        if kind == "linear":
            return np.asarray(model.decision_function(Z), dtype=np.float64)
        return _parts.logit(np.asarray(model.predict_proba(Z))[:, 1])

    def _prepare_predict(self) -> dict:
        """Make the fitted models ready for concurrent scoring, once (after fit or load): each XGBoost
        booster as two configured copies, one thread for small batches (no thread start-up) and ``n_jobs``
        for large ones, and each forest's packed arrays. Scoring then changes no shared model state (setting
        ``nthread`` on a shared booster per call made concurrent predicts fail with XGBoost's
        ``need_configuration_`` check)."""
        self._xgb_boosters = {}
        for name, model in self.models_.items():
            kind = _sp.base_kind(model)
            if kind == "forest":
                _parts.forest_arrays(model)
            if kind != "xgboost":
                continue
            booster = model.get_booster()
            small, large = booster.copy(), booster.copy()
            small.set_param({"nthread": 1})
            large.set_param({"nthread": max(int(self.n_jobs or 1), 1)})
            width = booster.num_features()
            for b in (small, large):  # the first predict configures a booster: do it now, in one thread
                b.inplace_predict(np.zeros((1, width)), predict_type="margin")
            self._xgb_boosters[name] = (small, large)
        return self._xgb_boosters

    def _meta_inputs(self, margins: np.ndarray, Z: np.ndarray) -> np.ndarray:
        extra = Z[:, self.meta_raw_index_] if len(self.meta_raw_index_) else np.zeros((len(Z), 0))
        M = np.hstack([margins, extra])
        return (M - self.meta_mean_) / self.meta_scale_

    # -- fit ----------------------------------------------------------------------------------------
    def _min_per_class(self) -> int:
        return int(self.n_folds)  # every fold holds rows of both classes

    def folds_for(self, rows: int) -> int:
        """The out-of-fold splits for ``rows`` training rows: ``n_folds``, or ``large_n_folds`` (when fewer) above
        ``large_rows``: each fold model then still learns from hundreds of thousands of rows, and every fold
        saved is a fit of every base model saved (README, "The stack at a million leads")."""
        if self.large_rows and rows > int(self.large_rows) and self.large_n_folds:
            return min(int(self.n_folds), int(self.large_n_folds))
        return int(self.n_folds)

    def _fit(self, X: pd.DataFrame, y: np.ndarray, cb: CallbackList) -> None:
        import tempfile

        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import Pipeline

        _parts.check_target_encoder(self.target_encoder)
        _check_meta_min_rows(self.meta_min_rows)
        base = self.make_base_models()  # checks ``estimators`` before any work
        self.base_names_ = list(base)
        self.base_kinds_ = {name: _sp.base_kind(model) for name, model in base.items()}
        n_models = len(base)
        self.n_folds_ = n_folds = self.folds_for(len(y))
        total = n_folds * n_models + n_models + self.meta_epochs
        cb.on_train_begin(total, stage="stacking")
        step = 0
        self.kinds_ = _column_kinds(X, self.given_kinds())
        self.columns_ = list(X.columns)

        # which lead column goes through which transformer: from the values alone (no labels)
        self.plan_ = _parts.plan_columns(X, self.kinds_, max_onehot=self.max_onehot, min_frequency=self.min_frequency)
        oof = np.zeros((len(y), n_models))
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=self.seed)
        # the four models' pipelines share each fold's fitted feature step (joblib's cache, a temporary folder)
        cache_dir = tempfile.TemporaryDirectory(prefix="clab-stack-")
        memory = joblib.Memory(cache_dir.name, verbose=0)
        for j, (name, model) in enumerate(base.items()):
            # out of fold: in each fold the feature pipeline *and* the model see the other folds only
            kind = self.base_kinds_[name]
            if kind == "svc":
                model = self._subsample(model)
            else:  # a forest: each tree on at most rf_max_rows of the fold's training rows (others unchanged)
                model = _sp.row_budget(model, len(y) * (n_folds - 1) // n_folds, self.rf_max_rows)
            pipe = Pipeline([("features", self._features()), ("model", model)], memory=memory)
            method = "decision_function" if kind in ("linear", "svc") else "predict_proba"
            out = cross_val_predict(pipe, X, y, cv=skf, method=method)
            if kind == "xgboost":  # its margin (logit) from the probability
                p = np.clip(out[:, 1].astype(np.float64), 1e-7, 1 - 1e-7)
                oof[:, j] = np.log(p / (1 - p))
            elif method == "predict_proba":
                oof[:, j] = _parts.logit(out[:, 1])
            else:
                oof[:, j] = out
            step += n_folds
            cb.on_step_end(Progress(step=step, total=total, stage=f"out of fold {name} ({n_folds} folds)"))
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
        # Platt scaling of each SVC's out-of-fold decision values -> standalone SVC probabilities
        self.platt_ = {}
        for j, name in enumerate(self.base_names_):
            if self.base_kinds_[name] == "svc":
                platt = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, [j]], y)
                self.platt_[name] = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))

        # meta-features: base margins (+ optionally the strongest numeric raw features)
        self.meta_raw_index_ = self._pick_raw_features(Z, y)
        raw = Z[:, self.meta_raw_index_] if len(self.meta_raw_index_) else np.zeros((len(y), 0))
        M = np.hstack([oof, raw])
        self.meta_mean_ = M.mean(axis=0)
        std = M.std(axis=0)
        self.meta_scale_ = np.where(std > 1e-12, std, 1.0)
        keep = self._sample_rows(y, self.meta_max_rows)  # the meta network learns from at most meta_max_rows rows
        M = (M - self.meta_mean_) / self.meta_scale_
        self.meta_model_ = self._fit_meta(M[keep], y[keep], cb, step, total, n_margins=n_models, rows=len(y))
        self._cache_meta_weights()
        self._prepare_predict()

        rng = np.random.default_rng(self.seed)
        bg = rng.choice(len(X), size=min(self.explain_background, len(X)), replace=False)
        self.background_ = self._transform(X.iloc[np.sort(bg)])
        # the training leads' probabilities place the 1-99 score and tiers: a sample of 100,000 places them as well
        self.train_proba_ = self._proba_matrix(Z[self._sample_rows(y, TRAIN_PROBA_ROWS)])
        cb.on_step_end(Progress(step=total, total=total, stage="done"))
        cb.on_train_end(stage="stacking")

    def _sample_rows(self, y: np.ndarray, max_rows: int | None) -> np.ndarray:
        """Sorted indices of a stratified sample of at most ``max_rows`` rows (every row when there are fewer)."""
        if not max_rows or len(y) <= int(max_rows):
            return np.arange(len(y))
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(y)), train_size=int(max_rows), random_state=self.seed, stratify=y)
        return np.sort(keep)

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

    def _fit_meta(
        self, M: np.ndarray, y: np.ndarray, cb: CallbackList, step: int, total: int, n_margins: int, rows: int
    ):
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

        # below meta_min_rows training rows (``rows``, not the meta_max_rows sample) the out-of-fold margins are too
        # few to learn weights from: their mean
        self.meta_rule_ = "mean" if rows < int(self.meta_min_rows or 0) else "network"
        if self.meta_rule_ == "mean":
            meta = self.make_meta().fit_mean(M, y, n_margins=n_margins)
        else:
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
        return np.column_stack([self._margin(name, self.models_[name], Z) for name in self.base_names_])

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
        (by default ``lr``, ``rf``, ``xgb``, ``svc``)."""
        self._check_fitted("models_")
        unknown = set(models or []) - set(self.base_names_)
        if unknown:
            raise ValueError(f"Unknown base model(s) {sorted(unknown)}; choose from {list(self.base_names_)}")
        Z = self._transform(self._check_X(X))
        out = {}
        for name in models or self.base_names_:
            model, kind = self.models_[name], self.base_kinds_[name]
            if kind == "forest":
                out[name] = _parts.forest_p(model, Z)
            elif kind == "other":
                out[name] = np.asarray(model.predict_proba(Z))[:, 1].astype(np.float64)
            else:
                margin = self._margin(name, model, Z)
                if kind == "svc":
                    a, b = self.platt_[name]
                    margin = a * margin + b
                out[name] = _parts.sigmoid(margin)
        return out

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
        ``"permutation"`` (default ``explain_method``; see :meth:`explain_matrix`). A free-text column's row
        also carries ``words``: what its reason quotes (``mentions 'budget approved'``)."""
        X = self._check_X(X)
        contrib = self.explain_matrix(X, method=method, n_permutations=n_permutations)
        return _explain.explain_frame(self.columns_, X, contrib, _explain.text_words(self, X, contrib))

    def expected_value(self) -> float:
        """Mean P(convert) over the explanation background (the baseline of ``explain``)."""
        self._check_fitted("background_")
        return float(self._proba_matrix(self.background_).mean())

    def save(self, path: str | Path) -> None:

        self._check_fitted("meta_weights_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, model in self.models_.items():  # names are checked: a letter, then letters, digits, underscores
            if self.base_kinds_[name] == "xgboost":
                model.save_model(path / f"base_{name}.json")  # XGBoost's own format
            else:
                dump_signed(model, path / f"base_{name}.joblib")
        # the base models as given (unfitted): a loaded stack's get_params and clone are the trained one's
        dump_signed(list(self._estimator_items()), path / "estimators.joblib")
        dump_signed(self.features_, path / "features.joblib")
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
            base_models=list(self.base_names_),
            base_kinds=dict(self.base_kinds_),
            platt={name: list(ab) for name, ab in self.platt_.items()},
            fit_seconds=getattr(self, "fit_seconds_", None),
            meta_history=getattr(self, "meta_history_", {}),
            meta_rule=getattr(self, "meta_rule_", "network"),
        )

    @classmethod
    def load(cls, path: str | Path) -> StackingApproach:
        from xgboost import XGBClassifier

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
        params = payload["params"]
        if "base_kinds" in payload:  # saved with the base models as a list: they are in estimators.joblib
            own = {k: v for k, v in params.items() if k in cls._param_names() and k != "estimators"}
            obj = cls(estimators=load_pickle(path, "estimators.joblib"), **own)
            names, kinds = list(payload["base_models"]), dict(payload["base_kinds"])
            platt = {name: tuple(ab) for name, ab in payload["platt"].items()}
            files = {name: f"base_{name}" for name in names}
        else:  # saved before (the four, flat parameter names, files by the models' long names)
            obj = cls(**params)
            names = [_sp.OLD_PART_NAMES[old] for old in payload["base_models"]]
            kinds = {"lr": "linear", "rf": "forest", "xgb": "xgboost", "svc": "svc"}
            platt = {"svc": tuple(payload["svc_platt"])}
            files = {new: old for old, new in _sp.OLD_PART_NAMES.items()}
        for name in names:
            if not _sp.NAME.match(str(name)) or kinds.get(name) not in _sp.KINDS:
                raise ValueError(f"{path}: base model {name!r} is not one this engine saves; it is not loaded")
        obj.columns_ = payload["columns"]
        obj.plan_ = {k: list(v) for k, v in payload["plan"].items()}
        obj.groups_ = {k: [int(i) for i in v] for k, v in payload["groups"].items()}
        obj.kinds_ = payload["kinds"]
        obj.base_names_, obj.base_kinds_, obj.platt_ = names, kinds, platt
        obj.meta_history_ = payload.get("meta_history", {})
        obj.meta_rule_ = payload.get("meta_rule", "network")
        obj.features_ = load_pickle(path, "features.joblib")
        obj.models_ = {}
        for name in names:
            if kinds[name] == "xgboost":
                obj.models_[name] = XGBClassifier()
                obj.models_[name].load_model(path / f"{files[name]}.json")
            else:
                obj.models_[name] = load_pickle(path, f"{files[name]}.joblib")
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
