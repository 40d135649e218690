"""Training callbacks, in the skorch style: training code calls named hooks instead of
threading flags through its loops. The CLI progress bar and the job system are callbacks.

A job goes through several phases (:data:`PHASES`: the approach's fit, the evaluation on the test rows,
storing the run, the stored explanations). :class:`PhaseTracker` stamps every progress report with its phase
and the job's overall ``fraction`` (0..1, never going back), so a progress bar reaches its end when the job
does, and a finished step's "0 s left" is never shown while later phases run. An approach whose fit has several
stages (fine-tuning, an ONNX export, encoding passes) announces them with :meth:`Callback.on_plan`, and each stage
then fills its own share of the fit's part of the bar.
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
    #: the job's phase (a key of :data:`PHASES`), its position and count, and the whole job's share done
    phase: str | None = None
    phase_index: int | None = None
    phases: int | None = None
    fraction: float | None = None


#: The phases of a training job, with the share of the progress bar each gets (the fit dominates every
#: measured job; the others are given a sliver so that the bar moves while they run).
PHASES: dict[str, tuple[str, float]] = {
    "fit": ("Training", 0.80),
    "evaluate": ("Scoring the test leads", 0.08),
    "store": ("Saving the model", 0.04),
    "explain": ("Explaining sample leads", 0.08),
}


class Callback:
    """Hooks called by an approach's training loop. Every hook is optional."""

    def on_train_begin(self, total_steps: int, stage: str = "train") -> None: ...

    def on_step_end(self, progress: Progress) -> None: ...

    def on_train_end(self, stage: str = "train") -> None: ...

    def on_log(self, message: str) -> None: ...

    def on_plan(self, stages: dict[str, float]) -> None:
        """The stages (``stage`` names of the coming progress reports) the fit goes through, in order, with the
        share of its time each is expected to take."""


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

    def on_plan(self, stages: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_plan(stages)


class PhaseTracker(Callback):
    """Forwards every hook to ``callbacks``, stamping each :class:`Progress` with the current phase and the
    overall fraction of the job done (monotonic). The pipeline calls :meth:`begin`, :meth:`advance` and
    :meth:`finish`; the approach's own progress during ``fit`` goes through it as a plain callback."""

    def __init__(self, callbacks: list[Callback] | None = None, phases: dict | None = None):
        self.inner = CallbackList(callbacks)
        self.phases = dict(phases or PHASES)
        self.names = list(self.phases)
        self.phase = self.names[0]
        self.fraction = 0.0
        self.stage_spans: dict[str, tuple[float, float]] = {}  # within the current phase: (start, width)

    def _span(self, phase: str) -> tuple[float, float]:
        total = sum(w for _, w in self.phases.values()) or 1.0
        start = sum(self.phases[n][1] for n in self.names[: self.names.index(phase)]) / total
        return start, self.phases[phase][1] / total

    def _stamp(self, p: Progress) -> Progress:
        start, width = self._span(self.phase)
        inside = min(max(p.step / p.total, 0.0), 1.0) if p.total else 0.0
        if p.stage in self.stage_spans:  # a planned stage of this phase fills its own part of the phase
            stage_start, stage_width = self.stage_spans[p.stage]
            inside = stage_start + stage_width * inside
        self.fraction = max(self.fraction, min(start + width * inside, 1.0))
        p.phase, p.phase_index, p.phases, p.fraction = (
            self.phase,
            self.names.index(self.phase),
            len(self.names),
            self.fraction,
        )
        return p

    def begin(self, phase: str, total: int = 1, stage: str | None = None) -> None:
        """Start a phase: reports step 0 of ``total`` (no time left estimate until a step is done)."""
        if phase not in self.phases:
            raise ValueError(f"unknown phase {phase!r}; phases: {self.names}")
        self.phase = phase
        self.stage_spans = {}
        stage = stage or self.phases[phase][0]
        self.inner.on_train_begin(total, stage)
        self.inner.on_step_end(self._stamp(Progress(step=0, total=total, stage=stage)))

    def advance(self, step: int, total: int, stage: str | None = None) -> None:
        self.inner.on_step_end(self._stamp(Progress(step=step, total=total, stage=stage or self.phases[self.phase][0])))

    def finish(self) -> None:
        """The job is done: the bar at its end."""
        self.phase = self.names[-1]
        self.fraction = 1.0
        p = Progress(step=1, total=1, stage="done", seconds_left=0.0)
        p.phase, p.phase_index, p.phases, p.fraction = "done", len(self.names), len(self.names), 1.0
        self.inner.on_step_end(p)

    # the approach's own hooks during fit
    def on_train_begin(self, total_steps: int, stage: str = "train") -> None:
        self.inner.on_train_begin(total_steps, stage)
        # a new stage (an export, an encoding pass) is shown at once, not after its first step
        self.inner.on_step_end(self._stamp(Progress(step=0, total=total_steps, stage=stage)))

    def on_step_end(self, progress: Progress) -> None:
        self.inner.on_step_end(self._stamp(progress))

    def on_train_end(self, stage: str = "train") -> None:
        self.inner.on_train_end(stage)

    def on_log(self, message: str) -> None:
        self.inner.on_log(message)

    def on_plan(self, stages: dict[str, float]) -> None:
        total = sum(max(float(w), 0.0) for w in stages.values()) or 1.0
        self.stage_spans, start = {}, 0.0
        for name, weight in stages.items():
            self.stage_spans[name] = (start, max(float(weight), 0.0) / total)
            start += max(float(weight), 0.0) / total
        self.inner.on_plan(stages)


class PrintProgress(Callback):
    """A one-line text progress bar with loss and time left (used by the CLI)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width

    def on_step_end(self, p: Progress) -> None:
        frac = p.step / p.total if p.total else 1.0
        bar = "#" * int(frac * self.width)
        loss = f" loss {p.loss:.4f}" if p.loss is not None else ""
        left = f" ~{p.seconds_left:.0f}s left" if p.seconds_left is not None and p.step < p.total else ""
        where = f"{p.phase_index + 1}/{p.phases} " if p.phase_index is not None and p.phase != "done" else ""
        self.stream.write(f"\r[{where}{p.stage}] [{bar:<{self.width}}] {p.step}/{p.total}{loss}{left}   ")
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

    def on_train_begin(self, total_steps: int, stage: str = "train") -> None:
        # without a PhaseTracker a new stage is written at once too (step 0: no stale "0 s left" meanwhile)
        if not getattr(self, "_tracked", False):
            self._write({**asdict(Progress(step=0, total=total_steps, stage=stage)), "history": self.history[-2000:]})

    def on_step_end(self, p: Progress) -> None:
        if p.phase is not None:
            self._tracked = True  # a PhaseTracker writes each stage's start itself
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
