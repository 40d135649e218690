"""The scoring API's loaded models: a cache of at most ``max_models`` (least recently used out first), each with
the lock its scoring runs under and the batcher that scores concurrent requests for it as one batch."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict

import pandas as pd

#: Most models kept loaded at once (least recently used goes first).
MAX_CACHED_MODELS = 4


class _Batcher:
    """Scores the requests that arrive for one model while it is busy as one batch (no waiting when it is
    idle): the first request in scores its rows; the ones that come meanwhile queue, and the next of them
    scores all queued rows at once. A stack scores 16 rows in about the time it scores one, so under many
    concurrent clients the model's cost per request falls to a fraction. One batch runs at a time."""

    def __init__(self, score):
        self._score = score  # frame of rows -> list of per-row results, in order
        self._cv = threading.Condition()
        self._pending: list[dict] = []
        self._busy = False

    def __call__(self, X: pd.DataFrame) -> list:
        slot = {"X": X, "done": False, "out": None, "error": None}
        with self._cv:
            self._pending.append(slot)
            while not slot["done"] and self._busy:
                self._cv.wait()
            if slot["done"]:
                return self._result(slot)
            self._busy = True  # this request leads the next batch: every queued slot, its own among them
            batch, self._pending = self._pending, []
        try:
            frame = batch[0]["X"] if len(batch) == 1 else pd.concat([b["X"] for b in batch], ignore_index=True)
            out = self._score(frame)
            start = 0
            for b in batch:
                b["out"], start = out[start : start + len(b["X"])], start + len(b["X"])
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for b in batch:
                b["error"] = exc
        finally:
            with self._cv:
                for b in batch:
                    b["done"] = True
                self._busy = False
                self._cv.notify_all()
        return self._result(slot)

    @staticmethod
    def _result(slot: dict) -> list:
        if slot["error"] is not None:
            raise slot["error"]
        return slot["out"]


class _Loaded:
    """A cached model, the lock its scoring runs under (one model scores one batch at a time) and the batcher
    that gathers concurrent requests into one batch."""

    def __init__(self, model):
        self.model = model
        self.lock = threading.Lock()
        self.batchers: dict[str, _Batcher] = {}

    def batcher(self, key: str, score) -> _Batcher:
        with self.lock:
            if key not in self.batchers:
                self.batchers[key] = _Batcher(score)
            return self.batchers[key]


_GC_LOCK = threading.Lock()


def _refreeze() -> None:
    """After a model load: collect, then freeze what is left. A loaded model is hundreds of thousands of
    long-lived objects; frozen (``gc.freeze``), the collector's full passes skip them, which otherwise stall
    every request now and then (the latency tail). Frozen objects are never collected, though, and a model
    is full of reference cycles: so everything is unfrozen first and the evicted models (and any model
    evicted while a request still held it, at a later load) are collected before the rest is frozen again.
    Costs one full collection a load (tens of ms), none per request."""
    with _GC_LOCK:
        gc.unfreeze()
        gc.collect()
        gc.freeze()


class _ModelCache:
    """Loaded models by run id: at most ``max_models``, the least recently used evicted first. A model
    is loaded once even when several requests ask for it together."""

    def __init__(self, max_models: int = MAX_CACHED_MODELS):
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._models)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def entry(self, run) -> _Loaded:
        with self._lock:
            if run.id in self._models:
                self._models.move_to_end(run.id)
                return self._models[run.id]
            loading = self._loading.setdefault(run.id, threading.Lock())
        with loading:
            with self._lock:
                if run.id in self._models:
                    return self._models[run.id]
            loaded = _Loaded(run.load_approach())  # raises BrokenRun for damaged model files
            with self._lock:
                self._models[run.id] = loaded
                self._models.move_to_end(run.id)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
                self._loading.pop(run.id, None)
            _refreeze()
            return loaded

    def get(self, run):
        """The run's fitted approach (loaded now or taken from the cache)."""
        return self.entry(run).model
