"""The loop's commands beside ``outcomes``: ``demo`` (and ``demo --weekly FOLDER``, the weekly demo's files,
:mod:`engine.data.weekly_demo`) and ``retrain --live`` (the live run trained again with the outcomes that came back,
as a job: :mod:`engine.retrain`)."""

from __future__ import annotations

import sys

from engine.cli_paths import readable_data
from engine.jobs import JobRunner
from engine.words import plural


def cmd_retrain(args) -> int:
    """``retrain --live [--data FILE] [--no-wait]``: a new version of the live run's dataset with the outcomes, and a
    training job of the live run's configuration on it; waits for it and prints ``RUN_ID=`` unless ``--no-wait``."""
    from engine.retrain import retrain_live  # heavy: loads pandas

    if not args.live:
        raise ValueError("retrain trains the live run again: say so with --live (`python -m engine live` shows it)")
    data = readable_data(args.data, "the file the live run was trained on") if args.data else None
    runner = JobRunner()
    done = retrain_live(args.kind, family=args.family, runner=runner, data=data)
    print(
        f"dataset {done['dataset_name']} ({done['dataset'][:12]}): {plural(done['rows_added'], 'lead')} with their "
        f"outcome added from {plural(done['lists'], 'scored list')}; earlier versions are kept. Job {done['job_id']} "
        f"trains the configuration of live run {done['run_id']} (family {done['family']!r}) on it."
    )
    if args.no_wait:
        print(
            "queued: the dashboard's job runner starts it (Train page), or run `python -m engine retrain` without "
            "--no-wait"
        )
        return 0
    job = runner.wait(done["job_id"], timeout=args.timeout)
    if job.state != "succeeded" or not job.run_id:
        print(f"error: job {job.id} {job.state}: {job.error or runner.log_tail(job.id, 5)}", file=sys.stderr)
        return 1
    print(f"RUN_ID={job.run_id}  (not live: compare it on the Monitoring page, then `python -m engine deploy`)")
    return 0


def add_commands(sub, command, cmd_demo) -> None:
    """Register ``demo`` (``cmd_demo`` trains the demo; ``--weekly`` writes the weekly demo's files) and
    ``retrain``."""

    def demo(args) -> int:
        if args.text is not None:  # the demo leads with call notes and calls (engine.data.demo_lead_text)
            from engine.data.demo_lead_text import write_text_demo  # heavy: loads pandas

            files = write_text_demo(args.text)
            print(f"demo leads with text written to {args.text} ({len(files)} files; synthetic): read README.txt there")
            return 0
        if args.weekly is None:
            return cmd_demo(args)
        from engine.data.weekly_demo import write_weekly_demo  # heavy: loads pandas

        files = write_weekly_demo(args.weekly)
        print(f"weekly demo written to {args.weekly} ({len(files)} files; synthetic leads): read README.txt there")
        return 0

    p = command(sub, "demo", demo, help="train the stack on the demo leads and print its board")
    p.add_argument(
        "--weekly",
        metavar="FOLDER",
        help="instead, write the weekly demo (drifting weekly cohorts: files to train on, to score each week, and "
        "their outcomes) into FOLDER, a new or empty folder",
    )
    p.add_argument(
        "--text",
        metavar="FOLDER",
        help="instead, write the demo leads with call notes, their calls and the two joined into FOLDER (new or empty)",
    )
    p = command(
        sub,
        "retrain",
        cmd_retrain,
        help="train the live run again with the outcomes that came back",
        description="Add the leads whose outcomes came back (matched by id to the scored lists) to the live run's "
        "dataset as a new version (earlier versions are kept), and train the live run's configuration on it as a "
        "job. The new run is not made live: compare it first (`outcomes --top N`, the Monitoring page).",
    )
    p.add_argument("--live", action="store_true", help="retrain the live run (the one thing retrain does)")
    p.add_argument("--kind", default="leads", help="the live run's input kind (leads)")
    p.add_argument("--family", help="the dataset family whose live run is retrained (needed when several are live)")
    p.add_argument("--data", help="the file the live run was trained on, when it is not a stored dataset")
    p.add_argument("--no-wait", dest="no_wait", action="store_true", help="queue the job and return")
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the job (default 3600)")
