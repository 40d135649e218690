"""The ranges the approaches' numeric parameters must lie in: sizes, counts and epochs positive, shares and
probabilities in their interval, ``n_jobs`` -1 (every core) or 1 to :data:`MAX_JOBS`, seeds 32-bit.

:func:`check_range` is called by :func:`engine.pipeline.check_param`, the one check of parameters that every
path goes through before anything is stored: ``train --param``, a dashboard job (its
:class:`engine.jobspec.TrainSpec` is checked when made, before the job is queued) and the job's own process.
A parameter not listed here is checked for its type only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.approaches._stack_params import NESTED_NAMES

#: The most worker processes/threads a run may ask for (``n_jobs``); -1 asks for every core.
MAX_JOBS = 256


@dataclass(frozen=True)
class Range:
    """``low`` to ``high`` (either None: unbounded; ``*_open``: that end excluded), plus single ``also`` values."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[tuple[float, str], ...] = ()  # (value, what it means)

    def holds(self, value: float) -> bool:
        if any(value == v for v, _ in self.also):
            return True
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            words = (
                f"{'above' if self.low_open else 'from'} {_num(self.low)} "
                f"{'and below' if self.high_open else 'to'} {_num(self.high)}"
            )
        elif self.low is not None:
            words = f"{'above' if self.low_open else 'at least'} {_num(self.low)}"
        else:
            words = f"{'below' if self.high_open else 'at most'} {_num(self.high)}"
        extra = [f"{_num(v)} ({meaning})" for v, meaning in self.also]
        return " or ".join([*extra, words])


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


COUNT = Range(1)  # sizes, counts, epochs, rows: at least 1
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)  # rates, regularisation strengths
DROPOUT = Range(0, 1, high_open=True)  # a probability of dropping: 0 (none) up to, not including, 1
SHARE = Range(0, 1, low_open=True)  # a share of rows/columns or a step size: above 0, up to 1
SPLIT = Range(0, 1, low_open=True, high_open=True)  # a held-out share: both ends excluded
SEED = Range(0, 2**32 - 1)
N_JOBS = Range(1, MAX_JOBS, also=((-1, "every core"),))

#: approach -> parameter -> its range.
BOUNDS: dict[str, dict[str, Range]] = {
    "stacking": {
        "n_folds": Range(2, 100),
        "seed": SEED,
        "n_jobs": N_JOBS,
        "max_onehot": NON_NEGATIVE,
        "min_frequency": COUNT,
        "te_smoothing": NON_NEGATIVE,
        "lr_C": POSITIVE,
        "rf_n_estimators": Range(1, 100_000),
        "rf_min_samples_leaf": COUNT,
        "xgb_n_estimators": Range(1, 100_000),
        "xgb_max_depth": Range(1, 64),
        "xgb_learning_rate": SHARE,
        "xgb_subsample": SHARE,
        "xgb_colsample_bytree": SHARE,
        "xgb_min_child_weight": NON_NEGATIVE,
        "svc_C": POSITIVE,
        "svc_max_rows": COUNT,
        "rf_max_rows": COUNT,
        "meta_max_rows": COUNT,
        "meta_min_rows": NON_NEGATIVE,
        "large_rows": COUNT,
        "large_n_folds": Range(2, 100),
        "meta_hidden": COUNT,
        "meta_dropout": DROPOUT,
        "meta_epochs": COUNT,
        "meta_batch_size": COUNT,
        "meta_learning_rate": POSITIVE,
        "meta_patience": COUNT,
        "meta_validation": SPLIT,
        "meta_raw_features": NON_NEGATIVE,
        "meta_l2": NON_NEGATIVE,
        "meta_min_delta": NON_NEGATIVE,
        "explain_background": COUNT,
        "explain_permutations": COUNT,
    },
    "lora": {
        "r": COUNT,
        "lora_alpha": POSITIVE,
        "lora_dropout": DROPOUT,
        "batch_size": COUNT,
        "grad_accum": COUNT,
        "epochs": POSITIVE,
        "learning_rate": POSITIVE,
        "max_length": COUNT,
        "train_rows": COUNT,
        "seed": SEED,
        "warmup_ratio": DROPOUT,
        "weight_decay": NON_NEGATIVE,
        "drop_constant_share": SHARE,
        "calibration_rows": NON_NEGATIVE,
        "score_batch_size": COUNT,
        "checkpoint_every": COUNT,
        "top_layers": COUNT,
        "text_budget": NON_NEGATIVE,  # 0: no cut
    },
    "embeddings": {
        "epochs": NON_NEGATIVE,  # 0: no fine-tuning pass
        "n_pairs": COUNT,
        "margin": POSITIVE,
        "max_triplets": COUNT,
        "batch_size": COUNT,
        "learning_rate": POSITIVE,
        "chunk_tokens": COUNT,
        "chunk_overlap": NON_NEGATIVE,
        "train_tokens": COUNT,
        "C": POSITIVE,
        "seed": SEED,
    },
}


def _with_nested_names(stacking: dict[str, Range]) -> dict[str, Range]:
    """The stack's base-model settings checked the same under their nested names (``xgb__max_depth``)."""
    return {**stacking, **{nested: stacking[flat] for flat, nested in NESTED_NAMES.items() if flat in stacking}}


BOUNDS["stacking"] = _with_nested_names(BOUNDS["stacking"])


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_range(approach: str, name: str, value: Any) -> Any:
    """``value`` when it lies in the parameter's range (None passes: a parameter's type check decides whether
    it may be None); ValueError naming the parameter and the range otherwise. A non-finite number is refused
    for every parameter."""
    if is_number(value) and not math.isfinite(value):
        raise ValueError(f"Parameter {name!r} of the {approach!r} approach takes a finite number, got {value!r}.")
    allowed = BOUNDS.get(approach, {}).get(name)
    if allowed is None or value is None:
        return value
    if not is_number(value) or not allowed.holds(value):
        raise ValueError(
            f"Parameter {name!r} of the {approach!r} approach must be {allowed.describe()}, got {value!r}."
        )
    return value
