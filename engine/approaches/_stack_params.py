"""The stack's base models as a list of ``(name, estimator)`` (scikit-learn's ``StackingClassifier(estimators=...)``)
and the one place where today's flat parameter names meet scikit-learn's nested ones.

* :func:`default_estimators`: the four that ship (``lr``, ``rf``, ``xgb``, ``svc``) with the measured settings.
  ``random_state`` and ``n_jobs`` are left unset: the stack fills them from its ``seed`` and ``n_jobs`` for every
  base model that leaves them unset (:func:`prepared`), as scikit-learn's ensembles seed their members.
* :data:`FLAT_NAMES`: ``xgb_max_depth`` -> ``xgb__max_depth`` and the rest. The nested spelling is the canonical
  one (``get_params`` / ``set_params``, what a run stores); the flat names are what stored runs' specs, the
  command line, the API, the Train page and older code use, and they keep working everywhere through
  :func:`split_params`.
* :func:`check_estimators`: a user's list checked, with errors that name the problem and the fix.
* :func:`base_kind`: which fast scoring and explanation path a base model has (``other``: none, the generic one).
"""

from __future__ import annotations

import re
from typing import Any

#: today's flat parameter names -> (base model name, that model's parameter)
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "lr_C": ("lr", "C"),
    "rf_n_estimators": ("rf", "n_estimators"),
    "rf_min_samples_leaf": ("rf", "min_samples_leaf"),
    "rf_max_features": ("rf", "max_features"),
    "xgb_n_estimators": ("xgb", "n_estimators"),
    "xgb_max_depth": ("xgb", "max_depth"),
    "xgb_learning_rate": ("xgb", "learning_rate"),
    "xgb_subsample": ("xgb", "subsample"),
    "xgb_colsample_bytree": ("xgb", "colsample_bytree"),
    "xgb_min_child_weight": ("xgb", "min_child_weight"),
    "svc_C": ("svc", "C"),
    "svc_gamma": ("svc", "gamma"),
}
#: the nested spelling of each flat name
NESTED_NAMES: dict[str, str] = {flat: f"{model}__{param}" for flat, (model, param) in FLAT_NAMES.items()}
#: runs saved before the base models had short names (model files, ``base_models`` in approach.json)
OLD_PART_NAMES = {"logistic_regression": "lr", "random_forest": "rf", "xgboost": "xgb", "svc": "svc"}

#: a base model's name: it names files and appears in ``name__param``
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
#: the kinds of base model with a fast path (scoring and explanation); anything else is ``other``
KINDS = ("linear", "forest", "xgboost", "svc", "other")


def default_estimators() -> list[tuple[str, Any]]:
    """Fresh, unfitted copies of the four base models that ship, with their measured settings."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC
    from xgboost import XGBClassifier

    return [
        ("lr", LogisticRegression(C=0.3, max_iter=3000)),
        ("rf", RandomForestClassifier(n_estimators=300, min_samples_leaf=2, max_features="sqrt")),
        (
            "xgb",
            XGBClassifier(
                n_estimators=500,
                max_depth=4,
                learning_rate=0.05,
                subsample=0.8,
                colsample_bytree=0.7,
                min_child_weight=2.0,
                tree_method="hist",
                eval_metric="logloss",
            ),
        ),
        ("svc", SVC(C=1.0, gamma="scale", kernel="rbf", cache_size=500)),
    ]


def flat_defaults() -> dict[str, Any]:
    """The default value of every flat name (read from :func:`default_estimators`, never written twice)."""
    models = dict(default_estimators())
    return {flat: models[model].get_params(deep=False)[param] for flat, (model, param) in FLAT_NAMES.items()}


def split_params(params: dict[str, Any], own: set[str] | list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` as ``(the stack's own, the base models' in the nested spelling)``: flat names become nested
    ones; a name that is neither the stack's own, flat nor nested (``model__param``) is a ValueError."""
    mine, nested = {}, {}
    for key, value in params.items():
        if key in own:
            mine[key] = value
        elif key in NESTED_NAMES:
            nested[NESTED_NAMES[key]] = value
        elif "__" in key:
            nested[key] = value
        else:
            raise ValueError(
                f"The stack has no parameter {key!r}; a base model's setting is written MODEL__SETTING "
                f"(e.g. xgb__max_depth) or by its flat name ({', '.join(FLAT_NAMES)})"
            )
    both = sorted(k for k in params if k in NESTED_NAMES and NESTED_NAMES[k] in params)
    if both:
        raise ValueError(f"{both} given twice, flat and nested (model__setting); give each setting once")
    return mine, nested


def check_estimators(estimators: Any, reserved: set[str] | list[str] = ()) -> list[tuple[str, Any]]:
    """``estimators`` as a list of ``(name, estimator)``; ValueError/TypeError naming the problem and the fix."""
    example = "e.g. estimators=[('lr', LogisticRegression()), ('hgb', HistGradientBoostingClassifier())]"
    if estimators is None:
        return default_estimators()
    if isinstance(estimators, (str, bytes, dict)) or not isinstance(estimators, (list, tuple)):
        raise TypeError(
            f"estimators must be a list of (name, estimator) pairs, not {type(estimators).__name__}; {example}"
        )
    if not estimators:
        raise ValueError(f"estimators is empty: the stack needs at least one base model; {example}")
    out, seen = [], set()
    for i, item in enumerate(estimators):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"estimators[{i}] is {item!r}, not a (name, estimator) pair; {example}")
        name, model = item
        if not isinstance(name, str) or not NAME.match(name) or "__" in name:
            raise ValueError(
                f"estimators[{i}] has the name {name!r}: a base model's name is a letter then up to 31 letters, "
                "digits or single underscores (it names the model's files and its settings, name__setting)"
            )
        if name in seen:
            raise ValueError(f"Two base models are named {name!r}; give each a name of its own")
        if name in reserved:
            raise ValueError(f"The base model name {name!r} is a parameter of the stack; choose another name")
        needs = ("fit", "get_params") + (() if base_kind(model) != "other" else ("predict_proba",))
        missing = [m for m in needs if not callable(getattr(model, m, None))]
        if missing:
            raise TypeError(
                f"Base model {name!r} ({type(model).__name__}) has no {', '.join(missing)}: each base model must be "
                "a scikit-learn classifier with predict_proba"
            )
        seen.add(name)
        out.append((name, model))
    return out


def base_kind(model: Any) -> str:
    """``linear`` (a binary linear classifier: exact attributions), ``forest`` (scikit-learn's random forest),
    ``xgboost``, ``svc`` (an RBF SVC: NumPy scoring, Platt probability, at most ``svc_max_rows`` rows) or
    ``other`` (any classifier with ``predict_proba``: the generic path)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if isinstance(model, SVC) and model.get_params().get("kernel") == "rbf":
        return "svc"
    if isinstance(model, LogisticRegression):
        return "linear"
    if isinstance(model, RandomForestClassifier):
        return "forest"
    try:
        from xgboost import XGBClassifier
    except ImportError:  # pragma: no cover - xgboost ships with the engine
        return "other"
    if isinstance(model, XGBClassifier) and model.get_params().get("booster") in (None, "gbtree"):
        return "xgboost"
    return "other"


def prepared(model: Any, seed: int, n_jobs: int) -> Any:
    """An unfitted copy of ``model`` with ``random_state`` / ``n_jobs`` set to the stack's where it leaves them
    unset (None); nothing else changes. LogisticRegression's ``n_jobs`` has no effect and is left alone."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    model = clone(model)
    params = model.get_params(deep=False)
    fill = {}
    if "random_state" in params and params["random_state"] is None:
        fill["random_state"] = seed
    if "n_jobs" in params and params["n_jobs"] is None and not isinstance(model, LogisticRegression):
        fill["n_jobs"] = n_jobs
    return model.set_params(**fill) if fill else model


def row_budget(model: Any, fit_rows: int, max_rows: int | None) -> Any:
    """``model`` with a forest's trees each drawn from at most ``max_rows`` of the ``fit_rows`` rows it is fitted
    on (scikit-learn's ``max_samples``: every tree bootstraps its own ``max_rows``, so the forest still sees all
    rows): a forest's fit time, size and scoring time otherwise grow with the rows (a tree splits down to
    ``min_samples_leaf``). Only a bootstrapped scikit-learn forest whose ``max_samples`` is unset is changed;
    anything else, and a fit on at most ``max_rows`` rows, is returned as it is."""
    from sklearn.ensemble import RandomForestClassifier

    if not max_rows or fit_rows <= max_rows or not isinstance(model, RandomForestClassifier):
        return model
    params = model.get_params(deep=False)
    if not params.get("bootstrap", True) or params.get("max_samples") is not None:
        return model
    return model.set_params(max_samples=min(1.0, int(max_rows) / int(fit_rows)))
