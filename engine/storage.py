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

import json
import os
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


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` to fill a unique temporary file beside ``path``, then rename it to ``path``.
    On any error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, payload: Any) -> Path:
    """Write JSON atomically, so a reader never sees half a file."""
    return write_text(path, json.dumps(payload, indent=2, default=json_default))


def read_json(path: str | Path, expect: type | tuple[type, ...] = dict) -> Any:
    """Read a JSON file and check that its top level is ``expect``; raise :class:`CorruptFile` otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
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


def load_pickle(folder: str | Path, name: str):
    """``joblib.load`` of ``folder/name``, the one place the engine unpickles: only a plain file that resolves
    inside ``folder`` (a model folder the engine wrote), never one a name or a link leads elsewhere."""
    import joblib

    path = Path(folder) / name
    if Path(name).name != name or path.is_symlink() or not is_inside(path, folder) or not path.is_file():
        raise ValueError(f"{path} is not a file the engine wrote in this model folder; it is not loaded")
    return joblib.load(path)


#: First characters that make a spreadsheet read a cell as a formula (CSV/Excel injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` so it is shown as text."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(frame):
    """A copy of a DataFrame safe to export as CSV or Excel: text cells (and column names) that start with
    ``= + - @`` (or tab / carriage return) are prefixed with ``'``. Numbers are left as numbers."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith(("string", "str")):
            out[column] = out[column].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) if isinstance(c, str) else c for c in out.columns]
    return out
