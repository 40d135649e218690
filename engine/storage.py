"""The one place the engine writes and reads its own files: atomic writes, locks, checked JSON reads.

* :func:`atomic_write` writes into a unique temporary file beside the target (``tempfile.mkstemp``, so
  threads and processes never share one) and renames it over the target: a reader sees the old file
  or the new one, never half of one.
* :func:`locked` is a cross-process, cross-thread lock (the ``filelock`` package) around a
  read-modify-write of one file.
* :func:`read_json` reads a JSON file the engine wrote and checks its type; a damaged file raises
  :class:`CorruptFile` naming the file and what is wrong with it, so callers can skip it and say why.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any


class CorruptFile(ValueError):
    """A stored file that cannot be read as what it should be (invalid JSON, wrong type, missing)."""

    def __init__(self, path: Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def json_default(value: Any):
    """``json.dumps(default=...)`` for the values the engine stores: NumPy scalars and arrays, paths."""
    np = sys.modules.get("numpy")  # a value can only be a NumPy one when NumPy is loaded
    if np is not None and isinstance(value, np.integer):
        return int(value)
    if np is not None and isinstance(value, np.floating):
        return float(value)
    if np is not None and isinstance(value, np.bool_):
        return bool(value)
    if np is not None and isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonable(value: Any, fallback: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain JSON types (tuples and sets become lists, NumPy values Python ones, paths text): the
    one converter for everything the engine stores as JSON. ``fallback`` (e.g. ``str``) takes any other value;
    without one such a value raises TypeError."""

    def default(v: Any) -> Any:
        try:
            return json_default(v)
        except TypeError:
            if fallback is None:
                raise
            return fallback(v)

    return json.loads(json.dumps(value, default=default))


class FolderGone(FileNotFoundError):
    """The folder a file was to be written in no longer exists (removed while it was being filled): raised by
    :func:`atomic_write` with ``make_parents=False`` rather than making the folder again with that one file."""

    def __init__(self, folder: Path, name: str):
        self.folder = Path(folder)
        super().__init__(
            errno.ENOENT, f"{name} is not written: its folder no longer exists (removed meanwhile?)", str(folder)
        )


def atomic_write(path: str | Path, write: Callable[[Path], Any], *, make_parents: bool = True) -> Path:
    """Call ``write(tmp_path)`` to fill a unique temporary file beside ``path``, then rename it to ``path``.
    On any error the temporary file is removed and ``path`` is left as it was. The folder is made when missing,
    unless ``make_parents`` is false: then a missing folder raises :class:`FolderGone` (a run's files, whose
    folder made again would hold that one file and look like a run that lost the rest)."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FolderGone(path.parent, path.name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes, *, make_parents: bool = True) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), make_parents=make_parents)


def write_text(path: str | Path, text: str, *, make_parents: bool = True) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), make_parents=make_parents)


def write_json(path: str | Path, payload: Any, *, make_parents: bool = True) -> Path:
    """Write JSON atomically, so a reader never sees half a file (``make_parents``: see :func:`atomic_write`)."""
    return write_text(path, json.dumps(payload, indent=2, default=json_default), make_parents=make_parents)


#: A link is not followed and a named pipe does not block the open (where the system has these flags).
_OPEN_PLAIN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_LINK_OR_SPECIAL = (
    "is a symbolic link or not a plain file (a pipe, a device): only the plain files the engine wrote are read"
)


def _read_plain(path: Path) -> str:
    """The text of ``path`` when it is a plain file, not a link: a link planted where the engine keeps its own
    file could lead the read outside the workspace, a named pipe would block it, ``/dev/zero`` fill memory."""
    try:
        fd = os.open(path, _OPEN_PLAIN)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, _LINK_OR_SPECIAL) from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, _LINK_OR_SPECIAL)
        return f.read().decode("utf-8")


def not_plain(folder: str | Path, recursive: bool = False) -> list[str]:
    """The entries of ``folder`` (and, with ``recursive``, of its sub-folders) that are symbolic links or neither
    plain files nor folders (named pipes, devices, sockets), as paths relative to it, sorted: what a store never
    reads from a folder it wrote itself (:func:`_read_plain` says why)."""
    out, stack = [], [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
                    out.append(os.path.relpath(entry.path, folder))
                elif recursive and entry.is_dir():
                    stack.append(entry.path)
    return sorted(out)


def read_json(path: str | Path, expect: type | tuple[type, ...] = dict) -> Any:
    """Read a JSON file and check that its top level is ``expect``; raise :class:`CorruptFile` otherwise."""
    path = Path(path)
    try:
        text = _read_plain(path)
    except FileNotFoundError:
        raise CorruptFile(path, "the file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFile(path, f"cannot be read ({exc})") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CorruptFile(path, f"is not valid JSON ({exc})") from None
    if expect is not None and not isinstance(value, expect):
        names = " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
        raise CorruptFile(path, f"holds a {type(value).__name__}, not a {names}")
    return value


def locked(path: str | Path, timeout: float = 60.0) -> AbstractContextManager:
    """A lock (threads and processes) for a read-modify-write of ``path``: ``with locked(meta): ...``."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(f".{path.name}.lock")), timeout=timeout)


def is_inside(path: str | Path, root: str | Path) -> bool:
    """True when ``path``, resolved (symbolic links followed), lies inside ``root``."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except (ValueError, OSError):
        return False
    return True


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name one file, however spelt (``./x.csv`` and ``x.csv``, a symbolic link and
    its target, a hard link): ``os.path.samefile`` when both exist, else their resolved paths compared."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        pass
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):  # a name too long, a loop of links
        return os.path.abspath(a) == os.path.abspath(b)


def own_file(folder: str | Path, name: Any) -> Path:
    """``folder/name`` when ``name`` is a bare file name of ``folder``'s own: text without a path separator (``/``
    or ``\\``), not ``.`` or ``..``, not a symbolic link, resolving inside ``folder``. ValueError saying why
    otherwise. Whether the file exists is the caller's to check. The one check for every file name the engine
    reads from a stored settings file (a run's model files, a dataset's raw file), so that a hand-edited name or
    a planted link never makes it read a file elsewhere (``../../etc/passwd``, ``/etc/passwd``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{name!r} is not a file name")
    if name in (".", "..") or any(c in name for c in ("/", "\\", "\0")) or Path(name).name != name:
        raise ValueError(f"{name!r} is not a bare file name (it names a path)")
    path = Path(folder) / name
    if path.is_symlink():
        raise ValueError(f"{name!r} is a symbolic link (to {os.readlink(path)!r}); only plain files are read")
    if not is_inside(path, folder):
        raise ValueError(f"{name!r} resolves outside its folder")
    return path


#: First characters that make a spreadsheet read a cell as a formula (CSV/Excel injection, OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(text: str) -> bool:
    """True for text a spreadsheet would read as a formula: starting with ``= + - @``, tab or carriage return,
    also after leading spaces or other whitespace (``"  =1+1"``)."""
    return text.startswith(FORMULA_PREFIXES) or text.lstrip().startswith(FORMULA_PREFIXES)


def neutralise_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` so it is shown as text."""
    if isinstance(value, str) and is_formula_like(value):
        return "'" + value
    return value


def _holds_text(series) -> bool:
    """Whether a column can hold text cells: everything but numbers, booleans, dates and durations (object,
    ``str`` / ``string`` of either storage, pyarrow strings, categoricals of any categories...)."""
    import pandas as pd

    types = pd.api.types
    return not (
        types.is_numeric_dtype(series)
        or types.is_bool_dtype(series)
        or types.is_datetime64_any_dtype(series)
        or types.is_timedelta64_dtype(series)
    )


def neutralise_frame(frame):
    """A copy of a DataFrame safe to export as CSV or Excel: every text cell (whatever the column's dtype:
    object, ``str``/``string``, pyarrow strings, categorical) and every column name that a spreadsheet would run
    as a formula (:func:`is_formula_like`) is prefixed with ``'``. Numbers are left as numbers. Every export
    (``score --out``, the Score page's CSV and Excel downloads, stored scored lists, the board) goes through
    this function, by way of :func:`export_csv` / :func:`export_excel` or ``Scored.export_frame``."""
    out = frame.copy()
    for i in range(out.shape[1]):  # by position: duplicate column names are each neutralised
        column = out.iloc[:, i]
        if _holds_text(column):
            out.isetitem(i, column.astype(object).map(neutralise_cell))
    out.columns = [neutralise_cell(c) for c in out.columns]
    return out


def export_csv(frame) -> bytes:
    """``frame`` as the bytes of a CSV download (UTF-8, no index), formulas neutralised. Lines end in CRLF
    (RFC 4180), so a cell holding a carriage return is quoted: unquoted, a spreadsheet starts a new row at it
    and reads what follows as a cell of its own (one that can be a formula)."""
    return neutralise_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def export_excel(frame) -> bytes:
    """``frame`` as the bytes of an Excel ``.xlsx`` download, formulas neutralised. Control characters that a
    worksheet cannot hold (openpyxl refuses them) are written as U+FFFD, so a cell holding one does not
    stop the download."""
    import io

    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def clean(value: Any) -> Any:
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value

    out = neutralise_frame(frame)
    for i in range(out.shape[1]):
        if _holds_text(out.iloc[:, i]):
            out.isetitem(i, out.iloc[:, i].map(clean))
    out.columns = [clean(c) for c in out.columns]
    buffer = io.BytesIO()
    out.to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()
