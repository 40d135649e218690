"""A fourth approach in one file, plugged in without editing the engine: a plain logistic regression on the lead
table (numbers standardised with their median for missing, categories one-hot with 'missing' as a level).

It is what docs/ADDING_AN_APPROACH.md walks through: subclass :class:`engine.approaches.base.Approach`, store the
constructor's keywords unchanged, implement ``_fit``, ``predict_proba``, ``save`` and ``load`` (JSON here: no
pickles), set the hooks that differ from the defaults, and name the class in ``CLAB_APPROACHES`` (or a package's
``conversion_lab.approaches`` entry point). Explanations come from the generic path (occlusion)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from engine.approaches.base import Approach


class PlainLogistic(Approach):
    name = "plain_logistic"
    label = "Plain logistic regression"
    input_kind = "leads"
    input_kinds = ("leads",)
    explain_budget = 500

    def __init__(self, C: float = 1.0, max_levels: int = 20):
        self.C = C
        self.max_levels = max_levels

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        parts = []
        for column in self.numeric_:
            values = pd.to_numeric(X[column], errors="coerce").astype(float)
            values = values.fillna(self.medians_[column])
            parts.append(((values - self.means_[column]) / self.scales_[column]).to_numpy()[:, None])
        for column in self.levels_:
            text = X[column].astype(object).where(X[column].notna(), "missing").astype(str)
            parts.append(np.column_stack([(text == level).to_numpy(float) for level in self.levels_[column]]))
        return np.hstack(parts) if parts else np.zeros((len(X), 0))

    def _fit(self, X: pd.DataFrame, y: np.ndarray, callbacks) -> None:
        from sklearn.linear_model import LogisticRegression

        callbacks.on_train_begin(1, stage="logistic regression")
        self.columns_ = list(X.columns)
        self.numeric_ = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        self.medians_ = {c: float(X[c].median()) if X[c].notna().any() else 0.0 for c in self.numeric_}
        filled = {c: X[c].astype(float).fillna(self.medians_[c]) for c in self.numeric_}
        self.means_ = {c: float(filled[c].mean()) for c in self.numeric_}
        self.scales_ = {c: float(filled[c].std()) or 1.0 for c in self.numeric_}
        self.levels_ = {
            c: X[c]
            .astype(object)
            .where(X[c].notna(), "missing")
            .astype(str)
            .value_counts()
            .index[: int(self.max_levels)]
            .tolist()
            for c in X.columns
            if c not in self.numeric_
        }
        model = LogisticRegression(C=float(self.C), max_iter=2000).fit(self._design(X), y)
        self.coef_, self.intercept_ = model.coef_[0], float(model.intercept_[0])
        callbacks.on_train_end(stage="logistic regression")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted("coef_")
        X = X.reindex(columns=self.columns_)
        p = 1 / (1 + np.exp(-np.clip(self._design(X) @ self.coef_ + self.intercept_, -30, 30)))
        return np.column_stack([1 - p, p])

    def save(self, path) -> None:
        state = {k: getattr(self, k) for k in ("columns_", "numeric_", "medians_", "means_", "scales_", "levels_")}
        state.update(coef_=self.coef_.tolist(), intercept_=self.intercept_)
        self._write_params(path)
        (Path(path) / "state.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, path) -> PlainLogistic:
        model = cls(**cls._read_params(path)["params"])
        for key, value in json.loads((Path(path) / "state.json").read_text()).items():
            setattr(model, key, np.asarray(value) if key == "coef_" else value)
        model.classes_ = np.array([0, 1])
        return model
