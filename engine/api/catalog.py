"""The scoring API's view of the run store (:class:`Catalog`): which runs are usable, re-read when the runs folder
changes, and per input kind the newest run whose model loads."""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from engine.runs import RUN_ID_PATTERN


class Catalog:
    """What the service knows of the store, re-read when the runs folder changes: the usable runs with
    their spec and metrics (read once: runs do not change after they complete), the skipped broken ones,
    and per input kind the newest run whose model loads."""

    def __init__(self, store, cache, refresh_seconds: float = 1.0):
        self.store, self.cache, self.refresh_seconds = store, cache, refresh_seconds
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._checked = -math.inf
        self.runs: dict[str, Any] = {}
        self.metrics: dict[str, dict] = {}
        self.skipped: list[dict[str, str]] = []
        self._latest: dict[str, str | None] = {}

    def _folder_signature(self) -> tuple:
        out = []
        with os.scandir(self.store.root) as entries:
            for e in entries:
                if not RUN_ID_PATTERN.fullmatch(e.name):
                    continue
                stamps = []
                for name in ("", "spec.json", "metrics.json"):
                    try:
                        stamps.append(os.stat(os.path.join(e.path, name)).st_mtime_ns)
                    except OSError:
                        stamps.append(None)
                out.append((e.name, *stamps))
        return tuple(sorted(out))

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return
        with self._lock:
            if not force and now - self._checked < self.refresh_seconds:
                return
            signature = self._folder_signature()
            if force or signature != self._signature:
                runs = self.store.list_runs()
                self.runs = {run.id: run for run in runs}
                self.metrics = {run.id: run.metrics for run in runs}
                self._latest = {}
                self._signature = signature
                self._update_skipped()
            self._checked = time.monotonic()

    def _update_skipped(self) -> None:
        self.skipped = [{"run_id": k, "problem": v} for k, v in sorted(self.store.problems.items(), reverse=True)]

    def latest(self, input_kind: str):
        """``(run, _Loaded)`` of the newest run of ``input_kind`` whose model loads, or None."""
        self.refresh()
        for _ in range(2):
            with self._lock:
                if input_kind not in self._latest:
                    found = self.store.latest_loadable(loader=self.cache.entry, input_kind=input_kind)
                    self._latest[input_kind] = found[0].id if found else None
                    self._update_skipped()
                run_id = self._latest[input_kind]
            if run_id is None:
                return None
            run = self.runs.get(run_id)
            try:
                return run, self.cache.entry(run)
            except Exception:  # noqa: BLE001 - damaged or removed since: look again
                self.refresh(force=True)
        return None
