"""Background import of the heavy libraries, out of the way of page runs.

The first visit to a page that draws a chart or loads a model would otherwise pay for importing pandas,
plotly, scikit-learn and XGBoost (several seconds on a small machine). A daemon thread imports them once per
process after the first page is served. Python runs one thread at a time, so an import running beside a page
run slows that page down: the thread imports one module at a time and only while no page script is running
(every run of ``app.py`` is wrapped in :func:`page_run`), so a click during the warm-up waits for at most one
module's import. ``CLAB_WARMUP_DEBUG=1`` prints each import's and each page run's duration to the server log.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time

#: imported in this order (what the most visited pages need first)
MODULES = ("pandas", "engine.approaches.base", "engine.approaches.stacking", "engine.jobs", "plotly.graph_objects",
           "sklearn.metrics", "sklearn.linear_model", "xgboost", "engine.evaluate")

_lock = threading.Lock()
_active = 0
_last_end = 0.0
_started = False
done: list[str] = []


@contextlib.contextmanager
def page_run():
    """Mark a page script run as in progress (the warm-up thread waits for it to end)."""
    global _active, _last_end
    with _lock:
        _active += 1
    started = time.monotonic()
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            _last_end = time.monotonic()
        if os.environ.get("CLAB_WARMUP_DEBUG"):
            print(f"page run {_last_end - started:.2f}s", flush=True)


def _idle(quiet: float) -> bool:
    with _lock:
        return _active == 0 and time.monotonic() - _last_end >= quiet


def _run(modules: tuple[str, ...], delay: float, quiet: float) -> None:
    time.sleep(delay)
    for module in modules:
        while not _idle(quiet):
            time.sleep(0.05)
        try:
            t0 = time.monotonic()
            importlib.import_module(module)
            done.append(module)
            if os.environ.get("CLAB_WARMUP_DEBUG"):
                print(f"warm-up: {module} {time.monotonic() - t0:.2f}s", flush=True)
        except Exception:  # noqa: BLE001 - warm-up is best effort; the page that needs it reports errors
            pass


def start(modules: tuple[str, ...] = MODULES) -> bool:
    """Start the warm-up thread once per process (``CLAB_WARMUP=0`` turns it off). True if it runs."""
    global _started
    with _lock:
        if _started or os.environ.get("CLAB_WARMUP", "1") == "0":
            return False
        _started = True
    delay = float(os.environ.get("CLAB_WARMUP_DELAY", "2"))
    threading.Thread(target=_run, args=(tuple(modules), delay, 0.3), name="clab-warm-up", daemon=True).start()
    return True
