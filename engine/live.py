"""The live model: the run that the API, ``score`` and the Score page use, chosen on purpose.

One live run per **input kind** (``leads``, ``transcripts``): the API and ``score`` are asked to score a lead or a
transcript and know nothing else about it (no dataset name comes with a request), so the input kind is the one key
every consumer can look the live run up by. A new dataset of the same kind replaces the live run only when someone
deploys a run trained on it.

Two files beside the runs folder (``<workspace>/``), both written with :func:`engine.storage.atomic_write` under one
:func:`engine.storage.locked` lock, so two tabs or processes deploying at once are applied one after the other (the
later one wins, both are in the history):

* ``live.json`` — ``{"format": 1, "version": N, "live": {KIND: {"run_id", "version", "time", "by", "note"}}}``:
  ``version`` counts every change (deploy or rollback of any kind); each kind's entry keeps the version it was set
  at, the one the API returns with each prediction.
* ``live_history.jsonl`` — one JSON object a line, oldest first, one per change: ``version``, ``time`` (UTC, ISO
  8601), ``action`` (``deploy`` | ``rollback``), ``kind``, ``run_id``, ``previous`` (the run live before, or null),
  ``by`` (``getpass.getuser()`` where known), ``note``. Never edited, only appended to (rewritten whole, atomically).

Training never touches these files. A damaged file is refused with :class:`LiveFileProblem`, naming the file and the
fix; nothing falls back to another run silently.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runs import BrokenRun
from engine.storage import CorruptFile, locked, read_json, write_json, write_text

LIVE_FILE = "live.json"
HISTORY_FILE = "live_history.jsonl"
FORMAT = 1
KINDS = ("leads", "transcripts")


class LiveFileProblem(ValueError):
    """``live.json`` or ``live_history.jsonl`` cannot be read as this module wrote it; the message says the fix."""

    def __init__(self, path: Path, problem: str, fix: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{self.path} {problem}. Fix: {fix}")


class LiveRunUnusable(ValueError):
    """The live run of a kind no longer loads (deleted, damaged): an error naming it, never a fall-back."""

    def __init__(self, kind: str, run_id: str, problem: str):
        self.kind, self.run_id, self.problem = kind, run_id, problem
        super().__init__(
            f"the live {kind} run {run_id} cannot be used: {problem}. Fix: deploy another run "
            f"(`python -m engine deploy RUN_ID`) or roll back (`python -m engine deploy --rollback --kind {kind}`)"
        )


def _who() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment (no passwd entry, no LOGNAME)
        return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class LiveStore:
    """The live runs and their history in the folder ``root`` (the workspace: the runs folder's parent)."""

    root: Path

    def __post_init__(self):
        self.root = Path(self.root)

    @classmethod
    def beside(cls, store) -> LiveStore:
        """The live store of a :class:`engine.runs.RunStore`: in the folder that holds its ``runs`` folder."""
        return cls(Path(store.root).parent)

    @property
    def live_path(self) -> Path:
        return self.root / LIVE_FILE

    @property
    def history_path(self) -> Path:
        return self.root / HISTORY_FILE

    # -- reading ---------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """``{"version": N, "live": {kind: entry}}``; empty when nothing was ever deployed. LiveFileProblem for a
        damaged ``live.json``."""
        path = self.live_path
        if not path.exists():
            return {"format": FORMAT, "version": 0, "live": {}}
        fix = (
            f"move {path.name} aside and deploy the run that should be live again (`python -m engine deploy RUN_ID`; "
            f"{HISTORY_FILE} says which run was live)"
        )
        try:
            data = read_json(path, dict)
        except CorruptFile as exc:
            raise LiveFileProblem(path, exc.problem, fix) from None
        live, version = data.get("live"), data.get("version")
        if data.get("format") != FORMAT or not isinstance(live, dict) or type(version) is not int or version < 0:
            raise LiveFileProblem(path, "is not a live-run file this version wrote", fix)
        for kind, entry in live.items():
            if (
                kind not in KINDS
                or not isinstance(entry, dict)
                or not isinstance(entry.get("run_id"), str)
                or type(entry.get("version")) is not int
            ):
                raise LiveFileProblem(path, f"holds a damaged entry for {str(kind)[:40]!r}", fix)
        return data

    def live(self, kind: str) -> dict | None:
        """The live entry of ``kind`` (``run_id``, ``version``, ``time``, ``by``, ``note``), or None."""
        return self.state()["live"].get(kind)

    def history(self) -> list[dict]:
        """Every change, oldest first. LiveFileProblem for a damaged history file (a line that is not an object)."""
        path = self.history_path
        if not path.exists():
            return []
        fix = f"move {path.name} aside (the live runs in {LIVE_FILE} are kept; the history starts again)"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise LiveFileProblem(path, f"cannot be read ({exc})", fix) from None
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if (
                not isinstance(entry, dict)
                or entry.get("kind") not in KINDS
                or not isinstance(entry.get("run_id"), str)
            ):
                raise LiveFileProblem(path, f"line {number} is not a history entry", fix)
            out.append(entry)
        return out

    # -- changing --------------------------------------------------------------------------------------------
    def deploy(self, run, note: str | None = None, kind: str | None = None, action: str = "deploy") -> dict:
        """Make ``run`` (a checked :class:`engine.runs.Run`) the live run of its input kind; the history entry
        is returned. ``kind``, when given, must be the run's own input kind."""
        run_kind = run.settings.input_kind
        if kind is not None and kind != run_kind:
            raise ValueError(
                f"run {run.id} scores {run_kind}, not {kind}. Fix: deploy a {kind} run (`python -m engine runs`)."
            )
        with locked(self.live_path):
            return self._change(run_kind, run.id, note, action)

    def _change(self, kind: str, run_id: str, note: str | None, action: str) -> dict:
        """Under the lock: append the change to the history, then write ``live.json``."""
        state, history = self.state(), self.history()  # both refused when damaged, before anything is written
        current = state["live"].get(kind)
        version = state["version"] + 1
        entry = {
            "version": version,
            "time": _now(),
            "action": action,
            "kind": kind,
            "run_id": run_id,
            "previous": current["run_id"] if current else None,
            "by": _who(),
            "note": " ".join(str(note or "").split())[:500] or None,
        }
        lines = [json.dumps(e, sort_keys=True) for e in [*history, entry]]
        write_text(self.history_path, "\n".join(lines) + "\n")
        live = {**state["live"], kind: {k: entry[k] for k in ("run_id", "version", "time", "by", "note")}}
        write_json(self.live_path, {"format": FORMAT, "version": version, "live": live})
        return entry

    def rollback_target(self, kind: str, history: list[dict] | None = None) -> str:
        """The run that was live before the current one of ``kind``: deploys stack up, each rollback takes one off."""
        stack: list[str] = []
        for e in self.history() if history is None else history:
            if e.get("kind") != kind:
                continue
            if e.get("action") == "rollback":
                if stack:
                    stack.pop()
            else:
                stack.append(e["run_id"])
        if len(stack) < 2:
            raise ValueError(
                f"no earlier live {kind} run to roll back to (the history has "
                f"{'no' if not stack else 'only one'} {kind} deploy). Fix: deploy a run instead "
                "(`python -m engine deploy RUN_ID`)."
            )
        return stack[-2]

    def rollback(self, store, kind: str, note: str | None = None, check=None) -> dict:
        """Make the run live before the current one of ``kind`` live again (it must still load: ``check(run)``)."""
        with locked(self.live_path):
            target = self.rollback_target(kind)
            run = store.get(target)
            if check is not None:
                check(run)
            return self._change(kind, run.id, note, "rollback")

    def live_run(self, store, kind: str):
        """``(run, entry)`` of the live run of ``kind``, or None when none is set; :class:`LiveRunUnusable` when it
        is set but no longer usable (deleted, damaged): never another run instead."""
        entry = self.live(kind)
        if entry is None:
            return None
        try:
            run = store.get(entry["run_id"])
        except KeyError:
            raise LiveRunUnusable(kind, entry["run_id"], f"it is no longer in {store.root} (deleted?)") from None
        except BrokenRun as exc:
            raise LiveRunUnusable(kind, entry["run_id"], exc.problem) from None
        return run, entry


def deployable(store, run_id: str, load: bool = True):
    """The run ``run_id`` when it can be made live: one of the store's own ids (KeyError otherwise), undamaged and
    complete, its model loading (``load``) (:class:`engine.runs.BrokenRun` otherwise)."""
    run = store.get(str(run_id).strip())
    if not run.complete:
        raise BrokenRun(run.id, "it is not complete (still training, or its training failed)")
    if load:
        run.load_approach()
    return run
