"""Values given on the command line: ``--param KEY=VALUE`` (:func:`parse_value`), the number flags
(:func:`number`, :func:`whole`), ``--missing-value COLUMN=NUMBER`` (:func:`missing_value_flag`) and the split
(:func:`add_split_flags`). A number is
taken only in the plain ASCII form the help shows (:data:`NUMBER`); the parameter's range is checked where every
path checks it (:func:`engine.pipeline.check_params`)."""

from __future__ import annotations

import argparse
import json
import math
import re

#: A number as the help shows it: ASCII digits, an optional sign, decimals and exponent; no underscores, no
#: digits of other scripts (Python's own int()/float() take '1_000' and '١٠٠٠'), no nan or inf.
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number here")


def parse_value(text: str):
    """A ``--param`` value: JSON (numbers, true/false, null, lists), anything else as text. NaN and Infinity,
    which Python's JSON reader takes, stay text, so the parameter's check refuses them by name."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:  # JSONDecodeError included
        return text


def number(text: str, kind: type = float):
    """An argparse type: ``text`` as a finite ``kind`` when it is a plain ASCII number (:data:`NUMBER`)."""
    stripped = str(text).strip()
    if not NUMBER.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain number (digits 0-9, e.g. 3 or 0.5)")
    value = float(stripped)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is too large")
    if kind is int:
        if re.fullmatch(r"[+-]?\d+", stripped, re.ASCII):
            return int(stripped)  # exact, however long
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        return int(value)
    return value


def whole(text: str) -> int:
    return number(text, int)


def missing_value_flag(text: str) -> tuple[str, float]:
    """``--missing-value COLUMN=NUMBER`` -> (column, number); argparse reports a bad one with this message."""
    column, sep, given = str(text).rpartition("=")
    value = float(given.strip()) if NUMBER.fullmatch(given.strip()) else None  # plain ASCII digits only
    if not sep or not column.strip() or value is None or not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not COLUMN=NUMBER. Fix: name the column and the code it uses for 'unknown', "
            "e.g. --missing-value TotalVisits=999"
        )
    return column.strip(), value


def kind_value(text: str) -> tuple[str, str]:
    """``--kind COLUMN=KIND`` -> (column, kind); argparse reports a bad one with the message of
    :func:`engine.data.column_kinds.kind_flag` (the column, the value and the kinds allowed)."""
    from engine.data.column_kinds import kind_flag

    try:
        return kind_flag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def first_line(problem: str) -> str:
    """The first line of a reason (a native library's message can go on with a backtrace), brackets closed."""
    lines = str(problem).strip().splitlines() or [""]
    line = lines[0].rstrip()
    if len(lines) > 1:
        line += " ..." + ")" * max(line.count("(") - line.count(")"), 0)
    return line


def add_split_flags(parser: argparse.ArgumentParser) -> None:
    """``train``'s ``--split stratified|time`` and ``--time-column COL`` (checked by :class:`TrainSpec`)."""
    parser.add_argument(
        "--split",
        choices=["stratified", "time"],
        default="stratified",
        help="how the test rows are chosen: stratified (random, the protocol's) or time (the newest --test-size "
        "of the rows by --time-column: what a model will do on next month's leads)",
    )
    parser.add_argument(
        "--time-column", dest="time_column", metavar="COL", help="--split time: the date column (e.g. 'Created On')"
    )


def use_list(text: str) -> list[str]:
    """``bench leads --use table,text,both``: the parts of the table to run on, each checked (engine.data.uses)."""
    from engine.data.uses import check_use

    items = [part.strip() for part in str(text).split(",") if part.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give one or more of table, text, both (comma-separated)")
    try:
        return [check_use(item) for item in dict.fromkeys(items)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_use_flag(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--use table|text|both`` (train) or ``--use table,text,both`` (bench leads): the table's fields, its text
    columns, or both (engine.data.uses)."""
    if several:
        parser.add_argument(
            "--use",
            type=use_list,
            default=None,
            metavar="table,text,both",
            help="leads: run each of these parts of the table (its fields, its text columns, both) on the same split "
            "and say what the text is worth; without --data, on the demo leads with call notes and calls",
        )
        return
    parser.add_argument(
        "--use",
        choices=["table", "text", "both"],
        default="both",
        help="leads: train on the table's fields only (table), its text columns only (text: call notes, a joined "
        "call) or both (the default)",
    )


def metric_text(metrics: dict, name: str) -> str:
    """A stored metric as the command line prints it: ``0.901 [0.887, 0.913]`` (value and interval), ``-`` when
    the run has none, ``?`` for a value the store did not write in this shape."""
    m = metrics.get(name)
    if m is None:
        return "-"
    try:
        if isinstance(m, dict):
            return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
        return f"{m:.3f}"
    except (KeyError, TypeError, ValueError):
        return "?"  # a value the store did not write in this shape


def short_text(value, limit: int = 40) -> str:
    """``value`` on one line, cut to ``limit`` characters with "..." (a table cell of the command line)."""
    text = " ".join(str(value if value is not None else "-").split())  # no newlines or tabs in a table cell
    return text if len(text) <= limit else text[: limit - 3] + "..."
