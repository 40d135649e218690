"""The run store: one folder per trained run, never overwritten.

A run folder holds ``spec.json`` (what was trained on what: approach, params, data hash,
leak policy, split), ``metrics.json`` (protocol metrics with intervals, timings),
``predictions.csv`` (test-split rows: ``row_id``, ``y_true``, ``proba``), ``curves.json``,
``explanations.csv`` (contributions of a sample of test rows, see :func:`explain_sample`) and
``model/`` (the approach's own native files).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import workspace

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
# NumPy and pandas are imported where a run's tables are read or written: listing runs (the dashboard's
# first page) needs neither, and pandas alone takes most of a second to import.


def _json_default(value: Any):
    np = sys.modules.get("numpy")  # a value can only be a NumPy one when NumPy is loaded
    if np is not None and isinstance(value, np.integer):
        return int(value)
    if np is not None and isinstance(value, np.floating):
        return float(value)
    if np is not None and isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (temp file + rename), so a reader never sees half a file."""
    _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=_json_default)))


def _write_atomically(path: Path, write) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


@dataclass
class Run:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def spec(self) -> dict:
        return json.loads((self.path / "spec.json").read_text())

    @property
    def metrics(self) -> dict:
        f = self.path / "metrics.json"
        return json.loads(f.read_text()) if f.exists() else {}

    @property
    def curves(self) -> dict:
        f = self.path / "curves.json"
        return json.loads(f.read_text()) if f.exists() else {}

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def complete(self) -> bool:
        return (self.path / "metrics.json").exists()

    def save_metrics(self, metrics: dict) -> None:
        write_json(self.path / "metrics.json", metrics)

    def save_curves(self, curves: dict) -> None:
        write_json(self.path / "curves.json", curves)

    def save_predictions(self, row_id, y_true, proba) -> None:
        import numpy as np
        import pandas as pd

        frame = pd.DataFrame({"row_id": np.asarray(row_id), "y_true": np.asarray(y_true).astype(int),
                              "proba": np.asarray(proba, dtype=float)})
        frame.to_csv(self.path / "predictions.csv", index=False)

    def predictions(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.path / "predictions.csv")

    def save_explanations(self, table: pd.DataFrame, row_ids, proba) -> None:
        """Store an ``explain`` table for the sample rows ``row_ids`` (``table.row`` indexes them) with
        their P(convert)."""
        import numpy as np

        row_ids, proba = np.asarray(row_ids), np.asarray(proba, dtype=float)
        frame = table.assign(row_id=row_ids[table["row"].to_numpy()], proba=proba[table["row"].to_numpy()])
        _write_atomically(self.path / "explanations.csv", lambda tmp: frame.to_csv(tmp, index=False))

    def explanations(self) -> pd.DataFrame | None:
        """The stored contributions (``explain`` columns plus ``row_id``, as text, and ``proba``), or None."""
        import pandas as pd

        f = self.path / "explanations.csv"
        if not f.exists():
            return None
        return pd.read_csv(f, dtype={"feature": str, "value": str}, keep_default_na=False,
                           converters={"row": int, "row_id": str, "contribution": float, "proba": float})

    def save_model(self, approach) -> None:
        approach.save(self.model_dir)

    def load_approach(self):
        from engine.approaches.base import load_approach

        return load_approach(self.model_dir)

    def save_artifact(self, name: str, payload: Any) -> Path:
        target = self.path / name
        write_json(target, payload)
        return target


class RunStore:
    """Runs under ``<workspace>/runs``. Ids are ``<UTC time>-<approach>-<random>``: unique, sortable."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else workspace() / "runs"
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run(self, spec: dict) -> Run:
        approach = spec.get("approach", "run")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        for _ in range(100):
            path = self.root / f"{stamp}-{approach}-{secrets.token_hex(3)}"
            try:
                path.mkdir(parents=True)  # fails if it exists: a run is never overwritten
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 24 random bits
            raise RuntimeError("could not allocate a new run folder")
        write_json(path / "spec.json", {**spec, "run_id": path.name, "created": time.time()})
        return Run(path)

    def list_runs(self, complete_only: bool = True, **match: Any) -> list[Run]:
        """Runs, newest first, whose spec matches every ``key=value`` given."""
        runs = []
        for path in sorted(self.root.iterdir(), reverse=True):
            if not (path / "spec.json").exists():
                continue
            run = Run(path)
            if complete_only and not run.complete:
                continue
            spec = run.spec
            if all(spec.get(k) == v for k, v in match.items()):
                runs.append(run)
        return runs

    def get(self, run_id: str) -> Run:
        path = self.root / run_id
        if not (path / "spec.json").exists():
            raise KeyError(f"No run {run_id!r} in {self.root}")
        return Run(path)

    def latest(self, **match: Any) -> Run | None:
        runs = self.list_runs(**match)
        return runs[0] if runs else None

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self.get(run_id).path)


def explain_rows(approach: str, input_kind: str) -> int:
    """How many test rows a run's stored explanation covers (the Explain page's default sample): fewer for
    the approaches whose explanation re-scores each row many times (the LLM, transcripts)."""
    return 5 if input_kind == "transcripts" or approach == "lora" else 30


def explain_sample(positions, n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` of a fixed shuffle of ``positions``: a smaller sample is a prefix of a larger one."""
    import numpy as np

    return np.random.default_rng(seed).permutation(np.asarray(positions))[:n]
