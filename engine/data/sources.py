"""Bytes from whatever a user hands over (a path, bytes, or a file-like object such as a Streamlit upload),
their text encoding, and the cheap counts every reader makes before it parses anything. It imports no reader: the
readers import it."""

from __future__ import annotations

import codecs
import csv
import os
from pathlib import Path
from typing import Any

from engine.storage import CorruptFile, read_json

#: The encodings a text file is read in when no byte-order mark names one (:func:`sniff_encoding`), in the order
#: tried: UTF-8, then Windows-1252, then Latin-1, the last, which decodes any bytes (what is left, never tried).
#: :func:`decode_text` and the chunked CSV reader (:mod:`engine.scoring_chunks`) both follow it.
TEXT_ENCODINGS = ("utf-8", "cp1252", "latin-1")


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
        return path.read_bytes(), filename or display_name(path)
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


def display_name(path: Path) -> str:
    """The name a user knows a file by: a dataset store's raw file (``<sha>/data.csv`` beside its
    ``meta.json``) goes by the file name it was uploaded as, so messages name the user's file."""
    meta = path.parent / "meta.json"
    if path.name.startswith("data.") and meta.is_file():
        try:
            name = read_json(meta).get("filename")
        except CorruptFile:
            name = None
        if isinstance(name, str) and name.strip():
            return os.path.basename(name)
    return path.name


# -- text encodings --------------------------------------------------------------------------------
#: Byte-order marks, longest first (the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def sniff_encoding(raw: bytes) -> str | None:
    """The encoding a byte-order mark names, or UTF-16 without a mark when every other byte of the start
    is zero (ASCII text saved as UTF-16); ``None`` for everything else (8-bit text, or binary data)."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding
    head = raw[:4096]
    if len(head) >= 8 and len(head) % 2 == 0:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) == 0:
            return "utf-16-le"
        if even.count(0) >= 0.9 * len(even) and odd.count(0) == 0:
            return "utf-16-be"
    return None


def decode_text(raw: bytes) -> tuple[str, str]:
    """``(text, encoding)``: the encoding a byte-order mark (or UTF-16 byte pattern) names, else the first of
    :data:`TEXT_ENCODINGS` that decodes it: UTF-8, Windows-1252, Latin-1 (which decodes any bytes, so binary data
    must be caught by the caller)."""
    sniffed = sniff_encoding(raw)
    if sniffed is not None:
        try:
            return raw.decode(sniffed), sniffed
        except UnicodeDecodeError:  # a mark by chance (binary data): let the 8-bit path and its checks decide
            pass
    *tried, last = TEXT_ENCODINGS
    for encoding in tried:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return raw.decode(last), last


def iter_lines(text: str):
    """The lines of ``text`` (with their ``\\n``), one slice at a time: no list of every line and no
    ``io.StringIO`` copy (which holds four bytes a character) of a large file."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        stop = end if stop < 0 else stop + 1
        yield text[start:stop]
        start = stop


def csv_rows_over(text: str, delimiter: str, limit: int) -> int | None:
    """``None`` when CSV text has at most ``limit`` data rows (records after the header); else its number of
    lines, for the message. No table is built: newlines are counted first (each record ends one); only when
    that bound is above ``limit`` are the records counted with the ``csv`` module (quoted fields may hold
    newlines, blank lines are no records), stopping as soon as the count passes ``limit``."""
    lines = max(text.count("\n"), text.count("\r")) + (not text.endswith(("\n", "\r")))  # \r alone: old Macs
    if lines - 1 <= limit:
        return None
    rows = -1  # the header is no data row
    try:
        for record in csv.reader(iter_lines(text), delimiter=delimiter):
            rows += bool(record)
            if rows > limit:
                return lines
    except csv.Error:  # malformed: the parser will say where; refuse on the newline bound
        return lines
    return None
