"""The stack's library parts' fast paths and its meta-network estimator, in one module.

The hand-written NumPy prediction paths stand in for library calls only where that makes one-lead scoring
take milliseconds (no thread start-up, no TensorFlow call); each equals the library it stands in for
(tests/approaches/test_fast_paths.py, on random and real inputs):

* :func:`forest_proba` / :func:`forest_leaves`: ``RandomForestClassifier.predict_proba(Z)[:, 1]`` /
  ``.apply(Z)`` by one NumPy walk of all trees at once (the same float32 comparisons);
* :func:`svc_decision`: ``SVC.decision_function`` for an RBF kernel, with BLAS (reads the private, pinned
  ``SVC._gamma``);
* :func:`meta_forward`: the Keras meta-network's forward pass on its weights (``MetaNetwork.predict_proba``).

:class:`MetaNetwork` is the Keras meta-model as a small scikit-learn-shaped estimator (``__init__`` stores
parameters only; ``fit`` / ``predict_proba``), trained with early stopping on a stratified validation fold.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, OneToOneFeatureMixin, TransformerMixin

#: The names of the stack's default base models (:func:`engine.approaches._stack_params.default_estimators`), in
#: the order of the meta-network's inputs; a fitted stack's own are its ``base_names_``.
BASE_MODELS = ("lr", "rf", "xgb", "svc")

CLIP = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, CLIP, 1 - CLIP)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))  # exp overflows past 709; 1/(1+e^700) is 1e-304


# -- SVC (RBF) ------------------------------------------------------------------------------------------
def svc_decision(model: Any, Z: np.ndarray, block: int = 4096) -> np.ndarray:
    """``SVC.decision_function`` for an RBF kernel, with BLAS (same values to ~1e-12, several times faster)."""
    sv = model.support_vectors_
    gamma = float(model._gamma)
    coef = model.dual_coef_[0]
    sv_sq = (sv * sv).sum(axis=1)
    out = np.empty(len(Z))
    for start in range(0, len(Z), block):
        z = Z[start : start + block]
        d2 = (z * z).sum(axis=1)[:, None] + sv_sq[None, :] - 2.0 * (z @ sv.T)
        out[start : start + block] = np.exp(-gamma * np.maximum(d2, 0.0)) @ coef
    return out + model.intercept_[0]


# -- random forest --------------------------------------------------------------------------------------
#: packed trees by fitted forest, kept beside the forest (nothing is attached to the library's object)
_PACKED_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: below this many rows the NumPy walk is used (above it scikit-learn's threads win)
SMALL_BATCH = 200


def forest_arrays(model: Any) -> dict[str, np.ndarray]:
    """Trees of a fitted RandomForestClassifier packed into padded arrays (computed once per forest)."""
    packed = _PACKED_FORESTS.get(model)
    if packed is not None:
        return packed
    trees = [est.tree_ for est in model.estimators_]
    width = max(t.node_count for t in trees)
    T = len(trees)
    feature = np.zeros((T, width), dtype=np.int64)
    threshold = np.zeros((T, width))
    left = np.full((T, width), -1, dtype=np.int64)
    right = np.full((T, width), -1, dtype=np.int64)
    value = np.zeros((T, width))
    depth = 0
    for i, t in enumerate(trees):
        n = t.node_count
        feature[i, :n] = np.maximum(t.feature, 0)
        threshold[i, :n] = t.threshold
        left[i, :n] = t.children_left
        right[i, :n] = t.children_right
        v = t.value[:, 0, :]
        value[i, :n] = v[:, 1] / v.sum(axis=1)
        depth = max(depth, t.max_depth)
    packed = {"feature": feature, "threshold": threshold, "left": left, "right": right, "value": value, "depth": depth}
    _PACKED_FORESTS[model] = packed
    return packed


def walk(f: dict[str, np.ndarray], Z: np.ndarray) -> np.ndarray:
    """``(rows, trees)`` leaf node ids of packed trees ``f``, all trees walked at once (float32 comparisons, as
    scikit-learn makes them)."""
    Zf = Z.astype(np.float32).astype(np.float64)
    T = f["feature"].shape[0]
    node = np.zeros((len(Z), T), dtype=np.int64)
    trees = np.arange(T)[None, :]
    rows = np.arange(len(Z))[:, None]
    for _ in range(f["depth"]):
        lch = f["left"][trees, node]
        leaf = lch < 0
        if leaf.all():
            break
        go_left = Zf[rows, f["feature"][trees, node]] <= f["threshold"][trees, node]
        node = np.where(leaf, node, np.where(go_left, lch, f["right"][trees, node]))
    return node


def forest_leaves(model: Any, Z: np.ndarray) -> np.ndarray:
    """``(rows, trees)`` leaf node ids, as ``model.apply(Z)`` (NumPy walk for a few rows: no thread start-up)."""
    if len(Z) >= SMALL_BATCH:
        return model.apply(Z.astype(np.float32))
    return walk(forest_arrays(model), Z)


def forest_proba(model: Any, Z: np.ndarray) -> np.ndarray:
    """``RandomForestClassifier.predict_proba(Z)[:, 1]`` by walking all trees at once in NumPy: exact
    (same float32 feature comparisons), and far faster than scikit-learn on a few rows."""
    f = forest_arrays(model)
    node = walk(f, Z)
    return f["value"][np.arange(f["feature"].shape[0])[None, :], node].mean(axis=1)


def forest_p(model: Any, Z: np.ndarray) -> np.ndarray:
    """P(class 1) of the forest: the NumPy walk for small batches, scikit-learn's for large ones."""
    return forest_proba(model, Z) if len(Z) < SMALL_BATCH else model.predict_proba(Z)[:, 1]


# -- the meta network -----------------------------------------------------------------------------------
def meta_forward(weights: dict[str, list[np.ndarray]], M: np.ndarray) -> np.ndarray:
    """P(convert) of the meta network (Dense(relu) -> Dense(1) [+ linear skip] -> sigmoid) in NumPy; the
    dropout layer is the identity at inference."""
    w = weights
    h = np.maximum(M @ w["hidden"][0] + w["hidden"][1], 0.0)
    z = h @ w["deep_out"][0] + w["deep_out"][1]
    if "linear" in w:
        z = z + M @ w["linear"][0] + w["linear"][1]
    return sigmoid(z)[:, 0]


class MetaNetwork:
    """The stack's Keras meta-model as an estimator: Dense(hidden, relu) -> Dropout -> Dense(1), plus (with
    ``linear_skip``) a linear path from the inputs added to the logit ("wide & deep": logistic stacking plus
    learned interactions).

    ``fit`` trains on a stratified ``1 - validation`` share of the rows with
    ``keras.callbacks.EarlyStopping(patience=patience, min_delta=min_delta, restore_best_weights=True)`` on the
    validation loss, so training stops when the loss stops moving (``patience`` epochs without an improvement
    of ``min_delta``); with ``refit_full`` a fresh net is then trained for the best
    number of epochs on every row. ``predict_proba`` runs the weights in NumPy (:func:`meta_forward`); the
    Keras model (``model_``) is the model of record, saved as ``.keras``."""

    def __init__(
        self,
        hidden: int = 16,
        dropout: float = 0.2,
        epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 0.005,
        patience: int = 10,
        validation: float = 0.2,
        linear_skip: bool = True,
        l2: float = 1e-3,
        refit_full: bool = True,
        seed: int = 42,
        min_delta: float = 1e-4,
    ):
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation = validation
        self.linear_skip = linear_skip
        self.l2 = l2
        self.refit_full = refit_full
        self.seed = seed
        self.min_delta = min_delta

    def build(self, n_inputs: int):
        import keras

        keras.utils.set_random_seed(self.seed)
        reg = keras.regularizers.l2(self.l2) if self.l2 else None
        inp = keras.Input(shape=(n_inputs,), name="margins")
        hidden = keras.layers.Dense(self.hidden, activation="relu", kernel_regularizer=reg, name="hidden")(inp)
        hidden = keras.layers.Dropout(self.dropout, seed=self.seed, name="dropout")(hidden)
        z = keras.layers.Dense(1, kernel_regularizer=reg, name="deep_out")(hidden)
        if self.linear_skip:
            linear = keras.layers.Dense(1, name="linear")(inp)
            z = keras.layers.Add(name="logit")([z, linear])
        out = keras.layers.Activation("sigmoid", name="proba")(z)
        model = keras.Model(inp, out, name="stacking_meta")
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="binary_crossentropy")
        return model

    def fit(self, M: np.ndarray, y: np.ndarray, on_epoch: Callable[[int, dict], None] | None = None) -> MetaNetwork:
        """``on_epoch(epochs_done, logs)`` is called after every epoch of the early-stopped run."""
        import keras
        from sklearn.model_selection import train_test_split

        y = np.asarray(y).astype(int).ravel()
        tr, va = train_test_split(np.arange(len(y)), test_size=self.validation, random_state=self.seed, stratify=y)
        done = [0]

        class _Forward(keras.callbacks.Callback):
            def on_epoch_end(self_inner, epoch, logs=None):  # noqa: N805
                done[0] += 1
                if on_epoch is not None:
                    on_epoch(done[0], dict(logs or {}))

        model = self.build(M.shape[1])
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.patience, min_delta=self.min_delta, restore_best_weights=True
        )
        Mf, yf = np.asarray(M, dtype="float32"), y.astype("float32")
        history = model.fit(
            Mf[tr],
            yf[tr],
            validation_data=(Mf[va], yf[va]),
            epochs=self.epochs,
            batch_size=self.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=[stop, _Forward()],
        )
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        # the epoch whose weights EarlyStopping restored (the last that beat the best by min_delta)
        best = getattr(stop, "best_epoch", None)
        self.best_epoch_ = int(best) + 1 if best is not None else int(np.argmin(history.history["val_loss"])) + 1
        self.epochs_run_ = len(history.history["val_loss"])
        if self.refit_full:
            # early stopping chose the number of epochs; train that long on every row
            model = self.build(M.shape[1])
            model.fit(Mf, yf, epochs=self.best_epoch_, batch_size=self.batch_size, shuffle=True, verbose=0)
        self.set_model(model)
        self.classes_ = np.array([0, 1])
        return self

    def fit_mean(self, M: np.ndarray, y: np.ndarray, n_margins: int) -> MetaNetwork:
        """The small-data rule (no training): the same network with fixed weights whose logit is the equal-weight
        mean of the first ``n_margins`` (standardised) inputs, the base models' margins, plus the intercept that
        makes the mean probability the rows' share of converted leads (slope 1; raw-feature inputs weigh 0). A
        handful of rows' out-of-fold margins are too noisy to learn weights from (docs/RESULTS.md)."""
        y = np.asarray(y).astype(float).ravel()
        k = int(n_margins)
        if not self.linear_skip and self.hidden < 2:
            raise ValueError("the mean rule needs the linear path (meta_linear_skip) or meta_hidden of at least 2")
        w = np.zeros(M.shape[1])
        w[:k] = 1.0 / k
        z = np.asarray(M, dtype=np.float64) @ w
        rate = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        b = float(np.log(rate / (1 - rate)))
        for _ in range(50):  # Newton steps on the intercept: mean P == the share of converted rows
            p = sigmoid(z + b)
            gap, slope = float(p.mean() - y.mean()), float((p * (1 - p)).mean())
            b -= gap / max(slope, 1e-9)
            if abs(gap) < 1e-10:
                break
        model = self.build(M.shape[1])
        n_hidden = self.hidden
        for layer in model.layers:
            if layer.name == "linear":
                layer.set_weights([w[:, None].astype("float32"), np.array([b], dtype="float32")])
            elif layer.name == "hidden":
                kernel = np.zeros((M.shape[1], n_hidden), dtype="float32")
                if not self.linear_skip:  # relu(z) - relu(-z) == z
                    kernel[:, 0], kernel[:, 1] = w, -w
                layer.set_weights([kernel, np.zeros(n_hidden, dtype="float32")])
            elif layer.name == "deep_out":
                out = np.zeros((n_hidden, 1), dtype="float32")
                bias = np.zeros(1, dtype="float32")
                if not self.linear_skip:
                    out[0, 0], out[1, 0], bias[0] = 1.0, -1.0, b
                layer.set_weights([out, bias])
        self.history_, self.best_epoch_, self.epochs_run_ = {}, 0, 0
        self.set_model(model)
        self.classes_ = np.array([0, 1])
        return self

    def set_model(self, model) -> None:
        """Use a (fitted or loaded) Keras model: NumPy copies of its weights serve ``predict_proba``."""
        self.model_ = model
        self.weights_ = {
            layer.name: [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
            for layer in model.layers
            if layer.get_weights()
        }

    def forward(self, M: np.ndarray) -> np.ndarray:
        """P(convert), ``(rows,)``."""
        return meta_forward(self.weights_, M)

    def predict_proba(self, M: np.ndarray) -> np.ndarray:
        p = self.forward(np.asarray(M, dtype=np.float64))
        return np.column_stack([1 - p, p])


# -- feature preparation: a scikit-learn ColumnTransformer ---------------------------------------------------
MISSING = "missing"


def _levels(s) -> list:
    """One column (a Series) as text levels, missing as ``"missing"``."""
    import pandas as pd

    return [
        MISSING if v is None or v is pd.NA or v != v else (v if isinstance(v, str) else str(v))
        for v in s.to_numpy(dtype=object, na_value=None)
    ]


def _numbers(s) -> np.ndarray:
    """One column (a Series) as floats."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def as_levels(X) -> np.ndarray:
    """Categorical columns as text levels, missing values as ``"missing"`` (an object array)."""
    import pandas as pd

    raw = X.to_numpy(dtype=object, na_value=None) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)
    flat = [
        MISSING if v is None or v is pd.NA or v != v else (v if isinstance(v, str) else str(v)) for v in raw.ravel()
    ]
    return np.array(flat, dtype=object).reshape(raw.shape)


def as_numbers(X) -> np.ndarray:
    """Numeric columns as floats (text that does not parse becomes missing)."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return np.column_stack([_numbers(X[c]) for c in X.columns]) if len(X.columns) else np.zeros((len(X), 0))
    return np.asarray(X, dtype=np.float64)


def onehot_name(feature: str, category: Any) -> str:
    return f"{feature}={category}"


def plan_columns(X, kinds: dict[str, str], max_onehot: int = 25, min_frequency: int = 10) -> dict[str, list[str]]:
    """Which lead column goes through which transformer (``num``, ``onehot``, ``target``, ``text``; the rest is
    dropped), from the training rows' values (no labels): identifiers, constant or empty numbers and
    single-level categories are dropped; a ``text`` column (free text: notes, a conversation) goes to the text
    model (:class:`engine.approaches._stack_text.TextScore`); a category with more than ``max_onehot`` frequent
    levels (or a high-cardinality column) is target encoded. (No ``log1p`` of skewed numbers: measured on Leads.csv it
    moved ROC-AUC by 0.0004, 0.9014 with it and 0.9011 without; the trees do not see it at all.)"""

    plan: dict[str, list[str]] = {"num": [], "onehot": [], "target": [], "text": []}
    for col in X.columns:
        kind = kinds.get(col, "categorical")
        if kind == "identifier":
            continue
        if kind == "numeric":
            x = as_numbers(X[[col]])[:, 0]
            finite = x[np.isfinite(x)]
            if finite.size == 0 or (np.std(finite) == 0 and not np.isnan(x).any()):
                continue
            plan["num"].append(col)
            continue
        uniq, counts = np.unique(as_levels(X[[col]])[:, 0], return_counts=True)
        if kind == "text":  # free text: most cells unique, so no level is frequent; two texts at least
            if len(uniq) - (MISSING in uniq) >= 2:
                plan["text"].append(col)
            continue
        frequent = int((counts >= min_frequency).sum())
        levels = frequent + (1 if frequent < len(uniq) else 0)
        if levels <= 1:
            continue
        if kind == "high_cardinality" or levels > max_onehot:
            plan["target"].append(col)
        else:
            plan["onehot"].append(col)
    return plan


#: the encoders the stack can use for its many-level categories (``target_encoder``)
TARGET_ENCODERS = ("sklearn", "category_encoders")


def check_target_encoder(name: Any) -> str:
    if name not in TARGET_ENCODERS:
        raise ValueError(f"Unknown target_encoder {name!r}; choose one of {list(TARGET_ENCODERS)}")
    return name


class CrossFitTargetEncoder(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """``category_encoders.TargetEncoder`` cross-fitted as scikit-learn's ``TargetEncoder`` is: ``fit_transform``
    encodes each of ``cv`` stratified folds with an encoder fitted on the other folds (a training row's encoding
    never uses its own label); ``transform`` uses one fitted on every row (unseen levels get the prior).

    Input: text levels, one column per feature (what :func:`as_levels` gives). After ``fit``, ``categories_``,
    ``encodings_`` and ``target_mean_`` mean what they mean on scikit-learn's ``TargetEncoder`` (the NumPy
    transform, :func:`features_transform`, reads them). ``smoothing`` and ``min_samples_leaf`` are
    category_encoders' (the weight of a level's own rate is a sigmoid of its count)."""

    def __init__(self, smoothing: float = 10.0, min_samples_leaf: int = 20, cv: int = 5, seed: int = 0):
        self.smoothing = smoothing
        self.min_samples_leaf = min_samples_leaf
        self.cv = cv
        self.seed = seed

    #: category_encoders 2.11 sets a pandas option that pandas 3 deprecates, warning on every call: not ours to fix
    _QUIET = {"message": "'future.no_silent_downcasting' is deprecated"}

    @staticmethod
    def _frame(X):
        import pandas as pd

        levels = np.asarray(X, dtype=object)
        return pd.DataFrame(levels, columns=[f"c{j}" for j in range(levels.shape[1])])

    def _encoder(self, frame, y: np.ndarray):
        import category_encoders as ce

        encoder = ce.TargetEncoder(
            cols=list(frame.columns), smoothing=self.smoothing, min_samples_leaf=self.min_samples_leaf
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", **self._QUIET)
            return encoder.fit(frame, y)

    def _encode(self, encoder, frame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", **self._QUIET)
            return encoder.transform(frame).to_numpy(dtype=np.float64)

    def _fit(self, X, y):
        frame, y = self._frame(X), np.asarray(y).astype(int).ravel()
        self.n_features_in_ = frame.shape[1]
        self.encoder_ = self._encoder(frame, y)
        self.target_mean_ = float(y.mean())
        self.categories_, self.encodings_ = [], []
        for col in frame.columns:
            cats = np.unique(frame[col].to_numpy())
            probe = frame.iloc[np.zeros(len(cats), dtype=int)].reset_index(drop=True)  # any values elsewhere
            probe[col] = cats
            self.categories_.append(cats)
            self.encodings_.append(self._encode(self.encoder_, probe)[:, frame.columns.get_loc(col)])
        return frame, y

    def fit(self, X, y) -> CrossFitTargetEncoder:
        self._fit(X, y)
        return self

    def fit_transform(self, X, y) -> np.ndarray:
        from sklearn.model_selection import StratifiedKFold

        frame, y = self._fit(X, y)
        out = np.empty(frame.shape)
        for train, test in StratifiedKFold(self.cv, shuffle=True, random_state=self.seed).split(frame, y):
            out[test] = self._encode(self._encoder(frame.iloc[train], y[train]), frame.iloc[test])
        return out

    def transform(self, X) -> np.ndarray:
        return self._encode(self.encoder_, self._frame(X))


def make_features(
    plan: dict[str, list[str]],
    min_frequency: int = 10,
    te_smoothing: float | str = 10.0,
    te_folds: int = 5,
    seed: int = 0,
    target_encoder: str = "sklearn",
):
    """The unfitted feature pipeline: a ``ColumnTransformer`` (numbers: median ``SimpleImputer`` with missing
    indicators; categories: ``OneHotEncoder`` with rare levels grouped, unknown ones sent to that group;
    many-level categories: a target encoder cross-fitted in ``fit_transform``, scikit-learn's
    ``TargetEncoder`` or :class:`CrossFitTargetEncoder` (``target_encoder``); free text: the out-of-fold logit of
    a TF-IDF logistic regression, :class:`engine.approaches._stack_text.TextScore`), then ``StandardScaler``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

    from engine.approaches._stack_text import TextScore

    if check_target_encoder(target_encoder) == "sklearn":
        # the folds as a splitter (TargetEncoder's own shuffle/random_state are deprecated in scikit-learn 1.9; the
        # same StratifiedKFold it builds from them, so the encodings are identical)
        folds = StratifiedKFold(te_folds, shuffle=True, random_state=seed)
        target = TargetEncoder(target_type="binary", smooth=te_smoothing, cv=folds)
    elif isinstance(te_smoothing, str):
        raise ValueError(f"te_smoothing={te_smoothing!r} is scikit-learn's; category_encoders needs a number > 0")
    else:
        target = CrossFitTargetEncoder(smoothing=te_smoothing, cv=te_folds, seed=seed)
    onehot = OneHotEncoder(
        min_frequency=min_frequency,
        handle_unknown="infrequent_if_exist",
        sparse_output=False,
        feature_name_combiner=onehot_name,
    )

    def after(parse: Callable, step: str, transformer: Any) -> Pipeline:
        return Pipeline([("parse", FunctionTransformer(parse, feature_names_out="one-to-one")), (step, transformer)])

    steps = {
        "num": after(as_numbers, "impute", SimpleImputer(strategy="median", add_indicator=True)),
        "onehot": after(as_levels, "encode", onehot),
        "target": after(as_levels, "encode", target),
        "text": TextScore(cv=te_folds, seed=seed),
    }
    parts = [(name, step, plan[name]) for name, step in steps.items() if plan.get(name)]
    columns = ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("columns", columns), ("scale", StandardScaler())])


def column_groups(features, plan: dict[str, list[str]], columns: list[str]) -> dict[str, list[int]]:
    """For every lead column, the indices of the encoded columns that come from it (empty when dropped),
    read from ``get_feature_names_out`` (``transformer__name``; one-hot names are ``column=level``,
    missing indicators ``missingindicator_column``)."""
    groups: dict[str, list[int]] = {c: [] for c in columns}
    for i, full in enumerate(features.get_feature_names_out()):
        part, name = str(full).split("__", 1)
        owners = plan[part]
        if name in owners:
            col = name
        elif part == "num" and name.startswith("missingindicator_") and name[len("missingindicator_") :] in owners:
            col = name[len("missingindicator_") :]
        elif part == "onehot":
            col = max((c for c in owners if name.startswith(f"{c}=")), key=len)
        else:
            raise ValueError(f"encoded column {full!r} matches no lead column")
        groups[col].append(i)
    return groups


#: up to this many rows the feature transform runs in NumPy (faster than the ColumnTransformer, equal to it)
FEATURES_NUMPY_ROWS = 10_000
#: packed feature pipelines (fitted ``make_features`` pipelines), for the NumPy transform
_PACKED_FEATURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pack_features(features) -> list:
    packed = _PACKED_FEATURES.get(features)
    if packed is not None:
        return packed
    ct = features.named_steps["columns"]
    parts = []
    for name, pipe, cols in ct.transformers_:
        if name == "remainder" or pipe == "drop":
            continue
        cols = list(cols)
        if name == "text":  # a TF-IDF regression: its own transform (sparse, one call for the batch)
            parts.append((name, cols, {"model": pipe}))
            continue
        enc = pipe.steps[-1][1]
        if name == "num":
            ind = enc.indicator_.features_ if enc.indicator_ is not None else np.zeros(0, dtype=np.int64)
            parts.append(
                (
                    name,
                    cols,
                    {
                        "fill": np.asarray(enc.statistics_, dtype=np.float64),
                        "indicator": np.asarray(ind, dtype=np.int64),
                    },
                )
            )
        elif name == "onehot":
            maps, widths = [], []
            for j, cats in enumerate(enc.categories_):
                infrequent = enc.infrequent_categories_[j]
                rare = set(infrequent.tolist()) if infrequent is not None else set()
                frequent = [c for c in cats.tolist() if c not in rare]
                index = {c: i for i, c in enumerate(frequent)}
                other = len(frequent) if rare else -1
                for c in rare:
                    index[c] = other
                maps.append((index, other))
                widths.append(len(frequent) + (1 if rare else 0))
            parts.append((name, cols, {"maps": maps, "widths": widths}))
        else:  # target
            maps = [
                dict(zip(cats.tolist(), np.asarray(codes, dtype=np.float64).tolist()))
                for cats, codes in zip(enc.categories_, enc.encodings_)
            ]
            parts.append((name, cols, {"maps": maps, "prior": float(enc.target_mean_)}))
    scale = features.named_steps["scale"]
    packed = [parts, np.asarray(scale.mean_, dtype=np.float64), np.asarray(scale.scale_, dtype=np.float64)]
    _PACKED_FEATURES[features] = packed
    return packed


#: Scaled features are clipped to +-this many standard deviations: a number such as 1e308 otherwise scales to
#: infinity or overflows in the float32 forest walk and the SVC's squared distances (probability NaN). No
#: training value comes near (|z| <= sqrt(rows) <= 1,000 for the 1,000,000-row limit), so nothing else changes.
Z_BOUND = 1e6


def features_transform(features, X) -> np.ndarray:
    """``features.transform(X)`` of a fitted :func:`make_features` pipeline: NumPy on the fitted library
    parameters up to :data:`FEATURES_NUMPY_ROWS` rows (a ColumnTransformer costs ~8 ms a call on one row,
    in validation mostly), the library for more (tests/approaches/test_fast_paths.py holds them equal)."""
    if len(X) > FEATURES_NUMPY_ROWS:
        return np.clip(features.transform(X), -Z_BOUND, Z_BOUND)
    parts, mean, scale = _pack_features(features)
    n = len(X)
    blocks = []
    for name, cols, p in parts:
        if name == "num":
            x = np.column_stack([_numbers(X[c]) for c in cols])
            missing = np.isnan(x)
            blocks.append(np.where(missing, p["fill"][None, :], x))
            if len(p["indicator"]):
                blocks.append(missing[:, p["indicator"]].astype(np.float64))
        elif name == "onehot":
            for c, (index, other), width in zip(cols, p["maps"], p["widths"]):
                out = np.zeros((n, width))
                for r, v in enumerate(_levels(X[c])):
                    k = index.get(v, other)
                    if k >= 0:
                        out[r, k] = 1.0
                blocks.append(out)
        elif name == "text":
            blocks.append(p["model"].transform(X[cols]))
        else:
            blocks.append(
                np.column_stack(
                    [[m.get(v, p["prior"]) for v in _levels(X[c])] for c, m in zip(cols, p["maps"])]
                ).astype(np.float64)
            )
    raw = np.hstack(blocks) if blocks else np.zeros((n, 0))
    return np.clip((raw - mean) / scale, -Z_BOUND, Z_BOUND)


class Subsample(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on at most ``max_rows`` rows (a stratified sample; the SVC's cost grows with the
    square of the rows); ``decision_function`` / ``predict_proba`` are the fitted estimator's
    (``estimator_``). ``__init__`` stores parameters only."""

    def __init__(self, estimator: Any = None, max_rows: int = 3000, seed: int = 0):
        self.estimator = estimator
        self.max_rows = max_rows
        self.seed = seed

    def fit(self, Z, y) -> Subsample:
        from sklearn.base import clone
        from sklearn.model_selection import train_test_split

        y = np.asarray(y)
        self.estimator_ = clone(self.estimator)
        if len(y) > self.max_rows:
            keep, _ = train_test_split(np.arange(len(y)), train_size=self.max_rows, random_state=self.seed, stratify=y)
            self.estimator_.fit(Z[keep], y[keep])
        else:
            self.estimator_.fit(Z, y)
        self.classes_ = self.estimator_.classes_
        return self

    def decision_function(self, Z) -> np.ndarray:
        if getattr(self.estimator_, "kernel", None) == "rbf" and hasattr(self.estimator_, "_gamma"):
            return svc_decision(self.estimator_, np.asarray(Z, dtype=np.float64))  # the tested fast path
        return self.estimator_.decision_function(Z)

    def predict(self, Z) -> np.ndarray:
        return self.estimator_.predict(Z)

    def predict_proba(self, Z) -> np.ndarray:
        return self.estimator_.predict_proba(Z)
