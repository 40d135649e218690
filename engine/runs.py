"""The run store: one folder per trained run, never overwritten.

A run folder holds ``spec.json`` (what was trained on what: approach, params, data hash,
leak policy, split), ``metrics.json`` (protocol metrics with intervals, timings),
``predictions.csv`` (test-split rows: ``row_id``, ``y_true``, ``proba``), ``calibration.csv`` (the same for the
calibration slice's rows, lead runs since slices exist), ``curves.json``,
``explanations.csv`` (contributions of a sample of test rows, see :func:`explain_sample`) and
``model/`` (the approach's own native files).

A training writes its run in a staging folder of the store (:meth:`RunStore.stage_run`,
``.incomplete-<run id>-p<pid>``: a dot name no listing shows) and renames it to the run id in one step once
complete (:meth:`RunStore.publish`). For its whole life the training holds an exclusive lock (``fcntl.flock``) on
the folder's :data:`STAGING_LOCK` file; the kernel releases it when the process ends, however it ends (SIGKILL, a
crash). A training killed outright leaves only a staging folder; the store's next listing removes it once nobody
holds its lock (:meth:`RunStore.sweep_incomplete`, named in :attr:`RunStore.swept`), and never one whose training
still runs: liveness is the lock, never a pid or a clock (a pid is reused, a wall clock steps, another pid
namespace or another node shows another process table). The pid in the name is only for people reading it.

On a store shared between machines (Ray workers on other nodes writing to one filesystem), whether one node sees
another's lock depends on the filesystem: NFSv4 (and NFSv3 with its lock manager) carry ``flock`` across nodes
as byte-range locks; a filesystem that keeps locks per node would let a listing on one node remove a staging
folder that a training on another is still writing (that training then fails; no published run is touched).
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.approaches.registry import approach_hook, load_approach
from engine.config import workspace
from engine.runspec import APPROACH_NAME, RunSpec, SpecProblem, validate_spec
from engine.storage import CorruptFile, FolderGone, atomic_write, is_inside, not_plain, read_json, write_json

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
# NumPy and pandas are imported where a run's tables are read or written: listing runs (the dashboard's
# first page) needs neither, and pandas alone takes most of a second to import.

#: The only run ids the store accepts: ``<UTC time>-<approach>-<6 hex digits>``, the ones it makes itself.
RUN_ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}-" + APPROACH_NAME[1:-1] + r"-[0-9a-f]{6}$")
#: A run being written: ``.incomplete-<run id>-p<pid>`` (see :meth:`RunStore.stage_run`); while it is being made,
#: before its lock is taken, the same name with :data:`NEWBORN_SUFFIX`.
STAGING_PREFIX = ".incomplete-"
NEWBORN_SUFFIX = ".new"
#: The file in a staging folder that its training holds locked (``fcntl.flock``, exclusive) while it runs.
STAGING_LOCK = ".training.lock"
#: Seconds a staging folder without a lock to test (one being made, or one an older version wrote) is left alone.
STAGING_FLOOR = 60.0
# Names written before the lock (``-t<process start time>`` after the pid) are still recognised and swept.
_STAGING = re.compile(
    r"^\.incomplete-(?P<run_id>" + RUN_ID_PATTERN.pattern[1:-1] + r")-p(?P<pid>[0-9]+)"
    r"(?:-t[0-9]+(?:\.[0-9]+)?)?(?P<new>\.new)?$"
)


def _hold_lock(folder: Path) -> int:
    """Create ``folder``'s :data:`STAGING_LOCK` and lock it (exclusive, for as long as the returned descriptor is
    open, i.e. at most as long as this process lives). The file says which process holds it, for people."""
    fd = os.open(folder / STAGING_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    return fd


def _pid_runs_here(pid: int) -> bool:
    """Whether some process ``pid`` runs on this machine (whichever it is): only for staging folders without a lock
    file, so that a training of an older version is not removed under it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


class BrokenRun(ValueError):
    """A run folder that exists but cannot be used (a damaged spec, metrics or model file)."""

    def __init__(self, run_id: str, problem: str):
        self.run_id = run_id
        self.problem = problem
        super().__init__(f"run {run_id} cannot be used: {problem}")


@dataclass
class Run:
    path: Path
    #: The descriptor of the staging lock this process holds (a staged run, until published or discarded).
    _lock: int | None = field(default=None, init=False, repr=False, compare=False)

    def _release(self) -> None:
        fd, self._lock = self._lock, None
        if fd is not None:
            os.close(fd)

    def _check_folder(self, name: str) -> None:
        if not self.path.is_dir():
            raise FolderGone(self.path, name)

    def save_json(self, name: str, payload: Any) -> Path:
        """Write the run's file ``name`` as JSON. A run folder that is gone is never made again: :class:`~engine.
        storage.FolderGone` (its other files went with it)."""
        return write_json(self.path / name, payload, make_parents=False)

    def save_file(self, name: str, write: Callable[[Path], Any]) -> Path:
        """Write the run's file ``name`` with ``write(tmp_path)`` (:func:`~engine.storage.atomic_write`); as
        :meth:`save_json`, never into a run folder made again."""
        return atomic_write(self.path / name, write, make_parents=False)

    @property
    def id(self) -> str:
        return self.path.name

    @cached_property
    def settings(self) -> RunSpec:
        """The typed ``spec.json`` (:class:`engine.runspec.RunSpec`), checked once when first read: raises
        :class:`~engine.storage.CorruptFile` for a file that does not parse, :class:`~engine.runspec.SpecProblem`
        for one that holds wrong types. The store's listings and :meth:`RunStore.get` skip or refuse both."""
        return validate_spec(read_json(self.path / "spec.json", dict))

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
        self._check_plain(self.path)
        try:
            _ = self.settings  # validates the spec
            metrics = self.metrics
        except CorruptFile as exc:
            raise BrokenRun(self.id, f"{exc.path.name} {exc.problem}") from None
        except SpecProblem as exc:  # parses, but holds wrong types: named like a file that does not parse
            raise BrokenRun(self.id, exc.problem) from None
        if not isinstance(metrics.get("metrics", {}), dict):
            raise BrokenRun(self.id, "metrics.json has no metrics table")

    def _check_plain(self, folder: Path, recursive: bool = False) -> None:
        """BrokenRun naming the links and special files (pipes, devices) in ``folder``: the store reads only the
        plain files it wrote, never a link planted to a file elsewhere (:func:`engine.storage.not_plain`)."""
        try:
            found = not_plain(folder, recursive) if folder.is_dir() else []
        except OSError as exc:
            raise BrokenRun(self.id, f"its folder {folder.name} cannot be read ({exc.strerror or exc})") from None
        if found:
            where = "" if folder == self.path else f"{folder.relative_to(self.path)}/"
            names = ", ".join(where + name for name in found[:3]) + (", ..." if len(found) > 3 else "")
            raise BrokenRun(
                self.id,
                f"{names}: a symbolic link or a special file (a pipe, a device) where the store keeps its own plain "
                "files; it is not read. Fix: delete the run (`python -m engine delete RUN_ID`) and train it again",
            )

    def check_model_folder(self) -> None:
        """BrokenRun unless the model folder is the run's own (not a link elsewhere) and holds only plain files and
        folders: what is checked before anything in it is loaded or signed."""
        if not is_inside(self.model_dir, self.path) or self.path.is_symlink():
            raise BrokenRun(self.id, "its model folder points outside the run store; it is not loaded")
        self._check_plain(self.model_dir, recursive=True)

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
            self.save_json("label.json", {"label": text})
        else:
            (self.path / "label.json").unlink(missing_ok=True)

    def save_metrics(self, metrics: dict) -> None:
        self.save_json("metrics.json", metrics)

    def save_curves(self, curves: dict) -> None:
        self.save_json("curves.json", curves)

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
        self.save_file("predictions.csv", lambda tmp: frame.to_csv(tmp, index=False))

    def predictions(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.path / "predictions.csv")

    def save_calibration(self, row_id, y_true, proba) -> None:
        """The run's predictions on its calibration slice (training rows it did not fit on), as
        ``calibration.csv`` beside ``predictions.csv``, in the same columns: what a blend is fitted on."""
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame(
            {"row_id": np.asarray(row_id), "y_true": np.asarray(y_true).astype(int), "proba": np.asarray(proba, float)}
        )
        self.save_file("calibration.csv", lambda tmp: frame.to_csv(tmp, index=False))

    def calibration(self) -> pd.DataFrame | None:
        """The predictions on the calibration slice (``row_id``, ``y_true``, ``proba``), or None for a run that
        kept no slice (one trained before slices existed, or with a calibration share of 0)."""
        import pandas as pd

        f = self.path / "calibration.csv"
        return pd.read_csv(f, dtype={"row_id": str}) if f.exists() else None

    def save_explanations(self, table: pd.DataFrame, row_ids, proba) -> None:
        """Store an ``explain`` table for the sample rows ``row_ids`` (``table.row`` indexes them) with
        their P(convert)."""
        import numpy as np

        row_ids, proba = np.asarray(row_ids), np.asarray(proba, dtype=float)
        frame = table.assign(row_id=row_ids[table["row"].to_numpy()], proba=proba[table["row"].to_numpy()])
        self.save_file("explanations.csv", lambda tmp: frame.to_csv(tmp, index=False))

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
        self._check_folder("model")  # the approach makes its folder with any missing parent
        approach.save(self.model_dir)

    def load_approach(self):
        """The run's fitted approach. Its files (some are joblib pickles) are read only from inside the run's
        own folder, which the store made: a model folder that is a link elsewhere is refused."""
        self.check_model_folder()
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
    #: seconds a staging folder without a lock to test is left alone (:meth:`sweep_incomplete`)
    sweep_floor: float = STAGING_FLOOR
    problems: dict[str, str] = field(default_factory=dict, init=False)
    swept: list[str] = field(default_factory=list, init=False)  # staging folders of dead trainings removed

    def __post_init__(self):
        self.root = Path(self.root) if self.root is not None else workspace() / "runs"
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run(self, spec: RunSpec | dict) -> Run:
        """A new run folder under its id, with ``spec.json`` (listed once ``metrics.json`` is written). A training
        uses :meth:`stage_run` instead, so that a training killed midway leaves nothing a listing misses."""
        return self._allocate(spec, lambda run_id: run_id)

    def stage_run(self, spec: RunSpec | dict) -> Run:
        """A new run written in a staging folder named for it and this process (``.incomplete-<run id>-p<pid>``);
        :meth:`publish` moves it into place when complete, :meth:`discard` removes it. Until then no listing shows
        it, and this process holds the folder's :data:`STAGING_LOCK` (the descriptor kept on the returned run), so
        no sweep removes it; if this process dies first, the store's next listing does. The folder is made under a
        :data:`NEWBORN_SUFFIX` name, locked, then renamed: under its staging name it is never without its lock."""
        self.sweep_incomplete()
        pid = os.getpid()
        return self._allocate(spec, lambda run_id: f"{STAGING_PREFIX}{run_id}-p{pid}", staged=True)

    def _allocate(self, spec: RunSpec | dict, folder_name: Callable[[str], str], staged: bool = False) -> Run:
        """``spec``: a :class:`RunSpec` (:meth:`RunSpec.new`) or its fields, checked here (:class:`SpecProblem`)
        before any folder is made: the store never writes a spec it would refuse to read."""
        spec = spec if isinstance(spec, RunSpec) else RunSpec.new(**spec)
        approach = spec.approach  # the spec's pattern: a valid part of a run id
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for _ in range(100):
            run_id = f"{stamp}-{approach}-{secrets.token_hex(3)}"
            path = self.root / folder_name(run_id)
            if (self.root / run_id).exists() or (staged and path.exists()):
                continue
            building = path.with_name(path.name + NEWBORN_SUFFIX) if staged else path
            try:
                building.mkdir(parents=True)  # fails if it exists: a run is never overwritten
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 24 random bits
            raise RuntimeError("could not allocate a new run folder")
        run = Run(building)
        try:
            if staged:
                run._lock = _hold_lock(building)
            run.save_json("spec.json", spec.model_copy(update={"run_id": run_id, "created": time.time()}).as_dict())
            if staged:
                os.rename(building, path)  # appears under its staging name already locked
                run.path = path
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            run._release()
            raise
        return run

    def publish(self, run: Run) -> Run:
        """Move a complete staged run (:meth:`stage_run`) into place under its id, in one rename: a listing sees
        all of the run or none of it. ``run.path`` is the run's folder afterwards, and the staging lock is
        released. A staged run that lost its spec, metrics or model (its folder removed by hand) is refused with
        :class:`BrokenRun`, never published without them."""
        found = _STAGING.match(run.path.name)
        if not found or found["new"] or run.path.parent != self.root:
            raise ValueError(f"{run.path} is not a staged run of {self.root}")
        if not run.path.is_dir():
            raise BrokenRun(found["run_id"], f"its staging folder {run.path.name} is gone; it is not published")
        missing = [name for name in ("spec.json", "metrics.json", "model") if not (run.path / name).exists()]
        if missing:
            raise BrokenRun(found["run_id"], f"its staging folder lacks {', '.join(missing)}; it is not published")
        final = self.root / found["run_id"]
        if final.exists():
            raise FileExistsError(f"run {found['run_id']} exists already; a run is never overwritten")
        os.rename(run.path, final)  # with the lock still held: no sweep can see the folder unowned
        run.path = final
        try:
            (final / STAGING_LOCK).unlink()
        except OSError:  # a stray lock file in a run folder is harmless
            pass
        run._release()
        return run

    def discard(self, run: Run) -> None:
        """Remove a staged run that will not be published (a failed or cancelled training), then release its
        lock. Only a staging folder is ever removed here: a run already published (even when the rename landed
        just before an interrupt) is left whole."""
        try:
            if _STAGING.match(run.path.name) and run.path.parent == self.root and not run.path.is_symlink():
                shutil.rmtree(run.path, ignore_errors=True)
        finally:
            run._release()

    def sweep_incomplete(self) -> list[str]:
        """Remove the staging folders of trainings that are gone (killed before their run was complete): those
        whose :data:`STAGING_LOCK` nobody holds. The lock is taken without waiting and held while the folder is
        removed; a folder whose lock is held (its training runs) is never touched. A folder without a lock file
        (being made, or written by an older version) is removed only once older than :attr:`sweep_floor` and
        when no process of the pid in its name runs on this machine. Returns the names removed, also added to
        :attr:`swept`."""
        removed = []
        for path in self.root.glob(f"{STAGING_PREFIX}*"):
            found = _STAGING.match(path.name)
            if not found or path.is_symlink() or not path.is_dir():
                continue  # not a name this store makes: left alone
            if self._remove_abandoned(path, found):
                removed.append(path.name)
        self.swept.extend(removed)
        return removed

    def _older_than_floor(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime >= self.sweep_floor
        except OSError:
            return False

    def _remove_abandoned(self, path: Path, found: re.Match) -> bool:
        """Remove the staging folder ``path`` when its training is gone (see :meth:`sweep_incomplete`)."""
        lock = path / STAGING_LOCK
        try:
            fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            fd = None
        except OSError:  # a lock file that cannot be opened (a link, no permission): left alone
            return False
        try:
            if fd is None:
                if _pid_runs_here(int(found["pid"])) or not self._older_than_floor(path):
                    return False
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    same = os.path.samestat(os.fstat(fd), os.stat(lock, follow_symlinks=False))
                except OSError:  # held (its training runs), or the folder moved on meanwhile (published)
                    return False
                if not same or (found["new"] and not self._older_than_floor(path)):
                    return False  # a newborn folder may be between taking its lock file and locking it
            shutil.rmtree(path, ignore_errors=True)
            return not path.exists()
        finally:
            if fd is not None:
                os.close(fd)

    def _folders(self) -> list[Path]:
        return sorted(
            (p for p in self.root.iterdir() if RUN_ID_PATTERN.fullmatch(p.name) and not p.is_symlink()), reverse=True
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
            if all(getattr(run.settings, k, None) == v for k, v in match.items()):
                runs.append(run)
        return runs

    def broken(self) -> list[dict[str, str]]:
        """``[{"run_id", "problem"}]`` for every run folder that cannot be used (after a fresh look)."""
        self.list_runs()
        return [{"run_id": k, "problem": v} for k, v in sorted(self.problems.items(), reverse=True)]

    def _path(self, run_id: str, any_folder: bool = False) -> Path:
        """The folder of ``run_id``: an id of the store's pattern naming a real folder (not a link) inside the
        store, holding a ``spec.json`` unless ``any_folder`` (a run listed as broken because it has none)."""
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):  # fullmatch: no "\n" after
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
    return 5 if input_kind == "transcripts" else int(approach_hook(approach, "explain_rows", 30))


def explain_sample(positions, n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` of a fixed shuffle of ``positions``: a smaller sample is a prefix of a larger one."""
    import numpy as np

    return np.random.default_rng(seed).permutation(np.asarray(positions))[:n]
