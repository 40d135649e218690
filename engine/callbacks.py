"""Training callbacks, in the skorch style: training code calls named hooks instead of
threading flags through its loops. The CLI progress bar and the job system are callbacks.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.storage import write_text


class TrainingCancelled(Exception):
    """Raised by a callback to stop training cleanly between steps."""


@dataclass
class Progress:
    step: int
    total: int
    loss: float | None = None
    seconds_left: float | None = None
    stage: str = "train"
    extra: dict = field(default_factory=dict)


class Callback:
    """Hooks called by an approach's training loop. Every hook is optional."""

    def on_train_begin(self, total_steps: int, stage: str = "train") -> None: ...

    def on_step_end(self, progress: Progress) -> None: ...

    def on_train_end(self, stage: str = "train") -> None: ...

    def on_log(self, message: str) -> None: ...


class CallbackList(Callback):
    """Fan one call out to several callbacks; also estimates seconds left."""

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])
        self._start = None

    def on_train_begin(self, total_steps: int, stage: str = "train") -> None:
        self._start = time.monotonic()
        for cb in self.callbacks:
            cb.on_train_begin(total_steps, stage)

    def on_step_end(self, progress: Progress) -> None:
        if progress.seconds_left is None and self._start is not None and progress.step > 0:
            elapsed = time.monotonic() - self._start
            progress.seconds_left = elapsed / progress.step * max(progress.total - progress.step, 0)
        for cb in self.callbacks:
            cb.on_step_end(progress)

    def on_train_end(self, stage: str = "train") -> None:
        for cb in self.callbacks:
            cb.on_train_end(stage)

    def on_log(self, message: str) -> None:
        for cb in self.callbacks:
            cb.on_log(message)


class PrintProgress(Callback):
    """A one-line text progress bar with loss and time left (used by the CLI)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width

    def on_step_end(self, p: Progress) -> None:
        frac = p.step / p.total if p.total else 1.0
        bar = "#" * int(frac * self.width)
        loss = f" loss {p.loss:.4f}" if p.loss is not None else ""
        left = f" ~{p.seconds_left:.0f}s left" if p.seconds_left is not None else ""
        self.stream.write(f"\r[{p.stage}] [{bar:<{self.width}}] {p.step}/{p.total}{loss}{left}   ")
        if p.step >= p.total:
            self.stream.write("\n")
        self.stream.flush()

    def on_log(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()


class JsonProgressFile(Callback):
    """Write the latest progress (and a loss history) to a JSON file, atomically.

    The job runner points ``CLAB_PROGRESS_FILE`` at such a file; it also checks for a
    ``<file>.cancel`` marker and raises :class:`TrainingCancelled` when it appears.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.history: list[dict] = []

    def _write(self, payload: dict) -> None:
        write_text(self.path, json.dumps(payload))  # a unique temporary file, renamed over the target

    def on_step_end(self, p: Progress) -> None:
        if p.loss is not None:
            self.history.append({"step": p.step, "loss": p.loss, "stage": p.stage})
        self._write({**asdict(p), "history": self.history[-2000:]})
        if self.path.with_name(self.path.name + ".cancel").exists():
            raise TrainingCancelled("cancelled by the user")


def default_callbacks(show_progress: bool = True) -> list[Callback]:
    """Callbacks the CLI uses: a progress bar, plus the job's progress file when set."""
    cbs: list[Callback] = []
    if show_progress:
        cbs.append(PrintProgress())
    if os.environ.get("CLAB_PROGRESS_FILE"):
        cbs.append(JsonProgressFile(os.environ["CLAB_PROGRESS_FILE"]))
    return cbs
