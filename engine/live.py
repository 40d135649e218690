"""The live model: the run that the API, ``score`` and the Score page use, chosen on purpose.

One live run per **input kind** (``leads``, ``transcripts``) **and dataset family**. A request to the API or
``score`` knows its input kind; the family says which of several live models of that kind it is meant for (two
CRMs, two products). A run's family is its dataset's name (``run.settings.dataset``, see :func:`family_of`): the
versions that ``retrain`` adds to a dataset are named ``<name> vN`` and stay in the family of ``<name>``; a run
trained on a dataset without a name is in the family :data:`UNNAMED`. Looking a live run up:

* with a family: that family's live run, or none;
* without: the only live family of the kind, none when no run of the kind is live, and :class:`FamilyChoice` (a
  ValueError listing the families and the fix: ``--family NAME``, ``"family"`` in the API body, the Score page's
  choice) when several are live. Nothing ever falls back from one family to another.

Two files beside the runs folder (``<workspace>/``), both written with :func:`engine.storage.atomic_write` under one
:func:`engine.storage.locked` lock, so two tabs or processes deploying at once are applied one after the other (the
later one wins, both are in the history):

* ``live.json`` — ``{"format": 2, "version": N, "live": {KIND: {FAMILY: {"run_id", "family", "version", "time",
  "by", "note"}}}}``: ``version`` counts every change (deploy or rollback of any kind and family); each entry keeps
  the version it was set at, the one the API returns with each prediction.
* ``live_history.jsonl`` — one JSON object a line, oldest first, one per change: ``version``, ``time`` (UTC, ISO
  8601), ``action`` (``deploy`` | ``rollback``), ``kind``, ``family``, ``run_id``, ``previous`` (the run live before
  in that kind and family, or null), ``by`` (``getpass.getuser()`` where known), ``note``. Never edited, only
  appended to (rewritten whole, atomically).

**Format 1** (before families: ``{"format": 1, "live": {KIND: entry}}``, history lines without ``family``) is still
read: each entry and line is taken as the family of its run, read from the run store; a run that is gone or damaged
is in the family :data:`UNKNOWN_FAMILY` (its live run then is an error naming it, as any live run that no longer
loads). The next change writes format 2 (the history keeps its old lines as they were).

Training never touches these files. A damaged file is refused with :class:`LiveFileProblem`, naming the file and the
fix; nothing falls back to another run silently.
"""

from __future__ import annotations

import getpass
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runs import BrokenRun
from engine.storage import CorruptFile, locked, read_json, write_json, write_text

LIVE_FILE = "live.json"
HISTORY_FILE = "live_history.jsonl"
FORMAT = 2
KINDS = ("leads", "transcripts")
#: the family of a run trained on a dataset without a name
UNNAMED = "(unnamed dataset)"
#: the family of a format-1 entry whose run can no longer be read
UNKNOWN_FAMILY = "(unknown family)"
#: the longest family name a flag, a form or a request may give (a dataset name is a line, not a document)
MAX_FAMILY_CHARS = 300
_VERSION_SUFFIX = re.compile(r"^(?P<name>.+\S) v(?P<n>[0-9]+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
FAMILY_FIX = '--family NAME on the command line, "family": NAME in the API body, or the family choice on the Score page'


def family_of(settings) -> str:
    """The dataset family of a run's settings (:class:`engine.runspec.RunSpec`): its dataset's name, without the
    `` vN`` (N >= 2) that ``retrain`` adds to the versions it makes; :data:`UNNAMED` when it has none."""
    name = " ".join(str(getattr(settings, "dataset", None) or "").split())
    if not name:
        return UNNAMED
    found = _VERSION_SUFFIX.match(name)
    return found["name"] if found and int(found["n"]) >= 2 else name


def check_family(value, where: str = "--family") -> str:
    """A family name given from outside (a flag, a form field, a request), trimmed; ValueError naming ``where``,
    the problem and the fix for anything that cannot be one (not text, empty, too long, control characters)."""
    fix = "name a dataset family as `python -m engine live` or GET /live lists it"
    if not isinstance(value, str):
        raise ValueError(f"{where} must be text (a dataset family's name), not {type(value).__name__}. Fix: {fix}.")
    text = value.strip()
    if not text:
        raise ValueError(f"{where} is empty. Fix: {fix}, or leave it out when one family is live.")
    if len(text) > MAX_FAMILY_CHARS:
        raise ValueError(
            f"{where} is {len(text):,} characters long; a family name is at most {MAX_FAMILY_CHARS}. Fix: {fix}."
        )
    if _CONTROL.search(text):
        raise ValueError(f"{where} holds control characters (a line break, a tab, a NUL...). Fix: {fix}.")
    return text


class LiveFileProblem(ValueError):
    """``live.json`` or ``live_history.jsonl`` cannot be read as this module wrote it; the message says the fix."""

    def __init__(self, path: Path, problem: str, fix: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{self.path} {problem}. Fix: {fix}")


class LiveRunUnusable(ValueError):
    """The live run of a kind and family no longer loads (deleted, damaged): an error naming it, never a fall-back."""

    def __init__(self, kind: str, run_id: str, problem: str, family: str | None = None):
        self.kind, self.run_id, self.problem, self.family = kind, run_id, problem, family
        of = f" (the live run of the dataset family {family!r})" if family else ""
        back = f" --family {_quoted(family)}" if family else ""
        super().__init__(
            f"the live {kind} run {run_id} cannot be used: {problem}{of}. Fix: deploy another run "
            f"(`python -m engine deploy RUN_ID`) or roll back (`python -m engine deploy --rollback --kind {kind}"
            f"{back}`)"
        )


class FamilyChoice(ValueError):
    """Several dataset families of a kind have a live run and none was named: the message lists them and the fix."""

    def __init__(self, kind: str, families: list[str]):
        self.kind, self.families = kind, list(families)
        super().__init__(
            f"live {kind} runs of {len(families)} dataset families are set ({', '.join(map(repr, families))}): say "
            f"which. Fix: {FAMILY_FIX}."
        )


class NoLiveRun(ValueError):
    """A family was named that has no live run of the kind asked for; the message lists the ones that have."""

    def __init__(self, kind: str, family: str, families: list[str], other_kind: str | None = None):
        self.kind, self.family, self.families = kind, family, list(families)
        shown = family if len(family) <= 80 else family[:77] + "..."
        said = f"no live {kind} run of the dataset family {shown!r}"
        if other_kind:
            said += f" (that family has a live {other_kind} run: it scores {other_kind}, not {kind})"
        listed = f"live {kind} families: {', '.join(map(repr, families))}" if families else f"no {kind} run is live"
        super().__init__(
            f"{said}; {listed}. Fix: name one of those, or make a run of that family live "
            "(`python -m engine deploy RUN_ID`, Make live on the Metric board)."
        )


def _quoted(text: str) -> str:
    return text if re.fullmatch(r"[\w.@/-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _who() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment (no passwd entry, no LOGNAME)
        return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


_ENTRY_KEYS = ("run_id", "family", "version", "time", "by", "note")


@dataclass
class LiveStore:
    """The live runs and their history in the folder ``root`` (the workspace: the runs folder's parent).
    ``runs_root``: the run store a format-1 file's runs are looked up in (default ``root / "runs"``)."""

    root: Path
    runs_root: Path | None = None
    _families: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self.root = Path(self.root)
        self.runs_root = Path(self.runs_root) if self.runs_root is not None else self.root / "runs"

    @classmethod
    def beside(cls, store) -> LiveStore:
        """The live store of a :class:`engine.runs.RunStore`: in the folder that holds its ``runs`` folder."""
        return cls(Path(store.root).parent, Path(store.root))

    @property
    def live_path(self) -> Path:
        return self.root / LIVE_FILE

    @property
    def history_path(self) -> Path:
        return self.root / HISTORY_FILE

    def _family_of_run(self, run_id: str) -> str:
        """The family of a stored run (for format-1 entries); :data:`UNKNOWN_FAMILY` when it cannot be read."""
        if run_id not in self._families:
            from engine.runs import RunStore

            try:
                self._families[run_id] = family_of(RunStore(self.runs_root).get(run_id).settings)
            except Exception:  # noqa: BLE001 - deleted, damaged, or an id of another store: the family is unknown
                self._families[run_id] = UNKNOWN_FAMILY
        return self._families[run_id]

    # -- reading ---------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """``{"format": 2, "version": N, "live": {kind: {family: entry}}}``; empty when nothing was ever deployed
        (a format-1 file is read as format 2). LiveFileProblem for a damaged ``live.json``."""
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
        if data.get("format") not in (1, FORMAT) or not isinstance(live, dict) or type(version) is not int:
            raise LiveFileProblem(path, "is not a live-run file this version wrote", fix)
        if version < 0 or any(kind not in KINDS for kind in live):
            raise LiveFileProblem(path, "is not a live-run file this version wrote", fix)

        def entry_ok(entry) -> bool:
            return (
                isinstance(entry, dict) and isinstance(entry.get("run_id"), str) and type(entry.get("version")) is int
            )

        out: dict[str, dict[str, dict]] = {}
        for kind, value in live.items():
            if data["format"] == 1:  # one entry per kind: the family of its run
                if not entry_ok(value):
                    raise LiveFileProblem(path, f"holds a damaged entry for {str(kind)[:40]!r}", fix)
                family = self._family_of_run(value["run_id"])
                out[kind] = {family: {**value, "family": family}}
                continue
            if not isinstance(value, dict) or not all(
                isinstance(f, str) and entry_ok(e) and e.get("family") == f for f, e in value.items()
            ):
                raise LiveFileProblem(path, f"holds a damaged entry for {str(kind)[:40]!r}", fix)
            out[kind] = value
        return {"format": FORMAT, "version": version, "live": out}

    def families(self, kind: str) -> list[str]:
        """The dataset families that have a live run of ``kind``, sorted."""
        return sorted(self.state()["live"].get(kind, {}))

    def live(self, kind: str, family: str | None = None) -> dict | None:
        """The live entry (``run_id``, ``family``, ``version``, ``time``, ``by``, ``note``) of ``kind`` and
        ``family``, or None. Without ``family``: the only live family's, None when none is live, and
        :class:`FamilyChoice` when several are."""
        by_family = self.state()["live"].get(kind, {})
        if family is not None:
            return by_family.get(family)
        if len(by_family) > 1:
            raise FamilyChoice(kind, sorted(by_family))
        return next(iter(by_family.values()), None)

    def pick(self, kind: str, family: str | None = None, where: str = "--family") -> dict | None:
        """As :meth:`live`, for a family given from outside: checked (:func:`check_family`, naming ``where``), and
        :class:`NoLiveRun` (listing the live families) when it names none of them."""
        if family is None:
            return self.live(kind)
        family = check_family(family, where)
        live = self.state()["live"]
        entry = live.get(kind, {}).get(family)
        if entry is None:
            other = next((k for k in KINDS if k != kind and family in live.get(k, {})), None)
            raise NoLiveRun(kind, family, sorted(live.get(kind, {})), other)
        return entry

    def entries(self) -> list[dict]:
        """Every live entry, each with its ``kind``, by kind then family."""
        state = self.state()["live"]
        return [{**state[k][f], "kind": k} for k in KINDS for f in sorted(state.get(k, {}))]

    def version_of(self, run_id: str) -> tuple[int, str] | None:
        """``(live version, family)`` under which ``run_id`` is live, or None when it is not a live run."""
        found = next((e for e in self.entries() if e["run_id"] == run_id), None)
        return (int(found["version"]), found["family"]) if found else None

    def history(self) -> list[dict]:
        """Every change, oldest first, each with its ``family`` (a format-1 line: its run's). LiveFileProblem for a
        damaged history file (a line that is not an object)."""
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
                or not isinstance(entry.get("family", ""), str)
            ):
                raise LiveFileProblem(path, f"line {number} is not a history entry", fix)
            out.append(entry)
        return out

    def _with_family(self, history: list[dict]) -> list[dict]:
        return [e if "family" in e else {**e, "family": self._family_of_run(e["run_id"])} for e in history]

    # -- changing --------------------------------------------------------------------------------------------
    def deploy(
        self, run, note: str | None = None, kind: str | None = None, action: str = "deploy", family: str | None = None
    ) -> dict:
        """Make ``run`` (a checked :class:`engine.runs.Run`) the live run of its input kind and dataset family
        (:func:`family_of`); the history entry is returned. ``kind``, when given, must be the run's own. ``family``:
        another family whose live run it replaces (a challenger trained on other rows than the champion it beat);
        it must have a live run of the kind already, so that no family is made up by a typing slip."""
        run_kind = run.settings.input_kind
        if kind is not None and kind != run_kind:
            raise ValueError(
                f"run {run.id} scores {run_kind}, not {kind}. Fix: deploy a {kind} run (`python -m engine runs`)."
            )
        own = family_of(run.settings)
        with locked(self.live_path):
            if family is not None and check_family(family) != own:
                self.pick(run_kind, family)  # NoLiveRun, listing the live families, for a family with none
                own = check_family(family)
            return self._change(run_kind, own, run.id, note, action)

    def _change(self, kind: str, family: str, run_id: str, note: str | None, action: str) -> dict:
        """Under the lock: append the change to the history, then write ``live.json`` (format 2)."""
        state, history = self.state(), self.history()  # both refused when damaged, before anything is written
        current = state["live"].get(kind, {}).get(family)
        version = state["version"] + 1
        entry = {
            "version": version,
            "time": _now(),
            "action": action,
            "kind": kind,
            "family": family,
            "run_id": run_id,
            "previous": current["run_id"] if current else None,
            "by": _who(),
            "note": " ".join(str(note or "").split())[:500] or None,
        }
        lines = [json.dumps(e, sort_keys=True) for e in [*history, entry]]
        write_text(self.history_path, "\n".join(lines) + "\n")
        live = {k: dict(v) for k, v in state["live"].items()}
        live.setdefault(kind, {})[family] = {k: entry[k] for k in _ENTRY_KEYS}
        write_json(self.live_path, {"format": FORMAT, "version": version, "live": live})
        return entry

    def rollback_target(self, kind: str, family: str, history: list[dict] | None = None) -> str:
        """The run that was live before the current one of ``kind`` and ``family``: deploys stack up, each rollback
        takes one off."""
        stack: list[str] = []
        for e in self._with_family(self.history() if history is None else history):
            if e.get("kind") != kind or e["family"] != family:
                continue
            if e.get("action") == "rollback":
                if stack:
                    stack.pop()
            else:
                stack.append(e["run_id"])
        if len(stack) < 2:
            raise ValueError(
                f"no earlier live {kind} run of family {family!r} to roll back to (the history has "
                f"{'no' if not stack else 'only one'} such deploy). Fix: deploy a run instead "
                "(`python -m engine deploy RUN_ID`)."
            )
        return stack[-2]

    def rollback(self, store, kind: str, note: str | None = None, check=None, family: str | None = None) -> dict:
        """Make the run live before the current one of ``kind`` and ``family`` live again (it must still load:
        ``check(run)``). Without ``family``: the only live family of the kind (:class:`FamilyChoice` when several
        are live)."""
        with locked(self.live_path):
            if family is None:
                entry = self.live(kind)
                if entry is None:
                    raise ValueError(
                        f"no live {kind} run is set, so there is nothing to roll back. "
                        "Fix: `python -m engine deploy RUN_ID`."
                    )
                family = entry["family"]
            else:
                family = check_family(family)
            target = self.rollback_target(kind, family)
            run = store.get(target)
            if check is not None:
                check(run)
            return self._change(kind, family, run.id, note, "rollback")

    def live_run(self, store, kind: str, family: str | None = None, where: str = "--family"):
        """``(run, entry)`` of the live run of ``kind`` (and ``family``: :meth:`pick`), or None when none is set;
        :class:`LiveRunUnusable` when it is set but no longer usable (deleted, damaged): never another run
        instead."""
        entry = self.pick(kind, family, where)
        if entry is None:
            return None
        try:
            run = store.get(entry["run_id"])
        except KeyError:
            raise LiveRunUnusable(
                kind, entry["run_id"], f"it is no longer in {store.root} (deleted?)", entry["family"]
            ) from None
        except BrokenRun as exc:
            raise LiveRunUnusable(kind, entry["run_id"], exc.problem, entry["family"]) from None
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
