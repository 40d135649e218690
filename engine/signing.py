"""Signatures on the engine's own pickles: the proof that a model file was written by this engine.

A joblib pickle runs code when it is loaded. A run's model folder sits in the workspace, which others may be able
to write to (a shared drive, the filesystem a Ray cluster shares), so the folder check of
:func:`load_pickle` alone cannot tell the engine's pickle from one planted beside it. Each pickle
the engine writes therefore gets an HMAC-SHA256 of its bytes beside it (``NAME.sig``), under a key kept *outside*
the workspace; :func:`load_pickle`, the one place the engine unpickles, unpickles only bytes whose signature matches.

The key: the file named by ``CLAB_SIGNING_KEY_FILE``, else ``$XDG_CONFIG_HOME/conversion-lab/signing.key``
(``~/.config/...``), made on first use (32 random bytes, readable by its owner only). A key file inside the
workspace is refused: whoever can write the workspace could then sign. Every machine that trains or scores one
workspace (a Ray cluster's nodes) needs the same key file.

Runs stored before signing have unsigned pickles: they are refused with the fix, ``python -m engine trust
RUN_ID``, by which the user vouches for that run's files (:func:`sign_file` on each).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
import stat
from pathlib import Path
from typing import Any

KEY_ENV = "CLAB_SIGNING_KEY_FILE"
SUFFIX = ".sig"
KEY_BYTES = 32


class UnsignedFile(ValueError):
    """A pickle without a valid signature of this engine's key: never unpickled."""


def key_path() -> Path:
    """Where the signing key lives (``CLAB_SIGNING_KEY_FILE``, else the user's config folder)."""
    named = os.environ.get(KEY_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(config) / "conversion-lab" / "signing.key"


def _check_outside_workspace(path: Path) -> None:
    from engine.config import workspace
    from engine.storage import is_inside

    if is_inside(path, workspace()):
        raise ValueError(
            f"The signing key {path} lies inside the workspace ({workspace()}): whoever can write the workspace "
            f"could sign a planted model with it. Fix: set {KEY_ENV} to a file outside the workspace."
        )


def _make_key(path: Path) -> None:
    """Write a new key to ``path`` unless one is there: the whole file appears at once (a hard link of a finished
    temporary file), so two processes making it at once end with one key, read whole by both."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the key
    finally:
        tmp.unlink(missing_ok=True)


def signing_key() -> bytes:
    """The key's bytes, made on first use; ValueError naming the file and the fix when it is not usable."""
    path = key_path()
    _check_outside_workspace(path)
    if not os.path.lexists(path):
        _make_key(path)
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        raise ValueError(
            f"The signing key {path} cannot be read ({exc}). Fix: set {KEY_ENV} to a readable file."
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(
            f"The signing key {path} is not a plain file (a link, folder or device). Fix: remove it (a new key is "
            f"made) or set {KEY_ENV} to a plain file."
        )
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise ValueError(
            f"The signing key {path} holds {len(key)} bytes, fewer than {KEY_BYTES}: it is damaged. Fix: restore it "
            "(models signed with it need it), or remove it and train again."
        )
    return key


def signature(data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under the signing key, as hex."""
    return hmac.new(signing_key(), data, hashlib.sha256).hexdigest()


def _sig_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def sign_file(path: str | Path) -> None:
    """Write ``path``'s signature beside it (``NAME.sig``)."""
    from engine.storage import write_text

    path = Path(path)
    write_text(_sig_path(path), signature(path.read_bytes()) + "\n")


def dump_signed(obj: Any, path: str | Path) -> Path:
    """``joblib.dump`` of ``obj`` to ``path`` (written whole or not at all), with its signature beside it."""
    import joblib

    from engine.storage import write_bytes, write_text

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    data = buffer.getvalue()
    path = Path(path)
    write_bytes(path, data)
    write_text(_sig_path(path), signature(data) + "\n")
    return path


def verified_bytes(path: str | Path) -> bytes:
    """``path``'s bytes, read once, when its signature beside it matches them; :class:`UnsignedFile` otherwise."""
    path = Path(path)
    sig = _sig_path(path)
    if not sig.is_file() or sig.is_symlink():
        raise UnsignedFile(
            f"{path.name} has no signature of this engine ({sig.name} is missing): it was stored before models were "
            "signed, or not by this engine, and is not loaded. Fix: train the run again, or, if you know this run "
            "is the engine's own, `python -m engine trust RUN_ID`."
        )
    data = path.read_bytes()
    want = sig.read_text(encoding="ascii", errors="replace").strip()
    if not hmac.compare_digest(signature(data), want):
        raise UnsignedFile(
            f"{path.name} does not match its signature: it was changed after the engine wrote it, or signed with "
            f"another key (another machine's {KEY_ENV}), and is not loaded. Fix: train the run again, or use the "
            "key it was signed with."
        )
    return data


def load_pickle(folder: str | Path, name: str):
    """``joblib.load`` of ``folder/name``, the one place the engine unpickles: only a plain file that resolves
    inside ``folder`` (a model folder the engine wrote; :func:`own_file`), never one a name or a link leads
    elsewhere, and only bytes signed with the engine's key (:func:`verified_bytes`: a pickle planted in the folder is
    refused before it is read as a pickle)."""
    import io

    import joblib

    from engine.storage import own_file

    path = Path(folder) / str(name)
    try:
        own_file(folder, name)
    except ValueError:
        ok = False
    else:
        ok = path.is_file()
    if not ok:
        raise ValueError(f"{path} is not a file the engine wrote in this model folder; it is not loaded")
    return joblib.load(io.BytesIO(verified_bytes(path)))
