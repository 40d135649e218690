"""Command line: the stored runs listed (``runs``), and a run or dataset deleted after a confirmation
(``delete``)."""

from __future__ import annotations

import sys

from engine.cli_values import first_line, metric_text
from engine.cli_values import short_text as _short
from engine.datasets import DatasetStore
from engine.runs import RUN_ID_PATTERN, BrokenRun, RunStore


def cmd_runs(args) -> int:
    """One aligned line per usable run, newest first; each run that cannot be used is named on stderr as
    ``skipped <id>: <reason>`` (the reason names the damaged file)."""
    from engine.data.uses import use_name

    store = RunStore()
    rows = []
    for run in store.list_runs():
        m = run.metrics.get("metrics", {})
        use = use_name(run.settings.use, run.settings.kinds)  # runs of one table that differ by use, told apart
        rows.append(
            [
                run.id,
                run.settings.input_kind,
                run.settings.approach,
                _short(run.settings.dataset) + (f" · {use}" if use else ""),
                f"roc_auc {metric_text(m, 'roc_auc')}",
            ]
        )
    skipped = dict(store.problems)
    for path in store.root.iterdir():
        if RUN_ID_PATTERN.fullmatch(path.name) and path.is_dir() and not (path / "spec.json").exists():
            skipped[path.name] = "spec.json is missing"
    if rows:
        header = ["run", "kind", "approach", "dataset", "metric"]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    else:
        print(f"No usable runs in {store.root} yet: train one with `python -m engine train leads`.")
    for run_id, problem in sorted(skipped.items(), reverse=True):
        print(f"skipped {run_id}: {first_line(problem)}", file=sys.stderr)
    return 0


def _confirm(question: str, yes: bool, done: str = "deleted", verb: str = "delete") -> bool:
    """True when the user agreed: ``--yes``, or "y"/"yes" typed at a terminal. Without a terminal on stdin
    (a script, a pipe) nothing is asked and nothing is done: such callers must pass --yes."""
    if yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        raise ValueError(
            f"{question.rstrip('?')}: not {done}, because there is no terminal to confirm on "
            f"(stdin is not a terminal). Run it again with --yes to {verb} without asking."
        )
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def cmd_delete(args) -> int:
    """Delete one stored run or dataset, after a confirmation (the only way anything stored goes away)."""
    if args.what == "run":
        store = RunStore()
        run_id = args.id.strip()
        try:
            run = store.get(run_id)
            what = f"run {run.id} ({run.settings.approach} on {run.settings.dataset})"
        except KeyError:
            store.folder(run_id)  # "No run" unless a folder of the store's own is there: one listed as broken
            what = f"run {run_id} (damaged: spec.json is missing)"
        except BrokenRun as exc:  # a damaged run can be deleted too
            what = f"run {run_id} (damaged: {first_line(exc.problem)})"
        except Exception:  # noqa: BLE001 - whatever else is wrong with it
            what = f"run {run_id} (damaged)"
        if not _confirm(f"Delete {what}?", args.yes):
            print("Nothing deleted.")
            return 1
        store.delete(run_id)
        print(f"Deleted {what}.")
        return 0
    store = DatasetStore()
    try:
        ds = store.get(args.id)
        what = f"dataset {ds.name!r} ({ds.filename}, {ds.sha[:12]})"
    except KeyError:
        raise
    except ValueError:  # damaged: still deletable
        what = f"dataset {args.id} (damaged)"
    if not _confirm(f"Delete {what}?", args.yes):
        print("Nothing deleted.")
        return 1
    store.delete(args.id)
    print(f"Deleted {what}. Runs trained on it are kept.")
    return 0


def cmd_trust(args) -> int:
    """Sign the model pickles of one run stored before models were signed (the user vouches for its files)."""
    from engine.signing import SUFFIX, sign_file
    from engine.storage import own_file

    run = RunStore().get(args.id.strip())
    run.check_model_folder()  # a link or special file in it: BrokenRun naming it, nothing signed
    folder = run.model_dir
    pickles = sorted(p for p in folder.iterdir() if p.suffix == ".joblib")
    unsigned = [p for p in pickles if not p.with_name(p.name + SUFFIX).exists()]
    if not unsigned:
        print(f"Run {run.id} has no unsigned model files: nothing to do.")
        return 0
    names = ", ".join(p.name for p in unsigned)
    question = (
        f"Trust run {run.id} ({run.settings.approach} on {run.settings.dataset}): sign {names} as the engine's own? "
        "Only do this for a run you know this engine trained: a signed file is loaded, and a pickle runs code"
    )
    if not _confirm(question + "?", args.yes, done="signed", verb="sign"):
        print("Nothing signed.")
        return 1
    for p in unsigned:
        sign_file(own_file(folder, p.name))
    print(f"Signed {len(unsigned)} model file(s) of run {run.id}; it loads again.")
    return 0


def add_commands(sub, command) -> None:
    """``runs`` and ``delete``, made with the command line's ``command(sub, name, func, help, description)``."""
    command(
        sub,
        "runs",
        cmd_runs,
        help="list stored runs",
        description="List the stored runs, newest first. Runs that cannot be used (a damaged or "
        "missing spec.json or metrics.json) are left out and named on stderr as "
        "'skipped <run id>: <reason>'.",
    )

    p = command(
        sub,
        "delete",
        cmd_delete,
        help="delete a stored run or dataset (asks first)",
        description="Delete one stored run (`delete run RUN_ID`) or dataset (`delete dataset SHA`, "
        "the sha256 of its file or a unique prefix of at least 6 hex digits). It asks "
        "'Delete ...? [y/N]' on the terminal; without a terminal (scripts, pipes) it "
        "deletes nothing unless --yes is given. Deleting a dataset keeps the runs "
        "trained on it.",
    )
    p.add_argument("what", choices=["run", "dataset"], help="what to delete")
    p.add_argument("id", metavar="ID", help="run id (see `python -m engine runs`) or dataset sha256")
    p.add_argument("--yes", "-y", action="store_true", help="delete without asking")

    p = command(
        sub,
        "trust",
        cmd_trust,
        help="sign the model files of a run stored before models were signed (asks first)",
        description="Models are signed when they are stored, and unsigned pickles are never loaded (a planted one "
        "would run code). A run stored before signing is refused until you vouch for it: `trust RUN_ID` signs its "
        "model files with this machine's key. It asks first; without a terminal it signs nothing unless --yes.",
    )
    p.add_argument("id", metavar="RUN_ID", help="run id (see `python -m engine runs`)")
    p.add_argument("--yes", "-y", action="store_true", help="sign without asking")
