"""The run store: one folder per trained run, never overwritten.

A run folder holds ``spec.json`` (what was trained on what: approach, params, data hash,
leak policy, split), ``metrics.json`` (protocol metrics with intervals, timings),
``predictions.csv`` (test-split rows: ``row_id``, ``y_true``, ``proba``), ``curves.json``,
``explanations.csv`` (contributions of a sample of test rows, see :func:`explain_sample`) and
``model/`` (the approach's own native files).

A training writes its run in a staging folder of the store (:meth:`RunStore.stage_run`,
``.incomplete-<run id>-p<pid>-t<process start time>``: a dot name no listing shows) and renames it to the run
id in one step once complete (:meth:`RunStore.publish`). A training killed outright (SIGKILL, a crash, a power
cut) leaves only a staging folder; the store's next listing removes it once the process that wrote it is gone
(:meth:`RunStore.sweep_incomplete`, named in :attr:`RunStore.swept`), and never one whose training still runs.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import workspace
from engine.runspec import APPROACH_NAME, RunSpec, SpecProblem, validate_spec
from engine.storage import CorruptFile, atomic_write, is_inside, read_json, write_json

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
# NumPy and pandas are imported where a run's tables are read or written: listing runs (the dashboard's
# first page) needs neither, and pandas alone takes most of a second to import.

#: The only run ids the store accepts: ``<UTC time>-<approach>-<6 hex digits>``, the ones it makes itself.
RUN_ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}-" + APPROACH_NAME[1:-1] + r"-[0-9a-f]{6}$")
#: A run being written: ``.incomplete-<run id>-p<pid>-t<start time of that process>`` (see :meth:`RunStore.stage_run`).
STAGING_PREFIX = ".incomplete-"
_STAGING = re.compile(r"^\.incomplete-(?P<run_id>.+)-p(?P<pid>[0-9]+)-t(?P<start>[0-9]+(?:\.[0-9]+)?)$")


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when there is no such live process."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return proc.create_time()
    except psutil.Error:
        return None


class BrokenRun(ValueError):
    """A run folder that exists but cannot be used (a damaged spec, metrics or model file)."""

    def __init__(self, run_id: str, problem: str):
        self.run_id = run_id
        self.problem = problem
        super().__init__(f"run {run_id} cannot be used: {problem}")


@dataclass
class Run:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @cached_property
    def settings(self) -> RunSpec:
        """The typed ``spec.json`` (:class:`engine.runspec.RunSpec`), checked once when first read: raises
        :class:`~engine.storage.CorruptFile` for a file that does not parse, :class:`~engine.runspec.SpecProblem`
        for one that holds wrong types. The store's listings and :meth:`RunStore.get` skip or refuse both."""
        return validate_spec(read_json(self.path / "spec.json", dict))

    @cached_property
    def spec(self) -> dict:
        """The checked spec as a mapping (what every reader takes): :attr:`settings` as a dict, with the stored
        keys, ``missing_values`` already checked and ``input_kind`` always present."""
        return self.settings.as_dict()

    @property
    def metrics(self) -> dict:
        f = self.path / "metrics.json"
        return read_json(f, dict) if f.exists() else {}

    @property
    def curves(self) -> dict:
        f = self.path / "curves.json"
        return read_json(f, dict) if f.exists() else {}

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def complete(self) -> bool:
        return (self.path / "metrics.json").exists()

    def check(self) -> None:
        """Raise :class:`BrokenRun` when the run's spec or metrics cannot be read as the store wrote them (a spec
        that parses but does not validate as a :class:`~engine.runspec.RunSpec` included)."""
        try:
            _ = self.spec  # validates the settings
            metrics = self.metrics
        except CorruptFile as exc:
            raise BrokenRun(self.id, f"{exc.path.name} {exc.problem}") from None
        except SpecProblem as exc:  # parses, but holds wrong types: named like a file that does not parse
            raise BrokenRun(self.id, exc.problem) from None
        if not isinstance(metrics.get("metrics", {}), dict):
            raise BrokenRun(self.id, "metrics.json has no metrics table")

    @property
    def label(self) -> str | None:
        """The name a user gave the run (``label.json``), or None."""
        f = self.path / "label.json"
        try:
            value = read_json(f, dict).get("label") if f.exists() else None
        except CorruptFile:
            return None
        return value if isinstance(value, str) and value.strip() else None

    def set_label(self, label: str | None) -> None:
        """Name the run (shown on the board instead of its id); ``None`` or blank removes the name. The run's
        own files (spec, metrics, model) are never changed."""
        text = " ".join(str(label or "").split())[:80]
        if text:
            write_json(self.path / "label.json", {"label": text})
        else:
            (self.path / "label.json").unlink(missing_ok=True)

    def save_metrics(self, metrics: dict) -> None:
        write_json(self.path / "metrics.json", metrics)

    def save_curves(self, curves: dict) -> None:
        write_json(self.path / "curves.json", curves)

    def save_predictions(self, row_id, y_true, proba) -> None:
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame(
            {
                "row_id": np.asarray(row_id),
                "y_true": np.asarray(y_true).astype(int),
                "proba": np.asarray(proba, dtype=float),
            }
        )
        atomic_write(self.path / "predictions.csv", lambda tmp: frame.to_csv(tmp, index=False))

    def predictions(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.path / "predictions.csv")

    def save_explanations(self, table: pd.DataFrame, row_ids, proba) -> None:
        """Store an ``explain`` table for the sample rows ``row_ids`` (``table.row`` indexes them) with
        their P(convert)."""
        import numpy as np

        row_ids, proba = np.asarray(row_ids), np.asarray(proba, dtype=float)
        frame = table.assign(row_id=row_ids[table["row"].to_numpy()], proba=proba[table["row"].to_numpy()])
        atomic_write(self.path / "explanations.csv", lambda tmp: frame.to_csv(tmp, index=False))

    def explanations(self) -> pd.DataFrame | None:
        """The stored contributions (``explain`` columns plus ``row_id``, as text, and ``proba``), or None."""
        import pandas as pd

        f = self.path / "explanations.csv"
        if not f.exists():
            return None
        return pd.read_csv(
            f,
            dtype={"feature": str, "value": str},
            keep_default_na=False,
            converters={"row": int, "row_id": str, "contribution": float, "proba": float},
        )

    def save_model(self, approach) -> None:
        approach.save(self.model_dir)

    def load_approach(self):
        """The run's fitted approach. Its files (some are joblib pickles) are read only from inside the run's
        own folder, which the store made: a model folder that is a link elsewhere is refused."""
        from engine.approaches.base import load_approach

        if not is_inside(self.model_dir, self.path) or self.path.is_symlink():
            raise BrokenRun(self.id, "its model folder points outside the run store; it is not loaded")
        try:
            return load_approach(self.model_dir)
        except BrokenRun:
            raise
        except Exception as exc:  # noqa: BLE001 - any damage to the model files makes the run unusable
            lines = str(exc).strip().splitlines() or [""]  # a native library's message may carry a backtrace
            detail = lines[0] + (" ..." if len(lines) > 1 else "")
            raise BrokenRun(self.id, f"its model files cannot be loaded ({type(exc).__name__}: {detail})") from exc


@dataclass
class RunStore:
    """Runs under ``<workspace>/runs``. Ids are ``<UTC time>-<approach>-<random>``: unique, sortable.

    A run id given from outside (an API body, a CLI flag) is accepted only when it matches
    :data:`RUN_ID_PATTERN` and its folder lies inside the store. A run whose files are damaged is skipped
    by every listing and named in :attr:`problems` with the reason.
    """

    root: Path | None = None
    problems: dict[str, str] = field(default_factory=dict, init=False)
    swept: list[str] = field(default_factory=list, init=False)  # staging folders of dead trainings removed

    def __post_init__(self):
        self.root = Path(self.root) if self.root is not None else workspace() / "runs"
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run(self, spec: dict) -> Run:
        """A new run folder under its id, with ``spec.json`` (listed once ``metrics.json`` is written). A training
        uses :meth:`stage_run` instead, so that a training killed midway leaves nothing a listing misses."""
        return self._allocate(spec, lambda run_id: run_id)

    def stage_run(self, spec: dict) -> Run:
        """A new run written in a staging folder named for it and this process (``.incomplete-<run id>-p<pid>-
        t<start time>``); :meth:`publish` moves it into place when complete. Until then no listing shows it, and
        if this process dies first, the store's next listing removes it."""
        self.sweep_incomplete()
        pid = os.getpid()
        owner = f"p{pid}-t{_process_start(pid) or 0:.3f}"
        return self._allocate(spec, lambda run_id: f"{STAGING_PREFIX}{run_id}-{owner}")

    def _allocate(self, spec: dict, folder_name: Callable[[str], str]) -> Run:
        approach = re.sub(r"[^a-z0-9_]", "_", str(spec.get("approach", "run")).lower())[:32] or "run"
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for _ in range(100):
            run_id = f"{stamp}-{approach}-{secrets.token_hex(3)}"
            path = self.root / folder_name(run_id)
            if (self.root / run_id).exists():
                continue
            try:
                path.mkdir(parents=True)  # fails if it exists: a run is never overwritten
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 24 random bits
            raise RuntimeError("could not allocate a new run folder")
        write_json(path / "spec.json", {**spec, "run_id": run_id, "created": time.time()})
        return Run(path)

    def publish(self, run: Run) -> Run:
        """Move a complete staged run (:meth:`stage_run`) into place under its id, in one rename: a listing sees
        all of the run or none of it. ``run.path`` is the run's folder afterwards."""
        found = _STAGING.match(run.path.name)
        if not found or run.path.parent != self.root:
            raise ValueError(f"{run.path} is not a staged run of {self.root}")
        final = self.root / found["run_id"]
        os.rename(run.path, final)
        run.path = final
        return run

    def sweep_incomplete(self) -> list[str]:
        """Remove the staging folders whose training process is gone (killed before its run was complete); one
        whose process still runs (the same pid with the same start time) is kept. Returns the names removed,
        also added to :attr:`swept`."""
        removed = []
        for path in self.root.glob(f"{STAGING_PREFIX}*"):
            found = _STAGING.match(path.name)
            if not found or path.is_symlink():
                continue  # not a name this store makes: left alone
            started = _process_start(int(found["pid"]))
            if started is not None and abs(started - float(found["start"])) < 0.5:
                continue  # its training still runs
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path.name)
        self.swept.extend(removed)
        return removed

    def _folders(self) -> list[Path]:
        return sorted(
            (p for p in self.root.iterdir() if RUN_ID_PATTERN.match(p.name) and not p.is_symlink()), reverse=True
        )

    def list_runs(self, complete_only: bool = True, **match: Any) -> list[Run]:
        """Runs, newest first, whose spec matches every ``key=value`` given. Broken runs are left out and
        named in :attr:`problems`; the staging folders of trainings that were killed are removed first
        (:meth:`sweep_incomplete`)."""
        runs = []
        try:
            self.sweep_incomplete()
        except OSError:  # a folder that cannot be removed now: tried again next time
            pass
        for gone in [run_id for run_id in self.problems if not (self.root / run_id).is_dir()]:
            del self.problems[gone]  # deleted since (by another process, too): no longer named
        for path in self._folders():
            if not (path / "spec.json").exists():
                if (path / "metrics.json").exists() or (path / "model").exists():  # a run that lost its spec
                    self.problems[path.name] = "spec.json is missing"
                continue
            run = Run(path)
            if complete_only and not run.complete:
                continue
            try:
                run.check()
            except BrokenRun as exc:
                self.problems[run.id] = exc.problem
                continue
            self.problems.pop(run.id, None)
            if all(run.spec.get(k) == v for k, v in match.items()):
                runs.append(run)
        return runs

    def broken(self) -> list[dict[str, str]]:
        """``[{"run_id", "problem"}]`` for every run folder that cannot be used (after a fresh look)."""
        self.list_runs()
        return [{"run_id": k, "problem": v} for k, v in sorted(self.problems.items(), reverse=True)]

    def _path(self, run_id: str, any_folder: bool = False) -> Path:
        """The folder of ``run_id``: an id of the store's pattern naming a real folder (not a link) inside the
        store, holding a ``spec.json`` unless ``any_folder`` (a run listed as broken because it has none)."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
            raise KeyError(
                f"No run {str(run_id)[:80]!r}: a run id looks like 20260101T120000-stacking-1a2b3c "
                "(`python -m engine runs` lists them)"
            )
        path = self.root / run_id
        found = path.is_dir() if any_folder else (path / "spec.json").exists()
        if path.is_symlink() or not is_inside(path, self.root) or not found:
            raise KeyError(f"No run {run_id!r} in {self.root}")
        return path

    def folder(self, run_id: str) -> Path:
        """The folder of any run the store has, a broken one (even without ``spec.json``) included; KeyError as
        :meth:`get` for an id that is not the store's own or names no folder."""
        return self._path(run_id, any_folder=True)

    def get(self, run_id: str) -> Run:
        """The run with this id. Raises KeyError for an id that is not one of the store's own (absolute
        paths, ``..``, any other text) or that names no run, and :class:`BrokenRun` for a damaged one."""
        run = Run(self._path(run_id))
        run.check()
        return run

    def latest(self, **match: Any) -> Run | None:
        runs = self.list_runs(**match)
        return runs[0] if runs else None

    def latest_loadable(self, loader: Callable[[Run], Any] | None = None, **match: Any) -> tuple[Run, Any] | None:
        """The newest matching run whose model loads, with the model (``loader(run)``, default
        ``run.load_approach()``). Runs whose model does not load are skipped and named in :attr:`problems`."""
        loader = loader or (lambda run: run.load_approach())
        for run in self.list_runs(**match):
            try:
                return run, loader(run)
            except BrokenRun as exc:
                self.problems[run.id] = exc.problem
        return None

    def delete(self, run_id: str) -> None:
        """Remove a run folder (a broken one too, even one without ``spec.json``); the only way a run goes away."""
        shutil.rmtree(self.folder(run_id))
        self.problems.pop(run_id, None)


def explain_rows(approach: str, input_kind: str) -> int:
    """How many test rows a run's stored explanation covers (the Explain page's default sample): fewer for
    the approaches whose explanation re-scores each row many times (the LLM, transcripts)."""
    from engine.approaches.base import approach_hook

    return 5 if input_kind == "transcripts" else int(approach_hook(approach, "explain_rows", 30))


def explain_sample(positions, n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` of a fixed shuffle of ``positions``: a smaller sample is a prefix of a larger one."""
    import numpy as np

    return np.random.default_rng(seed).permutation(np.asarray(positions))[:n]
