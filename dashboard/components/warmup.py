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
import functools
import importlib
import os
import threading
import time

#: imported in this order (what the most visited pages need first)
MODULES = (
    "pandas",
    "engine.approaches.base",
    "engine.approaches.stacking",
    "engine.jobs",
    "plotly.graph_objects",
    "sklearn.metrics",
    "sklearn.linear_model",
    "xgboost",
    "engine.evaluate",
)

_cond = threading.Condition()
_active = 0  # page (or fragment) runs in progress
_importing = False  # the warm-up thread is importing a module
_last_end = 0.0
_started = False
done: list[str] = []


@contextlib.contextmanager
def page_run():
    """Mark a page script run as in progress: the warm-up starts no import meanwhile, and a run that begins
    during an import waits for it to end (a half-imported module, pandas seen by plotly for one, breaks
    code that looks it up in ``sys.modules``). Runs may nest (a fragment inside a page)."""
    global _active, _last_end
    with _cond:
        _active += 1
        while _importing:
            _cond.wait()
    started = time.monotonic()
    try:
        yield
    finally:
        with _cond:
            _active -= 1
            _last_end = time.monotonic()
            _cond.notify_all()
        if os.environ.get("CLAB_WARMUP_DEBUG"):
            print(f"page run {_last_end - started:.2f}s", flush=True)


def guarded(func):
    """Decorator for a fragment's function: its reruns count as page runs (see :func:`page_run`)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with page_run():
            return func(*args, **kwargs)

    return wrapper


def _claim(quiet: float) -> None:
    """Wait until no page has run for ``quiet`` seconds, then mark an import as in progress."""
    global _importing
    with _cond:
        while True:
            wait = _last_end + quiet - time.monotonic()
            if _active == 0 and wait <= 0:
                _importing = True
                return
            _cond.wait(timeout=max(wait, 0.05))


def _release() -> None:
    global _importing
    with _cond:
        _importing = False
        _cond.notify_all()


def _run(modules: tuple[str, ...], delay: float, quiet: float) -> None:
    time.sleep(delay)
    for module in modules:
        _claim(quiet)
        try:
            t0 = time.monotonic()
            importlib.import_module(module)
            done.append(module)
            if os.environ.get("CLAB_WARMUP_DEBUG"):
                print(f"warm-up: {module} {time.monotonic() - t0:.2f}s", flush=True)
        except Exception:  # noqa: BLE001 - warm-up is best effort; the page that needs it reports errors
            pass
        finally:
            _release()


def start(modules: tuple[str, ...] = MODULES) -> bool:
    """Start the warm-up thread once per process (``CLAB_WARMUP=0`` turns it off). True if it runs."""
    global _started
    with _cond:
        if _started or os.environ.get("CLAB_WARMUP", "1") == "0":
            return False
        _started = True
    delay = float(os.environ.get("CLAB_WARMUP_DELAY", "2"))
    threading.Thread(target=_run, args=(tuple(modules), delay, 0.3), name="clab-warm-up", daemon=True).start()
    return True
