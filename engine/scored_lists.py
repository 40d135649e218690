"""Scored lists kept for later (the Score page's store, the lists outcomes from the CRM are matched to): one folder per
list under ``<workspace>/scored/<sha256 of its CSV>/`` with ``scored.csv`` and a checked ``meta.json``.

A list scored by several runs side by side (the Score page with several models, ``score --shadow RUN_ID``) keeps
every run's scores: ``scored.csv`` is the first run's list as downloaded, and ``shadow.csv`` holds one probability
column per other run (named by its run id, row for row with ``scored.csv``); ``meta.json`` names them in
``shadow_runs``. What outcomes compare the live run and its challengers on (:mod:`engine.challenger`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.config import workspace
from engine.live import LiveStore, family_of
from engine.scoring import Scored
from engine.storage import CorruptFile, locked, read_json, write_bytes, write_json

SHADOW_FILE = "shadow.csv"


def _shadow_columns(scored: Scored, shadows: dict[str, Scored]) -> dict[str, np.ndarray]:
    """The shadow runs' probabilities in the order of ``scored``'s ranked list (its row r is its r-th best lead);
    ValueError when a shadow scored other rows than ``scored`` (another file, or rows dropped)."""
    if not shadows:
        return {}
    if scored.proba is None:
        raise ValueError("the list has no probabilities in its file's order, so shadow scores cannot be lined up")
    order = np.argsort(-np.asarray(scored.proba), kind="stable")  # the ranked table's rows, as file positions
    out = {}
    for run_id, other in shadows.items():
        if run_id == scored.run_id:
            continue
        if other.proba is None or len(other.proba) != len(scored.proba):
            raise ValueError(
                f"run {run_id} scored {0 if other.proba is None else len(other.proba):,} rows and run "
                f"{scored.run_id} {len(scored.proba):,}: shadow scores must be of the same file. Fix: score one "
                "file with every run."
            )
        out[str(run_id)] = np.round(np.asarray(other.proba, dtype=float)[order], 6)  # as the lists write it
    return out


def _add_shadows(folder, shadow: dict[str, np.ndarray]) -> None:
    """Under the list's lock: add the runs of ``shadow`` that the stored list does not hold yet (one already held is
    kept as it was stored)."""
    meta = read_json(folder / "meta.json", dict)
    held = [r for r in meta.get("shadow_runs") or [] if isinstance(r, str)]
    new = {k: v for k, v in shadow.items() if k not in held and k != meta.get("run_id")}
    if not new:
        return
    frame = pd.read_csv(folder / SHADOW_FILE, dtype=str, keep_default_na=False) if held else pd.DataFrame()
    if held and len(frame) != len(next(iter(new.values()))):
        return  # a damaged shadow file is named when read (ScoredStore.shadow_scores), never written over
    frame = pd.concat([frame.reset_index(drop=True), pd.DataFrame(new)], axis=1)
    write_bytes(folder / SHADOW_FILE, frame.to_csv(index=False).encode("utf-8"))
    write_json(folder / "meta.json", {**meta, "shadow_runs": [*held, *new]})


def _checked_meta(folder) -> dict:
    """A stored list's ``meta.json``, with the types the Score page reads checked (pydantic, strict: a ``created``
    of ``"yesterday"`` or ``rows`` of ``"many"`` is refused, not guessed at) and its ``scored.csv`` present;
    :class:`engine.storage.CorruptFile` naming the problem otherwise."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class Meta(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
        run_id: str
        source: str
        created: float = Field(ge=0, le=253_402_300_799, allow_inf_nan=False)  # a time (up to year 9999)
        rows: int = Field(ge=0)

    meta_file = folder / "meta.json"
    try:
        meta = Meta.model_validate(read_json(meta_file, dict)).model_dump()
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'meta'}: {e['msg']}" for e in exc.errors()[:4])
        raise CorruptFile(meta_file, f"meta.json holds wrong values ({wrong})") from None
    except CorruptFile as exc:
        raise CorruptFile(meta_file, f"meta.json {exc.problem}") from None
    if meta["sha256"] != folder.name:
        raise CorruptFile(meta_file, "meta.json names another list (its sha256 is not the folder's name)")
    if not (folder / "scored.csv").is_file():
        raise CorruptFile(folder / "scored.csv", "scored.csv, the list itself, is missing")
    return meta


def live_version(workspace, run_id: str) -> int | None:
    """The live version (:mod:`engine.live`) under which ``run_id`` is live in ``workspace``; None when it is not the
    live run of any kind and family (or the live file cannot be read: the list is stored all the same)."""
    return live_version_and_family(workspace, run_id)[0]


def live_version_and_family(workspace, run_id: str) -> tuple[int | None, str | None]:
    """``(live version or None, dataset family)`` of ``run_id`` in ``workspace``: the family its live entry names, else
    the family of the stored run (:func:`engine.live.family_of`); None when neither can be read."""
    from pathlib import Path

    try:
        found = LiveStore(workspace).version_of(run_id)
    except ValueError:
        found = None
    if found is not None:
        return found
    try:
        from engine.runs import RunStore

        return None, family_of(RunStore(Path(workspace) / "runs").get(run_id).settings)
    except Exception:  # noqa: BLE001 - a run of another store, or gone: the list is stored all the same
        return None, None


class ScoredStore:
    """Scored files under ``<workspace>/scored/<sha256 of the CSV>/``: ``scored.csv`` (the export, as
    downloaded) and ``meta.json`` (run id, time, source file, rows, tiers, report). Content-addressed: the
    same list stored twice is one entry, a different list never replaces another."""

    def __init__(self, root=None):
        from pathlib import Path

        self.root = Path(root) if root is not None else workspace() / "scored"
        self.root.mkdir(parents=True, exist_ok=True)
        self.problems: dict[str, str] = {}

    def add(
        self,
        scored: Scored,
        source: str,
        csv_bytes: bytes | None = None,
        extra: dict | None = None,
        shadows: dict[str, Scored] | None = None,
    ) -> dict:
        """Store a scored list; ``csv_bytes`` is its export as already rendered (``Scored.export_csv``),
        so a caller that offers the download does not render it twice. The meta records the run, its dataset
        family and the live version (:func:`live_version_and_family`: None when the run was not the live one);
        ``extra`` (e.g. the shift check's
        verdict) is added to it. ``shadows``: the same rows scored by other runs (``{run id: Scored}``), kept in
        ``shadow.csv``; a run added to a list stored before is added beside the others, none is replaced."""
        import hashlib
        import time

        data = csv_bytes if csv_bytes is not None else scored.export_csv()
        sha = hashlib.sha256(data).hexdigest()
        folder = self.root / sha
        shadow = _shadow_columns(scored, shadows or {})
        with locked(folder / "meta.json"):
            if (folder / "meta.json").exists():
                if shadow:
                    _add_shadows(folder, shadow)
            else:
                version, family = live_version_and_family(self.root.parent, scored.run_id)
                write_bytes(folder / "scored.csv", data)
                meta = {
                    "sha256": sha,
                    "run_id": scored.run_id,
                    "approach": scored.approach,
                    "source": str(source),
                    "created": time.time(),
                    "live_version": version,
                    "family": family,
                    **{k: v for k, v in scored.summary.items() if k != "run_id"},
                    **(extra or {}),
                }
                if shadow:
                    write_bytes(folder / SHADOW_FILE, pd.DataFrame(shadow).to_csv(index=False).encode("utf-8"))
                    meta["shadow_runs"] = list(shadow)
                write_json(folder / "meta.json", meta)
        return read_json(folder / "meta.json", dict)

    def record(self, sha: str, extra: dict) -> dict:
        """Add ``extra`` (e.g. the shift check's verdict, which the Score page computes after the list is stored) to
        the stored list ``sha``'s meta, under its lock; a key the meta holds already is kept as it was (the same list
        checked twice changes nothing). KeyError for a list that is not stored; the meta as it now is."""
        folder = self.path(sha).parent
        with locked(folder / "meta.json"):
            meta = _checked_meta(folder)
            new = {k: v for k, v in extra.items() if k not in meta}
            if new:
                meta = {**read_json(folder / "meta.json", dict), **new}
                write_json(folder / "meta.json", meta)
        return meta

    def shadow_scores(self, meta: dict) -> pd.DataFrame:
        """The other runs' probabilities of a stored list (one column per run id, row for row with its
        ``scored.csv``); an empty frame when it has none. :class:`engine.storage.CorruptFile` when the meta names
        shadow runs and ``shadow.csv`` is missing or does not hold them as numbers."""
        runs = meta.get("shadow_runs")
        if not runs:
            return pd.DataFrame()
        path = self.path(meta["sha256"]).parent / SHADOW_FILE
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise CorruptFile(path, f"shadow.csv cannot be read ({exc})") from None
        if not isinstance(runs, list) or any(r not in frame.columns for r in runs) or len(frame) != meta["rows"]:
            raise CorruptFile(path, "shadow.csv does not hold the shadow runs the list's meta.json names")
        out = frame[runs].apply(pd.to_numeric, errors="coerce")
        if out.isna().to_numpy().any() or not ((out >= 0) & (out <= 1)).to_numpy().all():
            raise CorruptFile(path, "shadow.csv holds values that are not probabilities")
        return out

    def list(self) -> list[dict]:
        """Stored lists, newest first, each checked on read (:func:`_checked_meta`): one whose ``meta.json`` is
        damaged or holds wrong types, or whose ``scored.csv`` is missing, is skipped and named in
        :attr:`problems` (``{folder name: what is wrong}``, as of this call)."""
        found, self.problems = [], {}
        for folder in self.root.iterdir():
            if not folder.is_dir() or not (folder / "meta.json").exists():
                continue  # a lock file, or a list being written
            try:
                found.append(_checked_meta(folder))
            except CorruptFile as exc:
                self.problems[folder.name] = exc.problem
        return sorted(found, key=lambda m: m["created"], reverse=True)

    def path(self, sha: str):
        import re

        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise KeyError(f"No scored list {str(sha)[:80]!r}")
        f = self.root / sha / "scored.csv"
        if not f.exists():
            raise KeyError(f"No scored list {sha[:12]}")
        return f

    def delete(self, sha: str) -> None:
        import shutil

        shutil.rmtree(self.path(sha).parent)
