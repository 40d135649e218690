"""Shared state of the pages: stores, the job runner, cached models and data.

Models are cached with ``st.cache_resource``, data with ``st.cache_data``; both are keyed by paths
under the current workspace, so a test with its own ``CLAB_WORKSPACE`` never sees another's.
Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from engine.approaches.registry import approach_hook
from engine.config import DEMO_LEADS, DEMO_TRANSCRIPTS, workspace
from engine.data.uses import use_name
from engine.datasets import DatasetStore
from engine.jobs import JobRunner
from engine.jobs import gpu_info as gpu_of_machine
from engine.runs import Run, RunStore

#: metrics where lower is better (the board marks the lowest of these as best); names and help: engine.evaluate
LOWER_IS_BETTER = {"brier", "log_loss", "ece"}
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier", "log_loss", "ece"]


def approach_label(name: str | None) -> str:
    """An approach's name for people (its ``label`` hook), or its registry name."""
    return approach_hook(name, "label", None) or name or "?"


# -- stores ------------------------------------------------------------------------------------
def run_store():
    return RunStore()


def dataset_store():
    return DatasetStore()


@st.cache_resource(show_spinner=False)
def _job_runner(ws: str, max_concurrent: int):
    runner = JobRunner(ws, max_concurrent=max_concurrent)
    runner.recover()  # jobs left "running" by a previous dashboard process
    return runner


def job_runner():
    return _job_runner(str(workspace()), int(os.environ.get("CLAB_MAX_JOBS", "1")))


@st.cache_data(show_spinner=False)
def _gpu_info() -> dict:
    return gpu_of_machine()


def gpu_info() -> dict:
    return _gpu_info()


# -- runs --------------------------------------------------------------------------------------
def list_runs(**match) -> list:
    """Runs, newest first; runs with a damaged file are left out (:func:`storage_problems` names them)."""
    try:
        return run_store().list_runs(**match)
    except OSError:
        return []


def storage_problems() -> list[str]:
    """One line per run or dataset that the stores skip because one of its files is damaged, with why and
    where. Works with stores that name their broken entries (``problems``) and with ones that do not."""
    lines = []
    try:
        store = run_store()
        store.list_runs()
        for run_id, why in sorted(getattr(store, "problems", {}).items(), reverse=True):
            lines.append(
                f"Run {run_id} is skipped: {why}. Restore the file or delete the folder {store.root / run_id}."
            )
    except OSError as exc:
        lines.append(f"The run store cannot be read: {exc}")
    try:
        datasets = dataset_store()
        datasets.list()
        for sha, why in sorted(getattr(datasets, "problems", {}).items()):
            if sha[:12] in why:  # the store's own sentence, with its fix
                lines.append(f"Skipped: {why}")
            else:
                lines.append(
                    f"Dataset {sha[:12]} is skipped: {why}. Upload the same file again to repair it, or "
                    f"delete the folder {datasets.root / sha}."
                )
    except OSError as exc:
        lines.append(f"The dataset store cannot be read: {exc}")
    return lines


def run_curves(run) -> dict:
    """The run's curves, or {} when its curves.json is missing or damaged."""
    try:
        return run.curves
    except (OSError, ValueError):
        return {}


def run_trained_at(run) -> str:
    """When the run was made, as "1 Dec 23:56" (local time; the year too when it is not this year)."""
    import datetime as dt

    created = run.settings.created
    try:
        when = dt.datetime.fromtimestamp(float(created))
    except (TypeError, ValueError, OverflowError, OSError):
        try:  # the run id starts with its UTC time
            when = (
                dt.datetime.strptime(run.id[:15], "%Y%m%dT%H%M%S")
                .replace(tzinfo=dt.UTC)
                .astimezone()
                .replace(tzinfo=None)
            )
        except ValueError:
            return "?"
    text = f"{when.day} {when:%b %H:%M}"
    return text if when.year == dt.datetime.now().year else f"{when.day} {when:%b %Y %H:%M}"


def run_auto_label(run) -> str:
    """The name a run gets when the user gave it none: approach, dataset and when it was trained."""
    settings = run.settings
    part = use_name(settings.use, settings.kinds)  # table only | text only | table + text: on a table with text
    part = f" · {part}" if part else ""
    return f"{approach_label(settings.approach)}{part} · {settings.dataset or '?'} · {run_trained_at(run)}"


def run_label(run) -> str:
    """How every page names a run: the user's name for it (``Run.label``, set on the Metric board), or approach,
    dataset and date ("Stacked ensemble · Demo leads · 1 Dec 23:56"). The run id is in :func:`run_help`."""
    try:
        label = run.label
    except (OSError, AttributeError):
        label = None
    return label or run_auto_label(run)


def run_labels(runs) -> dict[str, str]:
    """``{run id: label}`` for runs shown together: labels that would read alike get the end of the run id."""
    labels = {r.id: run_label(r) for r in runs}
    counts: dict[str, int] = {}
    for text in labels.values():
        counts[text] = counts.get(text, 0) + 1
    return {rid: text if counts[text] == 1 else f"{text} · {rid[-6:]}" for rid, text in labels.items()}


def run_help(run) -> str:
    """The technical details of a run for a tooltip: its id and what it was trained with."""
    settings = run.settings
    return (
        f"Run id {run.id} ({run_auto_label(run)}); approach `{settings.approach}`, dataset sha256 "
        f"{str(settings.data_hash)[:12]}…"
    )


@st.cache_resource(show_spinner=False, max_entries=12)
def _load_model(run_path: str, stamp: tuple):
    return Run(Path(run_path)).load_approach()


def _model_stamp(folder: Path) -> tuple:
    """Name, size and mtime of every file of a model folder: a changed file loads the model again."""
    if not folder.is_dir():
        return ()
    return tuple(
        sorted(
            (str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns)
            for f in folder.rglob("*")
            if f.is_file()
        )
    )


#: (run folder, model files' stamp) -> the error its model gave: a damaged model is not read again on every rerun
_failed_models: dict[tuple, Exception] = {}


def load_model(run):
    """The run's fitted approach, loaded once per process (through :meth:`engine.runs.Run.load_approach`, which
    reads model files only from inside the run store). Raises ``engine.runs.BrokenRun`` for a damaged model; that
    answer is remembered until one of the model's files changes."""
    key = (str(run.path), _model_stamp(run.model_dir))
    if key in _failed_models:
        raise _failed_models[key].with_traceback(None)
    try:
        return _load_model(*key)
    except Exception as exc:
        if len(_failed_models) > 64:
            _failed_models.clear()
        _failed_models[key] = exc
        raise


@st.cache_data(show_spinner=False, max_entries=32)
def _predictions(path: str, mtime: float):
    import pandas as pd

    return pd.read_csv(path)


def predictions(run):
    f = run.path / "predictions.csv"
    return _predictions(str(f), f.stat().st_mtime)


# -- data of a run -----------------------------------------------------------------------------
# The training frame is the engine's (engine.run_data); the page side only caches it, keyed by the file's path and
# modification time and by the settings that decide the frame.
@st.cache_data(show_spinner=False)
def _file_sha(path: str, mtime: float) -> str:
    from engine.run_data import file_sha  # heavy: loads NumPy (the first page stays light)

    return file_sha(path)


def data_path_for_hash(data_hash: str | None) -> Path | None:
    """Where the raw file of a dataset is: the dataset store, or the committed demo files."""
    from engine.run_data import dataset_file  # heavy: loads NumPy (the first page stays light)

    return dataset_file(
        data_hash, None, (DEMO_LEADS, DEMO_TRANSCRIPTS), sha=lambda p: _file_sha(str(p), p.stat().st_mtime)
    )


@st.cache_data(show_spinner=False, max_entries=8)
def _training_frame(path: str, mtime: float, settings_json: str) -> dict:
    import json

    from engine.run_data import training_frame  # heavy: loads NumPy (the first page stays light)

    return training_frame(path, **json.loads(settings_json))


def run_data(run) -> dict | None:
    """The features the run was trained on (``X``, ``y``, ``row_ids``, ``kinds``: :mod:`engine.run_data`), or None
    when its file is not in the dataset store."""
    import json

    from engine.run_data import frame_settings  # heavy: loads NumPy (the first page stays light)

    path = data_path_for_hash(run.settings.data_hash)
    if path is None:
        return None
    try:
        mtime = path.stat().st_mtime
    except OSError:  # removed since it was found
        return None
    return _training_frame(str(path), mtime, json.dumps(frame_settings(run.settings), sort_keys=True))


def test_rows(run, data: dict):
    """Positions in ``data["X"]`` of the run's test rows (from its stored predictions)."""
    from engine.run_data import positions_of_test_rows  # heavy: loads NumPy (the first page stays light)

    return positions_of_test_rows(data["row_ids"], predictions(run)["row_id"])


def missing_data_message(run) -> str:
    data_hash = str(run.settings.data_hash)
    where = (
        "is damaged in the dataset store (see the warning above)"
        if (dataset_store().root / data_hash).exists()
        else "is not in the dataset store"
    )
    return (
        f"The data of run {run.id} (dataset '{run.settings.dataset}', sha256 {data_hash[:12]}…) {where}. "
        "Upload the same file on the Data page to explain or rescore this run."
    )
