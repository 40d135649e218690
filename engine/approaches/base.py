"""The one interface every approach implements, and the registry of approaches.

An approach is shaped like a scikit-learn estimator:

* every hyper-parameter is a keyword of ``__init__`` that is stored unchanged and nothing else;
* learned state ends with ``_``;
* ``fit(X, y, callbacks=None)`` returns ``self``: the shared work (rows and labels checked, callbacks wrapped,
  time measured, classes set) is done here, then the approach's own ``_fit(X, y, callbacks)`` (AutoGluon's
  ``AbstractModel.fit`` -> ``_fit``); ``_check_X`` and ``min_per_class`` are the hooks a subclass may change;
* ``predict_proba(X)`` returns an ``(n, 2)`` array, column 1 = probability of conversion;
* ``explain(X)`` returns a contribution table (see :data:`CONTRIBUTION_COLUMNS`);
* ``save(path)`` writes native files into a folder, ``load(path)`` (a classmethod) reads them back;
* ``after_fit_artifacts(input_kind)`` says what a fitted run stores beside its model for scoring and the pages
  (:class:`AfterFit`): the training pipeline asks, and names none of them itself.

``X`` is a :class:`pandas.DataFrame`: lead features for ``input_kind == "leads"``, or a frame
with a ``transcript`` column (plus metadata columns) for ``input_kind == "transcripts"``.
"""

from __future__ import annotations

import inspect
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from engine.approaches.registry import PARAMS_FILE
from engine.callbacks import CallbackList
from engine.data.text import format_value, is_missing
from engine.scoring import save_training_profile
from engine.storage import jsonable, write_json

if TYPE_CHECKING:
    from engine.runs import Run

#: Columns of the table returned by ``explain``, the same for every approach.
#: ``row``: position of the row in X; ``feature``: column (or phrase) name; ``value``: the value
#: shown to the user as text; ``contribution``: change in the probability of conversion
#: (probability points, positive raises the score) attributed to that feature.
CONTRIBUTION_COLUMNS = ["row", "feature", "value", "contribution"]


def contribution_frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Build a contribution table in the shared shape, sorted by row then |contribution|."""
    frame = pd.DataFrame(rows, columns=CONTRIBUTION_COLUMNS) if not isinstance(rows, pd.DataFrame) else rows
    frame = frame[CONTRIBUTION_COLUMNS].copy()
    frame["row"] = frame["row"].astype(int)
    frame["feature"] = frame["feature"].astype(str)
    frame["value"] = frame["value"].astype(str)
    frame["contribution"] = frame["contribution"].astype(float)
    order = frame.assign(_abs=frame["contribution"].abs()).sort_values(["row", "_abs"], ascending=[True, False])
    return order.drop(columns="_abs").reset_index(drop=True)


@dataclass(frozen=True)
class FitRows:
    """The rows of a finished fit, as an :class:`AfterFit` step gets them: the whole table ``X`` with its labels
    ``y`` and ``row_ids``, the positions of the training and test rows, the columns' ``kinds`` (a lead table's),
    the run's ``input_kind`` and the split's ``seed``."""

    X: pd.DataFrame
    y: np.ndarray
    row_ids: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    input_kind: str
    kinds: dict[str, str]
    seed: int

    @property
    def X_train(self) -> pd.DataFrame:
        return self.X.iloc[self.train_idx]


@dataclass(frozen=True)
class AfterFit:
    """One thing a fitted run stores beside its model: ``save(run, model, rows, log)`` writes it into the run's
    (staging) folder (``rows``: :class:`FitRows`; ``log(line)`` reports). ``phase`` is when the pipeline does it:
    ``"store"`` with the model (what scoring needs: a failure fails the training), ``"explain"`` after the stored
    explanations (slow extras for a page: a failure is logged and the run is kept without it). ``doing`` and
    ``done`` are the progress texts."""

    phase: str
    doing: str
    save: Callable[[Run, Approach, FitRows, Callable[[str], None]], None]
    done: str = ""


def _save_training_profile(run: Run, model: Approach, rows: FitRows, log: Callable[[str], None]) -> None:
    """Scoring's reference for new leads: the training rows' profile and a sample of them."""
    save_training_profile(run, rows.X_train, rows.kinds, seed=rows.seed)


class Approach(ClassifierMixin, BaseEstimator, ABC):
    """Base class of every approach: a scikit-learn classifier (``get_params`` / ``set_params`` /
    ``clone`` from :class:`~sklearn.base.BaseEstimator`, ``classes_`` after ``fit``). Subclasses set
    ``name`` and ``input_kind``; their ``__init__`` stores every keyword unchanged and does nothing else."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # its name for people ("Stacked ensemble"); the registry name when empty
    input_kind: ClassVar[str] = "leads"  # the input it was made for: "leads" or "transcripts"

    # -- what the rest of the product asks of an approach (hooks: a new approach sets these, nothing else
    #    outside its file changes) ---------------------------------------------------------------------------
    #: The inputs it takes (the registry's :func:`input_kinds` is derived from this).
    input_kinds: ClassVar[tuple[str, ...]] = ("leads",)
    #: Rows scoring explains by default (the top of a ranked list): what one explanation costs decides it.
    explain_budget: ClassVar[int] = 20
    #: Test rows of a run's stored explanation (the Explain page's first sample) for lead tables; approaches
    #: whose explanation re-scores each row many times keep it small.
    explain_rows: ClassVar[int] = 30
    #: Whether a training job asks for a GPU when the machine has one.
    wants_gpu: ClassVar[bool] = False
    #: Named sets of settings a training may start from (``--preset NAME``; :meth:`preset_params`).
    presets: ClassVar[tuple[str, ...]] = ()
    #: The part that is the approach without its own training (generic embeddings beside fine-tuned ones): the
    #: board says "the training did not help" when it scores better.
    untrained_part: ClassVar[str | None] = None
    #: Whether a fitted run stores 2-D maps of its embeddings (the Embeddings page).
    has_embedding_maps: ClassVar[bool] = False
    #: A sentence added to the error for a parameter it does not have (how its parameters are spelled).
    param_hint: ClassVar[str] = ""

    @classmethod
    def preset_params(cls, preset: str, params: dict[str, Any]) -> dict[str, Any]:
        """The settings of ``preset`` (one of :attr:`presets`) for a training given ``params`` explicitly."""
        raise ValueError(f"the {cls.name} approach has no preset {preset!r}")

    def after_fit_artifacts(self, input_kind: str) -> tuple[AfterFit, ...]:
        """What a fitted run of ``input_kind`` stores beside its model, in order (:class:`AfterFit`). By default,
        for a lead table, what scoring checks new rows against: the training profile (values seen) and a sample of
        the training rows (the shift check). An approach adds its own (the embeddings' maps) to these."""
        if input_kind == "leads":
            return (AfterFit("store", "saving the training profile", _save_training_profile),)
        return ()

    def variant_probas(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """P(convert) of each part the approach is made of, by part name (the board's parts); none by default."""
        return {}

    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's parameter names (scikit-learn's ``_get_param_names``, in signature order)."""
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD]

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return cls._param_names()

    @classmethod
    def data_params(cls) -> dict[str, inspect.Parameter]:
        """The parameters a run's settings may name, as data (``train --param``, the API, a job, the Train page's
        form), by name: the constructor's by default. An approach whose constructor takes objects, or more
        spellings than its form shows (the stack's base models), says so here and in :meth:`data_param`."""
        sig = inspect.signature(cls.__init__)
        return {name: sig.parameters[name] for name in cls._param_names()}

    @classmethod
    def data_param(cls, key: str) -> inspect.Parameter | None:
        """The parameter ``key`` names in a run's settings (its type and default), or None when there is none."""
        return cls.data_params().get(key)

    def stored_params(self) -> dict[str, Any]:
        """The settings a run records (plain JSON): ``get_params()`` by default."""
        return jsonable(self.get_params())

    def _set_classes(self, y) -> None:
        """Fitted state every classifier carries: the labels seen, ``[0, 1]``."""
        self.classes_ = np.unique(np.asarray(y).astype(int))

    #: The fewest rows of each class (0 and 1) a fit needs; a subclass may set it or override
    #: :meth:`_min_per_class` (the stack's depends on its folds).
    min_per_class: ClassVar[int] = 2

    # -- the contract ------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y, callbacks: list | None = None, calibration=None, kinds=None) -> Approach:
        """Fit on rows ``X`` and 0/1 labels ``y`` (one per row). The checks, the callbacks, the fit's time
        (``fit_seconds_``) and ``classes_`` are the same for every approach; the model is :meth:`_fit`'s.

        ``calibration``: ``(X_slice, y_slice)``, the protocol's calibration slice (rows kept out of ``X``, the same
        for every approach on a dataset). An approach that calibrates itself reads it in ``_fit`` from
        ``self._calibration_set`` (LoRA, instead of holding out rows of its own); the others never see it.

        ``kinds``: the columns' kinds as the training's lead table has them (``{column: kind}``: inferred, or set by
        the user), read in ``_fit`` through :meth:`given_kinds`; an approach that reads kinds takes these over its
        own guess, so a column the user set to ``text`` is text to the model too."""
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        cb = callbacks if isinstance(callbacks, CallbackList) else CallbackList(callbacks)
        if calibration is not None:
            X_cal, y_cal = calibration
            calibration = (self._check_X(X_cal), np.asarray(y_cal).astype(int).ravel())
        self._calibration_set = calibration  # not learned state (no trailing _): cleared once the fit ends
        self._kinds_given = {str(c): str(k) for c, k in dict(kinds).items()} if kinds else None
        started = time.perf_counter()
        try:
            self._fit(X, y, cb)
        finally:
            self._calibration_set = None
            self._kinds_given = None
        self.fit_seconds_ = time.perf_counter() - started
        self._set_classes(y)
        return self

    def given_kinds(self) -> dict[str, str]:
        """During ``_fit``: the kinds ``fit`` was given (``{column: kind}``; empty when none were)."""
        return dict(getattr(self, "_kinds_given", None) or {})

    def fit_facts(self) -> dict:
        """Facts of the last fit a run records in its ``metrics.json`` (plain JSON by key; the LLM's text budget:
        ``{"text_budget": {...}}``): none by default."""
        return {}

    @abstractmethod
    def _fit(self, X: pd.DataFrame, y: np.ndarray, callbacks) -> None:
        """The approach's own fit on checked rows and 0/1 ``int`` labels, with a ``CallbackList``."""

    def _check_X(self, X) -> pd.DataFrame:
        """The rows as a data frame with at least one column (a dict is one row)."""
        if isinstance(X, dict):
            X = pd.DataFrame([X])
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, not {type(X).__name__}")
        if len(X.columns) == 0:
            raise ValueError("X has no feature columns; check the leak policy and exclusions")
        return X

    def _min_per_class(self) -> int:
        return int(self.min_per_class)

    def _check_y(self, y, n_rows: int) -> np.ndarray:
        """0/1 labels, one per row, with at least :meth:`_min_per_class` of each class."""
        y = np.asarray(y).ravel()
        if y.dtype.kind in "OUS" and len(y) and all(isinstance(v, str) and v.strip() in ("0", "1") for v in y):
            y = np.array([int(v.strip()) for v in y])  # "0"/"1" read as text from a file
        if len(y) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(y)}; pass one label per row")
        try:
            values = set(pd.unique(y).tolist())
            zero_one = values <= {0, 1}
        except TypeError:  # labels that cannot be compared with numbers
            zero_one = False
        if not zero_one:
            shown = sorted(map(str, pd.unique(y)))[:5]
            raise ValueError(f"y must hold 0/1 labels (1 = converted); found {shown}")
        y = y.astype(int)
        counts = np.bincount(y, minlength=2)
        need = self._min_per_class()
        if counts.min() < need:
            raise ValueError(
                f"{type(self).__name__} needs at least {need} examples of each class (0 and 1) to fit; got "
                f"{counts[0]} of 0 and {counts[1]} of 1. Add examples of the class with fewer."
            )
        return y

    @abstractmethod
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    def predict(self, X: pd.DataFrame, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= threshold).astype(int)

    def explain(self, X: pd.DataFrame) -> pd.DataFrame:
        """The generic path, for an approach without its own: occlusion. A filled field's contribution is the
        lead's probability minus the probability with that field missing (every approach reads missing fields),
        one batched ``predict_proba`` per column."""
        if isinstance(X, dict):
            X = pd.DataFrame([X])
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, not {type(X).__name__}")
        X = X.reset_index(drop=True)
        full = np.asarray(self.predict_proba(X))[:, 1]
        rows = []
        for column in X.columns:
            filled = [i for i, v in enumerate(X[column].tolist()) if not is_missing(v)]
            if not filled:
                continue
            without = X.copy()
            try:  # missing in the column's own kind of values (text stays text for the model reading it)
                without[column] = pd.Series([None] * len(X), index=X.index, dtype=X[column].dtype)
            except (TypeError, ValueError):  # a dtype that cannot hold a missing value (int): as objects
                without[column] = pd.Series([None] * len(X), index=X.index, dtype=object)
            p = np.asarray(self.predict_proba(without))[:, 1]
            rows.extend(
                {
                    "row": i,
                    "feature": str(column),
                    "value": format_value(X[column].iloc[i]),
                    "contribution": full[i] - p[i],
                }
                for i in filled
            )
        return contribution_frame(rows)

    @abstractmethod
    def save(self, path: str | Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path) -> Approach: ...

    # -- helpers for subclasses -----------------------------------------------------------------
    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet: call fit(X, y) first.")

    def _write_params(self, path: str | Path, **extra: Any) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / PARAMS_FILE, {"approach": self.name, "params": self.stored_params(), **extra})

    @staticmethod
    def _read_params(path: str | Path) -> dict[str, Any]:
        return json.loads((Path(path) / PARAMS_FILE).read_text())
