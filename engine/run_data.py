"""A run's training data, rebuilt from its dataset file: the rows, labels and row ids it was trained on.

The pages that look inside a run (Explain, What-if, Embeddings) need the rows the run learned from and tested on;
the run stores its spec and its test rows' ids, not the rows, so they are read again from the dataset file with
the run's own settings (target, exclusions, columns, numbers read as missing). This is the one place that does it:
the dashboard only caches what these functions return (``dashboard/components/state.py``).

A training frame is a dict: ``X`` (the features, in the run's column order), ``y`` (0/1 labels), ``row_ids``
(what the run's stored predictions and explanations name rows by) and ``kinds`` (the columns' kinds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import DEMO_LEADS, DEMO_TRANSCRIPTS
from engine.datasets import DatasetStore

if TYPE_CHECKING:
    from engine.runs import Run
    from engine.runspec import RunSpec

#: The committed demo files: a run trained on one of them finds its rows there when no dataset holds them.
DEMO_FILES = (DEMO_LEADS, DEMO_TRANSCRIPTS)


class TrainingDataMissing(LookupError):
    """The run's dataset file is not in the dataset store (nor a demo file): the message names the run, the
    dataset and the fix."""


def file_sha(path: str | Path) -> str:
    """The sha256 of a file's bytes (what a run's ``data_hash`` is)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_file(
    data_hash: str | None,
    datasets: DatasetStore | None = None,
    demo_files: Iterable[Path] = DEMO_FILES,
    sha: Callable[[Path], str] | None = None,
) -> Path | None:
    """Where the raw file of the dataset ``data_hash`` is: the dataset store's copy, else a committed demo file with
    that sha256; None when neither holds it (or the store's copy is damaged or gone: the store names a damaged one
    in its ``problems``). ``sha(path)`` hashes a demo file (the dashboard passes a cached one)."""
    if not data_hash:
        return None
    try:
        found = (datasets if datasets is not None else DatasetStore()).find(data_hash)
        if found is not None and found.raw_path.is_file():
            return found.raw_path
    except (OSError, ValueError):  # a damaged dataset (the store's problems name it) or an unreadable store
        pass
    sha = sha or file_sha
    for demo in demo_files:
        demo = Path(demo)
        if demo.is_file() and sha(demo) == data_hash:
            return demo
    return None


def frame_settings(settings: RunSpec) -> dict[str, Any]:
    """The settings that decide a run's training frame, as plain JSON (runs that share them share the frame: the
    dashboard's cache key); :func:`training_frame` takes them as keywords."""
    if settings.input_kind == "transcripts":
        return {"input_kind": "transcripts"}
    return {
        "input_kind": "leads",
        "target": settings.target,
        "excluded": list(settings.excluded),
        "columns": list(settings.columns),
        "missing_values": {column: list(codes) for column, codes in settings.missing_values.items()},
    }


def training_frame(
    path: str | Path,
    input_kind: str = "leads",
    target: str | None = None,
    excluded: Iterable[str] = (),
    columns: Iterable[str] = (),
    missing_values: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """The training frame (see the module docstring) of the file at ``path`` read with a run's
    :func:`frame_settings`. A lead table is read with no leak policy but the run's exclusions, and shaped to the
    run's ``columns`` (a column the file lacks is all missing); a missing file is :class:`FileNotFoundError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The dataset file {path} is gone. Fix: upload the same file again on the Data page.")
    if input_kind == "transcripts":
        from engine.data.transcripts import load_transcripts  # heavy: loads pandas

        table = load_transcripts(path)
        return {"X": table.X, "y": np.asarray(table.y).astype(int), "row_ids": np.arange(len(table.y)), "kinds": {}}
    if input_kind != "leads":
        raise ValueError(f"No training frame for input kind {input_kind!r}; it is 'leads' or 'transcripts'")
    from engine.data.leads import load_leads  # heavy: loads pandas

    table = load_leads(
        path, target=target, leak_policy="none", exclude=list(excluded), missing_values=missing_values or None
    )
    X = table.X
    columns = list(columns)
    if columns:
        for column in columns:
            if column not in X.columns:
                X[column] = float("nan")
        X = X[columns]
    return {"X": X, "y": table.y, "row_ids": table.row_ids, "kinds": dict(table.kinds)}


def run_training_frame(run: Run, datasets: DatasetStore | None = None) -> dict[str, Any]:
    """``run``'s training frame, read from its dataset file; :class:`TrainingDataMissing` naming the run, the
    dataset and the fix when the file is not in the dataset store (nor a demo file)."""
    settings = run.settings
    path = dataset_file(settings.data_hash, datasets)
    if path is None:
        raise TrainingDataMissing(
            f"The data of run {run.id} (dataset '{settings.dataset}', sha256 {str(settings.data_hash)[:12]}…) is not "
            "in the dataset store. Fix: upload the same file on the Data page to explain or rescore this run."
        )
    return training_frame(path, **frame_settings(settings))


def positions_of_test_rows(row_ids, predicted_ids) -> np.ndarray:
    """Positions in a training frame (its ``row_ids``) of the rows a run tested on (``predicted_ids``: the
    ``row_id`` column of its stored predictions), in the predictions' order; ids not in the frame are left out."""
    position = {rid: i for i, rid in enumerate(np.asarray(row_ids).tolist())}
    return np.array([position[r] for r in np.asarray(predicted_ids).tolist() if r in position], dtype=int)
