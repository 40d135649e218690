"""A small approach that calibrates, for the learning-curve tests: a logistic regression on the lead table's numbers
(median for missing) fitted on part of the rows it is given, then a Platt (logistic) calibration fitted on the rest
of them, as the LLM approach does with its calibration slice. Every fit is counted and records the rows (the frame's
index labels) it was given and the ones it calibrated on (:data:`FITS`), and every scoring call the rows it scored
(:data:`SCORED`): real fits, so that a test can count them and see which rows went where.

``delay`` seconds are spent in 10 steps before the fit, each reported to the callbacks (a job's cancel lands
between them)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from engine.approaches.base import Approach
from engine.callbacks import Progress

#: One entry per fit in this process: {"rows": [...], "calibration": [...]} (index labels of the rows given).
FITS: list[dict] = []
#: One entry per scoring call in this process: the index labels scored.
SCORED: list[list] = []


class CalibratingLogistic(Approach):
    name = "calibrating_logistic"
    label = "Calibrated logistic regression (tests)"
    input_kind = "leads"
    input_kinds = ("leads",)
    min_per_class = 4

    def __init__(self, C: float = 1.0, calibration_share: float = 0.25, delay: float = 0.0, seed: int = 0):
        self.C = C
        self.calibration_share = calibration_share
        self.delay = delay
        self.seed = seed

    def _numbers(self, X: pd.DataFrame) -> np.ndarray:
        frame = X.reindex(columns=self.columns_).apply(pd.to_numeric, errors="coerce").astype(float)
        return ((frame.fillna(self.medians_) - self.means_) / self.scales_).to_numpy()

    def _fit(self, X: pd.DataFrame, y: np.ndarray, callbacks) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        callbacks.on_train_begin(10, stage="waiting")
        for step in range(10):
            time.sleep(float(self.delay) / 10)
            callbacks.on_step_end(Progress(step=step + 1, total=10, stage="waiting"))
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        self.columns_ = numeric
        frame = X[numeric].astype(float)
        self.medians_ = frame.median().fillna(0.0)
        self.means_ = frame.fillna(self.medians_).mean()
        self.scales_ = frame.fillna(self.medians_).std().replace(0, 1).fillna(1.0)
        fit_rows, cal_rows = train_test_split(
            np.arange(len(y)), test_size=self.calibration_share, stratify=y, random_state=self.seed
        )
        model = LogisticRegression(C=float(self.C), max_iter=2000).fit(self._numbers(X.iloc[fit_rows]), y[fit_rows])
        self.coef_, self.intercept_ = model.coef_[0], float(model.intercept_[0])
        margins = self._numbers(X.iloc[cal_rows]) @ self.coef_ + self.intercept_
        platt = LogisticRegression(max_iter=2000).fit(margins[:, None], y[cal_rows])
        self.platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        FITS.append({"rows": list(X.index), "calibration": list(X.index[cal_rows])})

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted("platt_")
        SCORED.append(list(X.index))
        a, b = self.platt_
        z = a * (self._numbers(X) @ self.coef_ + self.intercept_) + b
        p = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
        return np.column_stack([1 - p, p])

    def save(self, path) -> None:  # pragma: no cover - the curve tests never store a run
        raise NotImplementedError("a test approach for learning curves; it is not stored")

    @classmethod
    def load(cls, path):  # pragma: no cover
        raise NotImplementedError("a test approach for learning curves; it is not stored")
