"""Bytes from whatever a user hands over: a path, bytes, or a file-like object (a Streamlit upload)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def raw_bytes(source: Any, filename: str | None, error: type[Exception], expected: str) -> tuple[bytes, str | None]:
    """``(bytes, display name)`` of ``source``; ``error`` is raised with a message naming the fix.

    ``expected`` says what file is wanted (e.g. "a CSV, Excel or Parquet file"), for the messages.
    Returns ``None`` as bytes when ``source`` is none of these, so the caller can try its own types.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), filename
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise error(f"File not found: {path}. Fix: check the path, or upload the file in the dashboard.")
        if path.is_dir():
            raise error(f"{path} is a folder, not a file. Fix: give the path of {expected} inside it.")
        return path.read_bytes(), filename or path.name
    if hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):  # an unseekable stream is read from where it is
                pass
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = filename or getattr(source, "name", None)
        return bytes(data), (os.path.basename(str(name)) if name else None)
    return None, filename
