"""``python -m engine join``: a lead table joined with its calls (:mod:`engine.data.join`), written to a new file
and/or stored as a new dataset; neither input is changed and no existing file is replaced."""

from __future__ import annotations

import json

from engine.cli_paths import readable_data, refuse_clashes, writable_out


def cmd_join(args) -> int:
    from engine.data.join import join_leads_calls  # heavy: loads pandas
    from engine.storage import write_bytes, write_text

    if not args.out and not args.store:
        raise ValueError("join needs somewhere to put the result. Fix: --out FILE.csv, --store, or both.")
    leads = readable_data(args.leads, "the lead table (CSV, Excel or Parquet)")
    calls = readable_data(args.calls, "the transcripts file (JSON, JSON Lines or CSV)")
    out, report = writable_out(args.out), writable_out(args.json, "--json")
    refuse_clashes(
        ("--leads", leads, "your lead table"),
        ("--calls", calls, "your calls"),
        ("--out", out, "the joined table"),
        ("--json", report, ""),
    )
    if out is not None:
        if out.exists():
            raise ValueError(f"--out {out} already exists; join never replaces a file. Fix: give a new file name.")
    result = join_leads_calls(
        leads,
        calls,
        lead_id=args.id,
        call_id=args.call_id,
        time_field=args.time_field,
        text_column=args.text_column,
    )
    data = result.frame.to_csv(index=False).encode("utf-8")
    for line in result.report.lines():
        print(line)
    if out is not None:
        write_bytes(out, data)
        print(f"written to {out}")
    if args.store:
        from engine.data.join import JOINED_FROM
        from engine.datasets import DatasetStore, content_hash

        name = args.name or f"{leads.stem} + {calls.stem}"
        ds = DatasetStore().add(
            data,
            filename=f"{leads.stem}-joined.csv",
            kind="leads",
            name=name,
            notes=join_note(result.report),
            **{JOINED_FROM: {"leads": content_hash(leads.read_bytes()), "calls": content_hash(calls.read_bytes())}},
        )
        print(f"stored as dataset {ds.label} ({ds.sha[:12]})")
    if report is not None:
        write_text(report, json.dumps(result.report.as_dict(), indent=2))
    return 0


def join_note(report) -> str:
    """The dataset's note: where the join came from, in one line per fact."""
    from engine.data.join import JOIN_NOTE_PREFIX

    return JOIN_NOTE_PREFIX + " | ".join(report.lines())


def add_commands(sub, command) -> None:
    p = command(
        sub,
        "join",
        cmd_join,
        help="join a lead table with its calls (one text column per lead) into a new file or dataset",
        description="Join a lead table and a transcripts file on a lead id: the calls of each lead, in time order, "
        "become one text column. Leads without calls, calls without leads and leads without an id are counted; "
        "a table with duplicate ids is refused. Neither input is changed.",
    )
    p.add_argument("--leads", required=True, help="the lead table (CSV, Excel or Parquet)")
    p.add_argument("--calls", required=True, help="the transcripts file (JSON, JSON Lines or CSV)")
    p.add_argument("--id", help="the lead table's id column (default: the one whose values match the calls' ids)")
    p.add_argument(
        "--call-id", dest="call_id", default="metadata.lead_id", help="the calls' lead id field (metadata.lead_id)"
    )
    p.add_argument("--time-field", dest="time_field", help="the calls' date/time field (default: found by name)")
    p.add_argument("--text-column", dest="text_column", default="call", help="the new text column's name (call)")
    p.add_argument("--out", help="write the joined table to this new CSV file")
    p.add_argument("--store", action="store_true", help="store the joined table as a new lead dataset")
    p.add_argument("--name", help="--store: the dataset's name (default: '<leads> + <calls>')")
    p.add_argument("--json", help="also write the report as JSON here")
