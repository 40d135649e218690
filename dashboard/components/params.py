"""Words for the approaches' parameters: a label, a one-line help and a group (basic or advanced) for every
constructor parameter of every approach, in one table (params.toml, beside this file: words, not code). The real
parameter name goes into the help, for the command line (``--param NAME=VALUE``). tests/dashboard/test_dashboard_journey.py
checks that every constructor parameter has an entry, so a new parameter without words fails a test."""

from __future__ import annotations

import tomllib
from pathlib import Path

BASIC, ADVANCED = "basic", "advanced"


def _load(path: Path) -> dict[str, dict[str, tuple[str, str, str]]]:
    with path.open("rb") as f:
        table = tomllib.load(f)
    return {a: {n: (e["label"], e["help"], e["group"]) for n, e in entries.items()} for a, entries in table.items()}


#: approach -> parameter -> (label, one-line help, group), from params.toml; basic parameters are shown in its order
PARAMS: dict[str, dict[str, tuple[str, str, str]]] = _load(Path(__file__).with_name("params.toml"))


def label(approach: str, name: str) -> str:
    entry = PARAMS.get(approach, {}).get(name)
    return entry[0] if entry else name.replace("_", " ")


def help_text(approach: str, name: str) -> str:
    """The one-line help with the real parameter name for the command line."""
    entry = PARAMS.get(approach, {}).get(name)
    words = entry[1] + " " if entry else ""
    return f"{words}Command line: `--param {name}=VALUE`."


def group(approach: str, name: str) -> str:
    entry = PARAMS.get(approach, {}).get(name)
    return entry[2] if entry else ADVANCED


def basic_order(approach: str) -> list[str]:
    return [n for n, (_, _, g) in PARAMS.get(approach, {}).items() if g == BASIC]


def readable_value(value) -> str:
    """A parameter value as a person reads it: lists without brackets and quotes, true/false as yes/no."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_changes(approach: str, changed: dict) -> str:
    """``"target modules: q_proj, v_proj; passes over the training leads: 1"``-style text, or "none"."""
    if not changed:
        return "none"
    return "; ".join(f"{label(approach, k).lower()}: {readable_value(v)}" for k, v in changed.items())
