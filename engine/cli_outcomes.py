"""The ``outcomes`` command (outcomes back from the CRM, :mod:`engine.outcomes`) and the storing of the lists ``score``
writes (:class:`engine.scored_lists.ScoredStore`, what outcomes are matched to)."""

from __future__ import annotations

import sys

from engine.cli_paths import readable_data, refuse_clashes, writable_out
from engine.storage import write_json


def shadow_runs(store, run, run_ids: list[str], no_store: bool) -> list:
    """``score --shadow RUN_ID``: the challenger runs to score the file with beside ``run``, checked before anything is
    scored: one-line errors for a run id not in the store, a run of another input kind, the run itself, or
    ``--no-store`` (the shadow scores are only kept with the stored list)."""
    if no_store:
        raise ValueError("--shadow keeps the challengers' scores with the stored list: it cannot go with --no-store")
    out = []
    for run_id in run_ids:
        other = store.get(str(run_id).strip())  # KeyError naming it for an id that is not the store's
        if other.id == run.id:
            raise ValueError(f"--shadow {other.id} is the run scoring the file. Fix: name another run as the shadow.")
        if other.settings.input_kind != run.settings.input_kind:
            raise ValueError(
                f"--shadow {other.id} scores {other.settings.input_kind}, and run {run.id} scores "
                f"{run.settings.input_kind}: a shadow run must score the same file. Fix: name a "
                f"{run.settings.input_kind} run (`python -m engine runs`)."
            )
        if other.id not in [o.id for o in out]:
            out.append(other)
    return out


def score_shadows(runs: list, data) -> dict:
    """The file scored by each shadow run (no reasons): ``{run id: Scored}``."""
    from engine.scoring import read_rows, score_frame  # heavy: loads pandas

    out = {}
    for other in runs:
        out[other.id] = score_frame(other, read_rows(other, data, filename=data.name), explain=0, source=data.name)
        print(f"note: also scored with the shadow run {other.id} (kept with the list)", file=sys.stderr)
    return out


def store_scored(scored, data, shift: dict | None, shadows: dict | None = None) -> str:
    """Keep a list ``score`` wrote in the scored-list store (its run, live version and shift verdict in its meta,
    the ``shadows``' scores beside it); said on stderr. Returns the list's sha256."""
    from engine.scored_lists import ScoredStore  # heavy: loads pandas

    extra = (
        {"shift": {"verdict": shift.get("verdict"), "adversarial_auc": shift.get("adversarial_auc")}} if shift else {}
    )
    meta = ScoredStore().add(scored, data.name, extra=extra, shadows=shadows)
    version = meta.get("live_version")
    print(
        f"list stored for outcomes ({meta['sha256'][:12]}; run {meta['run_id']}"
        + (f" of family {meta['family']!r}" if meta.get("family") else "")
        + (f", live version {version}" if version is not None else ", not the live run")
        + (f"; shadow runs {', '.join(meta['shadow_runs'])}" if meta.get("shadow_runs") else "")
        + "): `python -m engine outcomes --data won_lost.csv` matches outcomes to it (--no-store to skip)",
        file=sys.stderr,
    )
    return meta["sha256"]


def cmd_outcomes(args) -> int:
    """``outcomes --data FILE [--id COL] [--outcome COL] [--date COL] [--json REPORT]``: store the outcomes, match them
    to the stored lists, print the realized performance beside each run's promise and any alert. Exit 0 when stored
    (or already stored), 2 with one line for a file that cannot be used, 1 when an alert fired (with --fail-on-alert)."""
    from engine.challenger import ChallengerError, challenger_report, check_top_n  # heavy: loads pandas
    from engine.outcomes_report import upload_outcomes, upload_words  # heavy: loads pandas

    top_n = check_top_n(args.top)  # refused before anything is read or stored
    data = readable_data(args.data, "the file of lead ids and outcomes")
    out = writable_out(args.json, "--json")
    refuse_clashes(("--data", data, "the outcomes file"), ("--json", out, ""))
    report = upload_outcomes(data, data.name, args.id, args.outcome, args.date)
    for line in upload_words(report["upload"]):
        print(line)
    if report["matched"]:
        print(f"realized, all {report['matched']:,} matched leads:")
        for line in report["words"]:
            print(f"  {line}")
    for entry in report["lists"]:
        if entry["matched"]:
            shift = f"; shift check: {entry['shift_verdict']}" if entry.get("shift_verdict") else ""
            print(f"list {entry['source']} ({entry['week']}, run {entry['run_id']}{shift}):")
            for line in entry["words"]:
                print(f"  {line}")
    for alert in report["alerts"]:
        print(f"ALERT: {alert}", file=sys.stderr)
    for sha, why in report["skipped_lists"].items():
        print(f"skipped list {sha}: {why}", file=sys.stderr)
    problem = None
    try:
        report["challengers"] = challenger_report(top_n)
    except ChallengerError as exc:  # the outcomes are stored; the comparison is said to need another N
        problem = str(exc)
        report["challengers"] = {"top_n": top_n, "error": problem}
        print(f"error: champion vs challenger: {problem}", file=sys.stderr)
    else:
        print(f"champion vs challenger (top {top_n:,} of each list):")
        for entry in report["challengers"]["runs"]:
            for line in entry["words"]:
                print(f"  {line}")
        if not report["challengers"]["runs"]:
            for line in report["challengers"]["words"]:
                print(f"  {line}")
    if out:
        write_json(out, report)
        print(f"report written to {out}")
    if problem:
        return 2
    return 1 if (args.fail_on_alert and report["alerts"]) else 0


def add_commands(sub, command) -> None:
    """Register ``outcomes`` on the subparsers ``sub`` with cli.py's helper ``command``."""
    p = command(
        sub,
        "outcomes",
        cmd_outcomes,
        help="upload won/lost outcomes and see how the scored lists did",
        description="Read a file of lead ids and outcomes (won/lost, yes/no, 1/0; an optional close date), keep it "
        "(the same file twice changes nothing; nothing earlier is replaced), match it by id to the scored lists "
        "stored earlier, and report realized performance per list, week and run beside what each run promised on "
        "its test split, with alerts; then the live run against each run scored beside it (`score --shadow`) on the same "
        "leads. Exit status: 0 stored, 2 a file that cannot be used (nothing stored) or a --top larger than the "
        "lists (the outcomes are stored), 1 an alert fired (only with --fail-on-alert).",
    )
    p.add_argument("--data", required=True, help="outcomes file (CSV, Excel, Parquet): lead ids and outcomes")
    p.add_argument("--id", help="the lead id column (default: the id column of the scored lists, e.g. Prospect ID)")
    p.add_argument("--outcome", help="the outcome column (default: Converted, Outcome, Won, Status, ...)")
    p.add_argument("--date", help="the close date column (optional; default: Close Date or Date when present)")
    p.add_argument("--json", help="write the report as JSON here")
    p.add_argument(
        "--top",
        default="50",
        metavar="N",
        help="leads of each list the team can call: the challengers are compared on the conversions among their top "
        "N (default 50)",
    )
    p.add_argument("--fail-on-alert", dest="fail_on_alert", action="store_true", help="exit 1 when an alert fires")
