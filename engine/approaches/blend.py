"""A blend of stored lead runs: their probabilities combined by a logistic regression on their logits
(``method="logistic"``) or by weights that sum to 1 (``method="weights"``), fitted on the runs' calibration slice
only (:mod:`engine.blend` builds and stores one; this is the model a blend run holds).

Its parts are run ids of the same run store, loaded through the store (only runs it accepts, never a file given
from outside); the blend's own folder holds nothing but ``approach.json``. It scores through the same scoring
service as any run (``predict_proba`` asks each part) and explains itself through its parts' contributions
weighted by the blend (:meth:`BlendApproach.explain`). A part that no longer loads is an error naming the part,
never a blend of the parts that are left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.approaches.base import Approach, contribution_frame
from engine.runs import BrokenRun, RunStore

METHODS = ("logistic", "weights")
_CLIP = 1e-6


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _CLIP, 1 - _CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


class BlendApproach(Approach):
    """``parts``: the run ids blended, in order; ``method``: ``logistic`` or ``weights``."""

    name = "blend"
    label = "Blend of runs"
    input_kind = "leads"
    input_kinds = ("leads",)
    explain_budget = 20  # every part explains each row (an LLM part is slow)
    explain_rows = 5

    def __init__(self, parts: tuple = (), method: str = "logistic"):
        self.parts = parts
        self.method = method

    def _fit(self, X: pd.DataFrame, y: np.ndarray, callbacks) -> None:
        raise TypeError(
            "a blend is not trained on a table: blend stored runs with `python -m engine blend RUN_ID RUN_ID ...`"
        )

    # -- the combiner: fitted on the parts' probabilities on the calibration slice ---------------------------------
    def fit_combiner(self, P: np.ndarray, y: np.ndarray) -> BlendApproach:
        """Fit the weights (or the logistic regression) on ``P`` (rows x parts: each part's P(convert) on the
        calibration slice) and its labels ``y``; nothing else is read."""
        P, y = np.asarray(P, dtype=float), np.asarray(y).astype(int)
        if self.method not in METHODS:
            raise ValueError(f"blend method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if P.ndim != 2 or P.shape[1] != len(self.parts) or len(P) != len(y):
            raise ValueError(f"expected one column of probabilities per part ({len(self.parts)}), got {P.shape}")
        if self.method == "logistic":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1.0, max_iter=1000).fit(logit(P), y)
            self.coef_, self.intercept_ = lr.coef_[0].astype(float), float(lr.intercept_[0])
        else:
            from scipy.optimize import minimize

            def loss(theta: np.ndarray) -> float:
                w = np.exp(theta - theta.max())
                p = np.clip(P @ (w / w.sum()), _CLIP, 1 - _CLIP)
                return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))

            theta = minimize(loss, np.zeros(P.shape[1]), method="Nelder-Mead" if P.shape[1] > 1 else "BFGS").x
            w = np.exp(theta - theta.max())
            self.coef_, self.intercept_ = w / w.sum(), 0.0
        self._set_classes(y)
        return self

    def combine(self, P: np.ndarray) -> np.ndarray:
        """P(convert) of the blend from its parts' probabilities (rows x parts)."""
        self._check_fitted("coef_")
        P = np.asarray(P, dtype=float)
        if self.method == "logistic":
            return _sigmoid(logit(P) @ self.coef_ + self.intercept_)
        return np.clip(P @ self.coef_, 0.0, 1.0)

    @property
    def weights(self) -> dict[str, float]:
        """Each part's weight (``weights``) or coefficient on its logit (``logistic``), by run id."""
        self._check_fitted("coef_")
        return {part: float(c) for part, c in zip(self.parts, self.coef_)}

    # -- scoring ---------------------------------------------------------------------------------------------------
    def part_probas(self, X: pd.DataFrame) -> np.ndarray:
        """Rows x parts: each part's P(convert) for ``X`` (the blend's columns, which every part shares)."""
        self._check_fitted("part_models_")
        X = self._check_X(X)
        out = []
        for part, model in zip(self.parts, self.part_models_):
            try:
                out.append(np.asarray(model.predict_proba(X))[:, 1])
            except Exception as exc:  # noqa: BLE001 - named, never a blend of the parts that are left
                raise ValueError(
                    f"part {part} of the blend could not score the rows ({type(exc).__name__}: {exc})"
                ) from exc
        return np.column_stack(out)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.combine(self.part_probas(X))
        return np.column_stack([1 - p, p])

    def variant_probas(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        P = self.part_probas(X)
        return {part: P[:, k] for k, part in enumerate(self.parts)}

    def explain(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each part's contributions weighted by the blend. ``weights``: the weighted sum (exact: the blend is
        that sum). ``logistic``: each part's contribution as a change of its logit (its probability with and
        without the field), times its coefficient, summed over parts, back in probability points of the blend."""
        X = self._check_X(X).reset_index(drop=True)
        P = self.part_probas(X)
        p = self.combine(P)
        tables = []
        for k, model in enumerate(self.part_models_):
            table = model.explain(X)
            if not len(table):
                continue
            rows = table["row"].to_numpy()
            c = table["contribution"].to_numpy(float)
            if self.method == "weights":
                effect = self.coef_[k] * c
            else:
                p_k = P[rows, k]
                effect = self.coef_[k] * (logit(p_k) - logit(p_k - c))
            tables.append(table.assign(effect=effect))
        if not tables:
            return contribution_frame([])
        joined = pd.concat(tables, ignore_index=True)
        grouped = joined.groupby(["row", "feature"], sort=False).agg(value=("value", "first"), effect=("effect", "sum"))
        grouped = grouped.reset_index()
        rows = grouped["row"].to_numpy()
        if self.method == "weights":
            contribution = grouped["effect"].to_numpy(float)
        else:
            contribution = p[rows] - _sigmoid(logit(p[rows]) - grouped["effect"].to_numpy(float))
        return contribution_frame(grouped.assign(contribution=contribution))

    # -- files -----------------------------------------------------------------------------------------------------
    def stored_params(self) -> dict[str, Any]:
        return {"parts": list(self.parts), "method": self.method}

    def save(self, path: str | Path) -> None:
        self._check_fitted("coef_")
        self._write_params(path, state={"coef": [float(c) for c in self.coef_], "intercept": float(self.intercept_)})

    @classmethod
    def load(cls, path: str | Path) -> BlendApproach:
        """The blend in ``path`` (a run's ``model`` folder) with its parts loaded from the same run store (the
        folder two levels up). A part that is gone, damaged or not a plain lead run is a BrokenRun naming it."""
        saved = cls._read_params(path)
        params, state = saved["params"], saved["state"]
        model = cls(parts=tuple(params["parts"]), method=params["method"])
        model.coef_, model.intercept_ = np.asarray(state["coef"], dtype=float), float(state["intercept"])
        if model.method not in METHODS or len(model.coef_) != len(model.parts) or not model.parts:
            raise ValueError("its approach.json does not describe a blend (parts, method and weights disagree)")
        folder = Path(path).resolve().parent
        store = RunStore(folder.parent)
        model.part_models_ = []
        for part in model.parts:
            try:
                run = store.get(part)
                if run.settings.approach == cls.name:
                    raise ValueError("it is a blend itself")
                model.part_models_.append(run.load_approach())
            except (KeyError, ValueError, OSError) as exc:
                problem = exc.problem if isinstance(exc, BrokenRun) else (exc.args[0] if exc.args else str(exc))
                raise BrokenRun(
                    folder.name,
                    f"its part {part} cannot be loaded ({problem}); blend runs that load, or train the part again",
                ) from exc
        model.classes_ = np.array([0, 1])
        return model
