"""The live-model commands (``deploy``, ``live``) and the choice of the run ``score`` uses (:mod:`engine.live`)."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.cli_paths import input_kind_of
from engine.cli_values import first_line
from engine.live import KINDS, LiveRunUnusable, LiveStore, deployable
from engine.runs import BrokenRun, RunStore
from engine.words import plural


def _first_line(text: str) -> str:
    return first_line(text)


def run_and_model(store, run_id: str | None, data: Path, notes: list[str] | None = None, family: str | None = None):
    """The run ``score`` uses and its loaded model. ``None`` (no ``--run``): the live run of the file's kind (and of
    ``family``, needed when several families are live: :class:`engine.live.FamilyChoice`) when one is set, else the
    newest that loads (said on stderr); ``live``: the live run, an error when none is set;
    ``latest``: the newest run of the file's kind whose model loads (damaged ones are skipped and named on stderr);
    anything else must be a stored run id. A live run that no longer loads is an error naming it. Which run was
    taken and why is added to ``notes`` (said once scoring went well, so that an error stays one line)."""
    notes = [] if notes is None else notes
    kind = input_kind_of(data)
    if family is not None and run_id not in (None, "live"):
        raise ValueError("--family picks among the live runs: use it with --run live (or no --run), not a run id")
    if run_id in (None, "live"):
        live = LiveStore.beside(store)
        found = live.live_run(store, kind, family)
        if found is not None:
            run, entry = found
            notes.append(
                f"scored with the live {kind} run {run.id} of family {entry['family']!r} (version {entry['version']})"
            )
            return run, _load_live(run, kind, entry["family"])
        if run_id == "live":
            raise ValueError(
                f"no live {kind} run is set. Fix: `python -m engine deploy RUN_ID` (`python -m engine runs` lists "
                "them), or score with --run latest."
            )
        run_id = "newest"
    if run_id not in ("latest", "newest"):
        run = store.get(run_id)  # KeyError for anything but one of the store's own run ids: nothing is read
        return run, run.load_approach()
    found = store.latest_loadable(input_kind=kind)
    for skipped, problem in sorted(store.problems.items(), reverse=True):
        print(f"skipped run {skipped}: {_first_line(problem)}", file=sys.stderr)
    if found is None:
        raise ValueError(
            f"{data.name} holds {kind}, and no stored {kind} run loads. Fix: train one with "
            f"`python -m engine train {kind}` first, or pass --run RUN_ID (`python -m engine runs`)."
        )
    if run_id == "newest":  # the default, while no run is deployed: today's behaviour, said
        notes.append(f"no live {kind} run is set: scored with the newest {kind} run that loads, {found[0].id}")
    return found


def _load_live(run, kind: str, family: str | None = None):
    try:
        return run.load_approach()
    except BrokenRun as exc:
        raise LiveRunUnusable(kind, run.id, _first_line(exc.problem), family) from None


def _describe(store, run_id: str) -> str:
    try:
        settings = store.get(run_id).settings
    except Exception:  # noqa: BLE001 - deleted or damaged since: the id alone
        return f"{run_id} (no longer usable)"
    return f"{run_id} ({settings.approach} on {settings.dataset})"


def cmd_deploy(args) -> int:
    """``deploy RUN_ID [--kind K] [--note TEXT]`` or ``deploy --rollback [--kind K] [--family F]``."""
    store = RunStore()
    live = LiveStore.beside(store)
    if args.kind is not None and args.kind not in KINDS:
        raise ValueError(f"--kind takes {' or '.join(KINDS)}, not {args.kind!r}")
    if args.rollback:
        if args.run_id:
            raise ValueError("deploy --rollback takes no RUN_ID: it goes back to the run live before the current one")
        kind = args.kind
        if kind is None:
            kinds = sorted(k for k, families in live.state()["live"].items() if families)
            if len(kinds) != 1:
                raise ValueError(
                    "say which live run to roll back: --kind leads or --kind transcripts"
                    if kinds
                    else "no live run is set, so there is nothing to roll back. Fix: `python -m engine deploy RUN_ID`."
                )
            kind = kinds[0]
        if args.family is not None:
            live.pick(kind, args.family)  # checked, and named among the live families
        entry = live.rollback(
            store, kind, note=args.note, check=lambda run: deployable(store, run.id), family=args.family
        )
    else:
        if not args.run_id:
            raise ValueError("deploy needs a RUN_ID (`python -m engine runs` lists them), or --rollback")
        entry = live.deploy(deployable(store, args.run_id), note=args.note, kind=args.kind, family=args.family)
    before = f" instead of {entry['previous']}" if entry["previous"] else ""
    print(
        f"live {entry['kind']} run of family {entry['family']!r} (version {entry['version']}): "
        f"{_describe(store, entry['run_id'])}{before}. The API, `score` and the Score page use it from now on."
    )
    return 0


def cmd_live(args) -> int:
    """The live run of each kind and family, then the history of changes (newest last)."""
    store = RunStore()
    live = LiveStore.beside(store)
    state = live.state()
    for kind in KINDS:
        families = state["live"].get(kind, {})
        if not families:
            print(f"{kind}: no live run (score and the API use the newest {kind} run that loads)")
        for family, entry in sorted(families.items()):
            print(
                f"{kind}, family {family!r}: {_describe(store, entry['run_id'])}, version {entry['version']}, "
                f"since {entry['time']}"
                + (f" by {entry['by']}" if entry.get("by") else "")
                + (f": {entry['note']}" if entry.get("note") else "")
            )
    history = live.history()
    print(f"history ({plural(len(history), 'change')}, newest last):" if history else "history: empty")
    for e in history[-args.last :] if args.last else history:
        family = f" [{e['family']}]" if e.get("family") else ""
        print(
            f"  v{e.get('version')} {e.get('time')} {e.get('action')} {e['kind']}{family} {e['run_id']}"
            f" (was {e.get('previous') or '-'})"
            + (f" by {e['by']}" if e.get("by") else "")
            + (f": {e['note']}" if e.get("note") else "")
        )
    return 0


def add_commands(sub, command) -> None:
    """Register ``deploy`` and ``live`` on the subparsers ``sub`` with cli.py's helper ``command``."""
    p = command(
        sub,
        "deploy",
        cmd_deploy,
        help="make a run the live one (or roll back)",
        description="Make RUN_ID the live run of its input kind and dataset family (the name of the dataset it was "
        "trained on; retrained versions keep it): the API, `score` and the Score page use it until the next deploy "
        "of that family; training never changes it. --rollback makes the run live before the current one of a kind "
        "and family live again. Every change is kept in <workspace>/live_history.jsonl.",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="run id (see `python -m engine runs`)")
    p.add_argument("--rollback", action="store_true", help="go back to the run live before the current one")
    p.add_argument("--kind", help="leads | transcripts: the kind to roll back, or the kind RUN_ID must score")
    p.add_argument(
        "--family",
        help="with --rollback: the dataset family to roll back (needed when several are live); with RUN_ID: the live "
        "family whose run it replaces (default: the family of its own dataset), e.g. a challenger trained on recent "
        "weeks replacing the champion of the first weeks",
    )
    p.add_argument("--note", help="why (kept in the history)")
    p = command(sub, "live", cmd_live, help="show the live runs and their history")
    p.add_argument("--last", type=int, default=0, help="show only the last N changes")
