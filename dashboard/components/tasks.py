"""Computations in background threads, so no page waits on them: :class:`Task` (progress, phase, result or error),
kept process-wide by key (:func:`start`: the one running or done, else a new one), run one at a time unless told
otherwise; a page waits briefly (:func:`wait`), then polls the task from a fragment (:func:`poll`) and draws what
is there, rerunning itself once the task is done.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import streamlit as st

#: seconds a page waits for a background computation before it draws what it has and shows progress
SYNC_WAIT_S = 1.2
#: how often a page with a computation in progress looks at it again
POLL_S = 1.0


class Task:
    """A computation in a background thread: ``work(task)`` returns the result and may set ``task.done``,
    ``task.total`` and ``task.phase`` as it goes. Tasks run one at a time (the machine is small)."""

    def __init__(self, key: Any, total: int, label: str):
        self.key, self.total, self.label = key, max(int(total), 1), label
        self.done, self.phase = 0, "waiting for another computation to finish"
        self.result, self.error, self.finished = None, None, False
        self.exception: Exception | None = None
        self.created = time.monotonic()
        self.started: float | None = None
        self.eta = True  # False in a phase whose length the count does not tell (a projection)

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        self._phase, self.phase_started = value, time.monotonic()

    @property
    def fraction(self) -> float:
        return 1.0 if self.finished else min(self.done / self.total, 0.99)

    def seconds_left(self) -> float | None:
        if self.started is None or self.done <= 0 or self.finished or not self.eta:
            return None
        return (time.monotonic() - self.started) / self.done * (self.total - self.done)

    def progress_text(self) -> str:
        left = self.seconds_left()
        eta = (
            "" if left is None else f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.1f} min left"
        )
        if not self.eta and self.started is not None and not self.finished:  # the count stays: say it is alive
            eta = f", {time.monotonic() - self.phase_started:.0f} s in this step"
        return f"{self.label}: {self.phase} ({self.done}/{self.total}{eta})"


_tasks: OrderedDict[Any, Task] = OrderedDict()
_tasks_lock = threading.Lock()
_one_at_a_time = threading.Lock()
MAX_TASKS = 32


def _run(task: Task, work: Callable[[Task], Any], exclusive: bool = True) -> None:
    import contextlib

    with _one_at_a_time if exclusive else contextlib.nullcontext():
        task.started = time.monotonic()
        task.phase = "starting"
        try:
            task.result = work(task)
        except Exception as exc:  # noqa: BLE001 - shown on the page that asked
            task.exception = exc.with_traceback(None)
            lines = str(exc).strip().splitlines() or [""]
            task.error = f"{type(exc).__name__}: {lines[0]}"
        finally:
            task.finished = True


def start(key: Any, work: Callable[[Task], Any], total: int, label: str, exclusive: bool = True) -> Task:
    """The task for ``key``: the one already running or done (a failed one is started again only through
    :func:`forget`), or a new one started now. ``exclusive`` tasks run one at a time; others (loading a model)
    start at once."""
    with _tasks_lock:
        task = _tasks.get(key)
        if task is not None:
            _tasks.move_to_end(key)
            return task
        task = Task(key, total, label)
        _tasks[key] = task
        while len(_tasks) > MAX_TASKS:
            oldest = next((k for k, t in _tasks.items() if t.finished), None)
            if oldest is None:
                break
            _tasks.pop(oldest)
    threading.Thread(target=_run, args=(task, work, exclusive), daemon=True, name=f"clab-{label[:20]}").start()
    return task


def start_step(key: Any, label: str, phase: str, compute: Callable[[], Any]) -> Task:
    """:func:`start` for a computation of one step: ``compute()`` in the background, its progress saying
    ``phase``."""

    def work(task: Task) -> Any:
        task.phase = phase
        return compute()

    return start(key, work, 1, label)


def get(key: Any) -> Task | None:
    with _tasks_lock:
        return _tasks.get(key)


def remember(key: Any, result: Any) -> None:
    """Keep ``result`` under ``key`` as a finished task (a value several tasks share, such as embeddings)."""
    task = Task(key, 1, "kept")
    task.result, task.finished, task.done = result, True, 1
    with _tasks_lock:
        _tasks[key] = task


def forget(key: Any) -> None:
    with _tasks_lock:
        _tasks.pop(key, None)


def wait(task: Task, seconds: float | None = None) -> bool:
    """Wait up to ``seconds`` (default :data:`SYNC_WAIT_S`) for ``task``; True when it finished."""
    end = time.monotonic() + (SYNC_WAIT_S if seconds is None else seconds)
    while not task.finished and time.monotonic() < end:
        time.sleep(0.05)
    return task.finished


def result_or_progress(task: Task, text: str, key: str, failed: str, plain: tuple[type, ...] = ()) -> Any | None:
    """``task``'s result once it is done; None meanwhile (a progress bar saying ``text``, redrawn until it is done)
    or when it failed (a caption ``failed: why``; the message of a ``plain`` exception is shown as it is)."""
    if not wait(task):
        poll([task], lambda: st.progress(task.fraction, text=text), key=key, seen_running=True)
        return None
    if task.error:
        st.caption(f"{failed}: {task.exception if isinstance(task.exception, plain) else task.error}")
        return None
    return task.result


def show_failure(task: Task, message: str, key: str) -> bool:
    """When ``task`` failed: ``message`` in red and a "Try again" button (which starts it afresh); True then."""
    if not (task.finished and task.error):
        return False
    st.error(message)
    if st.button("Try again", key=key):
        forget(task.key)
        st.rerun()
    return True


def poll(tasks: list[Task], draw: Callable[[], None], key: str, seen_running: bool = False) -> None:
    """Call ``draw()`` inside a fragment that redraws every :data:`POLL_S` seconds while any of ``tasks`` runs,
    and reruns the whole page once they are all done. ``seen_running``: the caller found a task still running
    (and drew for that); the fragment then polls even if the task has finished since, so the page is redrawn
    with its result instead of keeping a progress bar that nothing updates."""
    running = seen_running or any(not t.finished for t in tasks)

    @st.fragment(run_every=POLL_S if running else None)
    def _body():
        if running and all(t.finished for t in tasks):
            st.rerun(scope="app")
        draw()

    _body()
