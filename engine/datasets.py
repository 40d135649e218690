"""Dataset store: every uploaded file kept once, by the sha256 of its bytes.

``<workspace>/datasets/<sha>/`` holds the raw file (``data<ext>``, bytes unchanged) and
``meta.json`` (name, kind, original filename, target, leak policy, excluded columns, numbers read as
missing, size, rows). The folder name equals the ``data_hash`` the loaders compute, so runs
(``spec["data_hash"]``) find their dataset. An upload never replaces another: the same bytes map
to the same folder, different bytes to a new one; only the settings in ``meta.json`` change. The same
bytes uploaded as the other kind are refused (one file holds one kind of data).

Concurrency: files are written through :func:`engine.storage.atomic_write` (unique temporary files) and
every read-modify-write of ``meta.json`` (and the first creation of a dataset) holds
:func:`engine.storage.locked`, so threads of one dashboard and separate processes never lose an upload
or a setting. An upload is checked (:func:`check_upload`: format, row/column/size
limits) before anything is stored. A dataset whose ``meta.json`` is damaged is left out of
:meth:`DatasetStore.list` and recorded in :attr:`DatasetStore.problems`; uploading the same file again
repairs it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import workspace
from engine.storage import CorruptFile, jsonable, locked, read_json, write_bytes, write_json

KINDS = ("leads", "transcripts")
LEAD_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".parquet", ".pq")
TRANSCRIPT_EXTENSIONS = (".json", ".jsonl", ".ndjson", ".csv")
META_FILE = "meta.json"
#: settings a user may change after the upload
SETTINGS = ("name", "target", "leak_policy", "exclude", "include", "synthetic", "notes", "purpose", "missing_values")
#: what a lead table is for: ``training`` (it has an outcome column with both outcomes) or ``scoring`` (new
#: leads without the outcome: offered on the Score page, not for training). Meta without the key is training.
PURPOSES = ("training", "scoring")
#: A dataset id: the sha256 of its bytes, or a prefix of it of at least 6 hex digits.
SHA_PATTERN = re.compile(r"[0-9a-f]{6,64}")


class BrokenDataset(ValueError):
    """A stored dataset whose ``meta.json`` cannot be read; the message names the file and the fix."""


def _write_meta(folder: Path, meta: dict) -> None:
    write_json(folder / META_FILE, jsonable(meta, fallback=str))


def _checked(settings: dict[str, Any], extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """``settings`` refused when a name is unknown (beyond :data:`SETTINGS` and ``extra``) or a value unusable
    (``purpose``, ``missing_values``: ValueError naming it); ``missing_values`` normalised."""
    unknown = set(settings) - set(SETTINGS) - set(extra)
    if unknown:
        raise ValueError(f"unknown dataset setting(s) {sorted(unknown)}; valid: {SETTINGS}")
    purpose = settings.get("purpose")
    if purpose is not None and purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    if "missing_values" in settings:
        from engine.data.leads import check_missing_values

        settings = {**settings, "missing_values": check_missing_values(settings["missing_values"])}
    return settings


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def guess_kind(filename: str) -> str:
    """ "transcripts" for JSON/JSONL files, "leads" otherwise (CSV may be either: pass kind=)."""
    ext = Path(filename).suffix.lower()
    return "transcripts" if ext in (".json", ".jsonl", ".ndjson") else "leads"


@dataclass
class Dataset:
    path: Path

    @property
    def sha(self) -> str:
        return self.path.name

    @property
    def meta(self) -> dict:
        """The dataset's settings; raises :class:`BrokenDataset` (a ValueError naming the file) when damaged."""
        try:
            meta = read_json(self.path / META_FILE)
            for key in ("kind", "file"):
                if not isinstance(meta.get(key), str):
                    raise CorruptFile(self.path / META_FILE, f"has no {key!r} text field")
        except CorruptFile as exc:
            raise BrokenDataset(
                f"dataset {self.sha[:12]} is damaged: {exc}. Fix: upload the same file again to "
                f"repair it, or remove the folder {self.path}."
            ) from None
        return meta

    @property
    def name(self) -> str:
        return self.meta.get("name") or self.sha[:12]

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def raw_path(self) -> Path:
        return self.path / self.meta["file"]

    @property
    def purpose(self) -> str:
        """``training`` or ``scoring`` (see :data:`PURPOSES`); transcripts are always training data."""
        purpose = self.meta.get("purpose")
        return purpose if purpose in PURPOSES else "training"

    @property
    def missing_values(self) -> dict[str, list[float]]:
        """The numbers read as missing, ``{column: [numbers]}`` (see :func:`engine.data.leads.treat_missing`).
        Raises ValueError naming the file and the fix when ``meta.json`` holds a damaged one (hand-edited)."""
        from engine.data.leads import LeadDataError, check_missing_values

        try:
            return check_missing_values(self.meta.get("missing_values"))
        except LeadDataError as exc:
            raise ValueError(
                f"the numbers read as missing of dataset {self.name!r} are not usable: {exc} The setting is "
                f"ignored until it is fixed in {self.path / META_FILE}, or cleared on the Data page."
            ) from None

    def label(self) -> str:
        m = self.meta
        synth = " (synthetic)" if m.get("synthetic") else ""
        what = "leads to score" if m["kind"] == "leads" and self.purpose == "scoring" else m["kind"]
        return f"{m.get('name') or self.sha[:12]}{synth} — {what} [{self.sha[:8]}]"

    def read_bytes(self) -> bytes:
        return self.raw_path.read_bytes()

    @property
    def filename(self) -> str:
        """The name the file was uploaded under (what messages call it)."""
        return self.meta.get("filename") or self.raw_path.name

    def load_frame(self):
        """The raw table as a DataFrame (leads) or the transcript records' frame (transcripts)."""
        if self.kind == "leads":
            from engine.data.leads import read_table

            return read_table(self.raw_path, filename=self.filename)
        from engine.data.transcripts import load_transcripts

        return load_transcripts(self.raw_path, filename=self.filename).X


class DatasetStore:
    """Datasets under ``<workspace>/datasets``, keyed by content hash."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else workspace() / "datasets"
        self.root.mkdir(parents=True, exist_ok=True)
        #: datasets the last :meth:`list` left out, ``{sha: why}``
        self.problems: dict[str, str] = {}

    def add(
        self,
        data: bytes | str | Path,
        filename: str | None = None,
        kind: str | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Dataset:
        """Store a file's bytes (or a path's) and return its dataset. Storing the same bytes twice
        returns the existing dataset (its raw file is never rewritten; given settings update meta).

        The upload is checked first (:func:`check_upload`), so nothing is stored for
        a file that cannot be read or is over the limits; the error names ``filename``. The same bytes
        given as the other ``kind`` are refused (ValueError); without ``kind`` they keep the stored one."""
        if isinstance(data, (str, Path)):
            path = Path(data)
            filename = filename or path.name
            data = path.read_bytes()
        data = bytes(data)
        if not data:
            raise ValueError(f"{filename or 'the upload'} is empty (0 bytes); choose the file that holds your data")
        filename = os.path.basename(filename or "data.csv")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        settings = _checked(settings)
        sha = content_hash(data)
        folder = self.root / sha
        ext = Path(filename).suffix.lower() or ".csv"
        changes = {**({"name": name} if name else {}), **settings}
        existing = self._stored_meta(folder)
        if existing is None:  # a new upload: checked before anything (even its folder) exists
            check_upload(data, filename, kind or guess_kind(filename))
        with locked(folder / META_FILE):  # the first creation, or a settings change, by one writer at a time
            existing = self._stored_meta(folder)
            if existing is not None:
                if kind is not None and kind != existing["kind"]:
                    raise ValueError(
                        f"{filename}: these bytes are already stored as {existing['kind']} dataset "
                        f"{existing.get('name') or sha[:12]!r} ({sha[:12]}); one file holds one kind of data. "
                        f"Fix: use that dataset, or upload the {kind} file if this one was chosen by mistake."
                    )
                if changes:
                    _write_meta(folder, {**existing, **changes})
                return Dataset(folder)
            raw = folder / f"data{ext}"
            if not (raw.is_file() and content_hash(raw.read_bytes()) == sha):  # kept when repairing a damaged meta
                write_bytes(raw, data)
            meta = {
                "name": name or Path(filename).stem,
                "kind": kind or guess_kind(filename),
                "file": raw.name,
                "filename": filename,
                "bytes": len(data),
                "sha256": sha,
                "added": time.time(),
                "target": None,
                "leak_policy": "default",
                "exclude": [],
                "include": [],
                "missing_values": {},
                "synthetic": False,
            }
            meta.update({k: v for k, v in settings.items() if v is not None})
            _write_meta(folder, meta)
        return Dataset(folder)

    @staticmethod
    def _stored_meta(folder: Path) -> dict | None:
        """The dataset's meta when it is stored and readable with its raw file; ``None`` when it is not
        stored yet or is damaged (so that the upload stores it again, which repairs it)."""
        if not (folder / META_FILE).exists():
            return None
        try:
            meta = Dataset(folder).meta
        except BrokenDataset:
            return None
        return meta if (folder / meta["file"]).is_file() else None

    def update(self, sha: str, **settings: Any) -> Dataset:
        """Change a dataset's settings (name, target, leak policy, excluded columns...)."""
        settings = _checked(settings, extra=("rows", "columns"))
        ds = self.get(sha)
        with locked(ds.path / META_FILE):
            _write_meta(ds.path, {**ds.meta, **settings})
        return ds

    def treat_as_missing(self, sha: str, column: str, value: float, missing: bool = True) -> dict[str, list[float]]:
        """Read ``value`` of ``column`` as missing (with a flag column) in training, or stop doing so
        (``missing=False``: the undo), changing only that entry of the setting under the dataset's lock, so that
        concurrent changes of other entries or settings are all kept. Returns the new setting; raises ValueError
        when the stored one is damaged (clear it with ``update(sha, missing_values={})``) or the change is
        unusable (a value that is not a number, too many values)."""
        ds = self.get(sha)
        with locked(ds.path / META_FILE):
            setting = ds.missing_values
            values = [v for v in setting.get(column, []) if v != value]
            setting[column] = values + [value] if missing else values
            meta = {**ds.meta, **_checked({"missing_values": setting})}
            _write_meta(ds.path, meta)
        return meta["missing_values"]

    def delete(self, sha: str) -> str:
        """Remove a dataset (its raw file and settings; a damaged one too) and return its full sha256: the only
        way a stored dataset goes away. Runs trained on it are kept (they name the dataset by its sha256).
        Raises KeyError when there is no such dataset (or the prefix is not unique)."""
        key = str(sha).strip().lower()
        if not SHA_PATTERN.fullmatch(key):
            raise KeyError(
                f"No dataset {sha!r} in {self.root} (a dataset id is the sha256 of its file, at least 6 hex digits)"
            )
        matches = [p for p in self.root.glob(f"{key}*") if p.is_dir() and not p.is_symlink()]
        exact = self.root / key
        if exact in matches:
            matches = [exact]
        if len(matches) != 1:
            raise KeyError(
                f"No dataset {sha!r} in {self.root}"
                if not matches
                else f"{sha!r} names {len(matches)} datasets in {self.root}; give more of its sha256"
            )
        folder = matches[0]
        with locked(folder / META_FILE):
            shutil.rmtree(folder)
        self.problems.pop(folder.name, None)
        return folder.name

    def get(self, sha: str) -> Dataset:
        """The dataset with this sha256 (or unique prefix of at least 6 hex digits). Raises KeyError when
        there is none and :class:`BrokenDataset` (a ValueError naming the file) when it is damaged."""
        key = str(sha).strip().lower()
        if not SHA_PATTERN.fullmatch(key):
            raise KeyError(
                f"No dataset {sha!r} in {self.root} (a dataset id is the sha256 of its file, at least 6 hex digits)"
            )
        folder = self.root / key
        if not (folder / META_FILE).exists():
            matches = [p for p in self.root.glob(f"{key}*") if (p / META_FILE).exists()]
            if len(matches) != 1:
                raise KeyError(f"No dataset {sha!r} in {self.root}")
            folder = matches[0]
        ds = Dataset(folder)
        _ = ds.meta  # raises BrokenDataset, naming the file
        return ds

    def find(self, sha: str) -> Dataset | None:
        """The dataset, or ``None`` when there is none or it is damaged (recorded in :attr:`problems`)."""
        try:
            return self.get(sha)
        except KeyError:
            return None
        except BrokenDataset as exc:
            self.problems[str(sha)] = str(exc)
            return None

    def list(self, kind: str | None = None, purpose: str | None = None) -> list[Dataset]:
        """Datasets, newest first (of one ``kind`` and ``purpose`` when given). A damaged one is left out and
        recorded in :attr:`problems`."""
        found = []
        self.problems = {}
        for folder in self.root.iterdir():
            if (folder / META_FILE).exists():
                ds = Dataset(folder)
                try:
                    meta = ds.meta
                except BrokenDataset as exc:
                    self.problems[folder.name] = str(exc)
                    continue
                if purpose is not None and ds.purpose != purpose:
                    continue
                if kind is None or meta.get("kind") == kind:
                    added = meta.get("added", 0)
                    found.append((added if isinstance(added, (int, float)) else 0, ds))
        return [ds for _, ds in sorted(found, key=lambda t: t[0], reverse=True)]

    def broken(self) -> dict[str, str]:
        """``{sha: why}`` of every damaged dataset (lists the store)."""
        self.list()
        return dict(self.problems)


def check_upload(data: bytes, filename: str | None, kind: str) -> None:
    """Cheap checks of an upload before anything is stored or parsed: not empty, a readable format, and
    within the row, column and size limits of :mod:`engine.data.leads` / :mod:`engine.data.transcripts`
    (counted from the file's metadata or its lines, never from a parsed table). Raises ``ValueError``
    (:class:`~engine.data.leads.LeadDataError` or :class:`~engine.data.transcripts.TranscriptDataError`)
    whose message names ``filename``; a header-only table passes (the readers say it has no rows)."""
    if kind == "leads":
        from engine.data.leads import check_table

        check_table(data, filename)
    elif kind == "transcripts":
        from engine.data.transcripts import check_transcripts

        check_transcripts(data, filename)
    else:
        raise ValueError(f"kind must be 'leads' or 'transcripts', not {kind!r}")
