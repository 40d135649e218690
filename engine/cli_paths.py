"""The files a command is given: ``--data`` read, ``--out`` / ``--report`` / ``--json`` written. Each is checked
before any work, with one line naming the problem and the fix (no traceback), and two flags naming one file are
refused: ``score --out`` over its own ``--data`` would replace the input with the ranked list. :func:`input_kind_of`
says whether ``--data`` holds leads or transcripts."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from engine.storage import is_inside, same_file

#: Files scored as transcripts by their extension; a CSV with a ``transcript`` column is transcripts too.
TRANSCRIPT_SUFFIXES = (".json", ".jsonl", ".ndjson")


def input_kind_of(path: str | Path) -> str:
    """``"transcripts"`` for JSON / JSON Lines files and for a CSV whose header has a ``transcript`` column,
    ``"leads"`` otherwise (a lead table: CSV, Excel, Parquet)."""
    path = Path(path)
    if path.suffix.lower() in TRANSCRIPT_SUFFIXES:
        return "transcripts"
    if path.suffix.lower() not in (".csv", ".tsv", ".txt", ""):
        return "leads"
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            first = f.readline(1 << 20)
    except OSError:
        return "leads"
    if first.lstrip()[:1] in ("[", "{"):
        return "transcripts"
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader([first], delimiter=delimiter), [])
    return "transcripts" if any(c.strip().lower() == "transcript" for c in header) else "leads"


def _outside_workspace(out: Path, flag: str, fix: str) -> Path:
    """``out`` unless it lies inside the workspace, whose runs, live runs, scored lists and jobs are the engine's
    own files: an output is never written among them."""
    from engine.config import workspace

    if is_inside(out, workspace()):
        raise ValueError(
            f"{flag} {out} lies inside the workspace ({workspace()}), which holds the engine's own files (runs, "
            f"live runs, scored lists); it is never written there. Fix: {fix}."
        )
    return out


def writable_out(out: str | None, flag: str = "--out") -> Path | None:
    """``--out`` (or ``flag``) as a path, refused before any work when it cannot be written or lies inside the
    workspace: its runs, live runs, scored lists and jobs are the engine's own files, which an output written
    there would replace or sit among (``--out workspace/live.json`` would drop the live runs)."""
    if not out:
        return None
    out = _outside_workspace(Path(out), flag, "write it somewhere else")
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder. Fix: give a file name, e.g. {flag} {out / 'scored.csv'}")
    if not out.parent.is_dir():
        raise ValueError(
            f"{flag} {out}: the folder {out.parent} does not exist. Fix: create it first or write the "
            "scores somewhere else."
        )
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ValueError(f"{flag} {out} cannot be written (no permission). Fix: write the scores somewhere else.")
    return out


def writable_folder(out: str | None, flag: str = "--out") -> Path | None:
    """A folder flag (``train --out``) as a path, refused before any work when it is a file, cannot be made or
    written, or lies inside the workspace (a run folder there would have its files replaced)."""
    if not out:
        return None
    out = _outside_workspace(Path(out), flag, "name a folder somewhere else")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {out} is a file, not a folder. Fix: name a folder (it is made when missing).")
    near = next((p for p in (out, *out.parents) if p.exists()), None)
    if near is not None and not os.access(near, os.W_OK):
        raise ValueError(f"{flag} {out} cannot be written (no permission in {near}). Fix: name a folder elsewhere.")
    return out


def readable_data(text: str, what: str) -> Path:
    """``--data`` as a path, refused with one line (not a traceback) when it is not a file that can be read."""
    data = Path(text)
    try:
        if data.is_dir():
            raise ValueError(f"--data {data} is a folder, not a file. Fix: give {what} inside it.")
        if data.exists() and not data.is_file():
            raise ValueError(f"--data {data} is not a plain file (a pipe or a device?). Fix: give {what}.")
        if not data.is_file():
            raise FileNotFoundError(f"--data {data}: no such file. Fix: give {what}.")
        with open(data, "rb"):
            pass
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not exc.filename:
            raise  # our own message above
        raise ValueError(f"--data {data} cannot be read ({exc.strerror or exc}). Fix: give {what}.") from None
    return data


def refuse_clashes(*paths: tuple[str, Path | None, str]) -> None:
    """Refuse, before anything is read, two of ``(flag, path, what it holds)`` that name one file: writing the
    second would replace the first (``score --out`` over its ``--data``, ``--report`` over the ranked list)."""
    given = [(flag, path, what) for flag, path, what in paths if path is not None]
    for i, (flag, path, what) in enumerate(given):
        for later, other, _ in given[i + 1 :]:
            if same_file(path, other):
                raise ValueError(
                    f"{later} {other} is the same file as {flag} {path}: writing it would replace {what}. "
                    f"Fix: give {later} another file name."
                )
