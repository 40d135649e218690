"""Dataset store: every uploaded file kept once, by the sha256 of its bytes.

``<workspace>/datasets/<sha>/`` holds the raw file (``data<ext>``, bytes unchanged) and
``meta.json`` (name, kind, original filename, target, leak policy, excluded columns, numbers read as
missing, size, rows). The folder name equals the ``data_hash`` the loaders compute, so runs
(``run.settings.data_hash``) find their dataset. An upload never replaces another: the same bytes map
to the same folder, different bytes to a new one; only the settings in ``meta.json`` change. The same
bytes uploaded as the other kind are refused (one file holds one kind of data).

Concurrency: files are written through :func:`engine.storage.atomic_write` (unique temporary files), and
every change of the store (the creation of a dataset, a read-modify-write of ``meta.json``, a delete) holds
the store's lock (:func:`engine.storage.locked` on ``<root>``: the file ``.datasets.lock`` beside the store),
so threads of one dashboard and separate processes never lose an upload or a setting. A dataset's folder
appears and goes in one step: a new one is written under a hidden name (``.new-...``) and renamed into place,
a deleted one is renamed to a hidden trash name (``.trash-...``) and then removed; listings skip hidden names.
A reader therefore sees a dataset whole or not at all: one deleted under it raises :class:`NoSuchDataset`
(a KeyError), never ``FileNotFoundError`` or a "damaged" dataset.

Hostile settings: ``meta.json`` is checked on every read (the types of its fields; its ``file`` must be a bare
file name of the dataset's own folder, not a link: :func:`engine.storage.own_file`), so a hand-edited
``"file": "../../etc/passwd"`` or a planted link is never read. An upload is checked (:func:`check_upload`:
format, row/column/size limits) before anything is stored. A damaged dataset is left out of
:meth:`DatasetStore.list` and recorded in :attr:`DatasetStore.problems`; uploading the same file again
repairs it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import workspace
from engine.data.column_kinds import parse_kinds
from engine.data.missing_values import LeadDataError, parse_missing_values
from engine.storage import CorruptFile, is_inside, jsonable, locked, own_file, read_json, write_bytes, write_json

KINDS = ("leads", "transcripts")
LEAD_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".parquet", ".pq")
TRANSCRIPT_EXTENSIONS = (".json", ".jsonl", ".ndjson", ".csv")
META_FILE = "meta.json"
#: settings a user may change after the upload
SETTINGS = (
    "name",
    "target",
    "leak_policy",
    "exclude",
    "include",
    "synthetic",
    "notes",
    "purpose",
    "missing_values",
    "kinds",
)
#: where a dataset came from, given to :meth:`DatasetStore.add` by the code that made it and kept by its versions
#: (``joined_from``: a join's inputs, :data:`engine.data.join.JOINED_FROM`); not a setting a user changes
ORIGINS = ("joined_from",)
#: what a lead table is for: ``training`` (it has an outcome column with both outcomes) or ``scoring`` (new
#: leads without the outcome: offered on the Score page, not for training). Meta without the key is training.
PURPOSES = ("training", "scoring")
#: A dataset id: the sha256 of its bytes, or a prefix of it of at least 6 hex digits.
SHA_PATTERN = re.compile(r"[0-9a-f]{6,64}")
#: hidden folders in the store: a dataset being written, and one being removed (listings skip them)
NEW_PREFIX, TRASH_PREFIX = ".new-", ".trash-"


class BrokenDataset(ValueError):
    """A stored dataset whose ``meta.json`` cannot be read; the message names the file and the fix."""


class NoSuchDataset(KeyError):
    """There is no such dataset: never stored, deleted, or deleted while it was being read."""

    def __str__(self) -> str:  # the message, without the quotes KeyError adds
        return str(self.args[0]) if self.args else "no such dataset"


@functools.cache
def _meta_model():
    """The pydantic model of ``meta.json`` (built on first use: pydantic is not imported with the store). Strict:
    ``"bytes": "12"`` or ``"exclude": "Tags"`` is refused, not guessed at. Other keys are allowed; the numbers
    read as missing are checked where they are used (:attr:`Dataset.missing_values`), so that the Data page
    can name and clear a damaged setting."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field

    class Meta(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        kind: Literal["leads", "transcripts"]
        file: str
        name: str | None = None
        filename: str | None = None
        size: int | None = Field(None, ge=0, alias="bytes")
        sha256: str | None = None
        added: float | None = Field(None, ge=0, allow_inf_nan=False)
        target: str | None = None
        leak_policy: str | None = None
        exclude: list[str] = []
        include: list[str] = []
        synthetic: bool | None = None
        notes: str | None = None
        purpose: Literal["training", "scoring"] | None = None
        rows: int | None = Field(None, ge=0)

    return Meta


def meta_problem(meta: dict) -> str | None:
    """What is wrong with the types of a ``meta.json``'s fields (a few of them, named), or ``None``."""
    from pydantic import ValidationError

    try:
        _meta_model().model_validate(meta)
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'meta'}: {e['msg']}" for e in exc.errors()[:4])
        return f"holds wrong values ({wrong})"
    return None


def _write_meta(folder: Path, meta: dict) -> None:
    """Write ``meta.json``, refusing (ValueError) settings of the wrong type: the store never writes a meta it
    would then read as damaged."""
    meta = jsonable(meta, fallback=str)
    problem = meta_problem(meta)
    if problem is not None:
        raise ValueError(f"dataset settings not stored: {problem}")
    write_json(folder / META_FILE, meta)


def _purpose(meta: dict) -> str:
    purpose = meta.get("purpose")
    return purpose if purpose in PURPOSES else "training"


def _remove(path: Path) -> None:
    """Remove a folder the store renamed away (a link: only the link)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)  # nobody else reaches a trash name: what is left is retried later


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
        settings = {**settings, "missing_values": parse_missing_values(settings["missing_values"])}
    if "kinds" in settings:
        settings = {**settings, "kinds": parse_kinds(settings["kinds"])}
    return settings


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def guess_kind(filename: str) -> str:
    """ "transcripts" for JSON/JSONL files, "leads" otherwise (CSV may be either: pass kind=)."""
    ext = Path(filename).suffix.lower()
    return "transcripts" if ext in (".json", ".jsonl", ".ndjson") else "leads"


#: Characters an upload's name loses: controls (a line break or a tab becomes a space) and the invisible marks that
#: turn the text's direction or hide in it, so that a name never reads as another ('\u202egnp.csv' shows 'vsc.png').
_NAME_SPACES = re.compile(r"[\t\n\r\v\f]")
_NAME_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
MAX_UPLOAD_NAME = 200


def upload_name(filename: str | None) -> str:
    """The name an upload is kept under (``meta["filename"]``; its stem is the dataset's name): the last part of
    what the browser sent (a Windows path's too), without control characters and hidden marks, spaces collapsed,
    at most :data:`MAX_UPLOAD_NAME` characters (a short extension kept); ``data.csv`` when nothing is left."""
    name = _NAME_HIDDEN.sub("", _NAME_SPACES.sub(" ", str(filename or "")))
    name = " ".join(name.replace("\\", "/").rsplit("/", 1)[-1].split())
    if len(name) > MAX_UPLOAD_NAME:
        ext = Path(name).suffix if len(Path(name).suffix) <= 13 else ""
        name = name[: MAX_UPLOAD_NAME - len(ext)] + ext
    if not name.strip("."):
        name = "data.csv"
    elif name.startswith("."):  # a hidden file's name, or only an extension left
        name = "data" + name
    return name


@dataclass
class Dataset:
    path: Path

    @property
    def sha(self) -> str:
        return self.path.name

    def _seen(self) -> os.stat_result:
        """The folder as it is now (to tell later whether it was deleted meanwhile); NoSuchDataset when gone."""
        try:
            return os.stat(self.path)
        except OSError:
            raise self._gone_error() from None

    def _deleted_since(self, seen: os.stat_result) -> bool:
        """True when the folder seen before is no longer at :attr:`path` (deleted, perhaps stored again since):
        a folder of the store is only ever renamed away whole, never emptied in place."""
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        return (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino)

    def _gone_error(self) -> NoSuchDataset:
        return NoSuchDataset(f"No dataset {self.sha[:12]} in {self.path.parent}: it was deleted")

    @property
    def meta(self) -> dict:
        """The dataset's settings, checked: the fields' types, and a ``file`` that is a plain file of the dataset's
        own folder. Raises :class:`BrokenDataset` (a ValueError naming the file and the fix) when damaged, and
        :class:`NoSuchDataset` (a KeyError) when the dataset was deleted (also while it was being read)."""
        seen = self._seen()
        meta_file = self.path / META_FILE
        try:
            if self.path.is_symlink() or not is_inside(self.path, self.path.parent):
                raise CorruptFile(self.path, "the dataset folder is a symbolic link to elsewhere; it is not read")
            if meta_file.is_symlink():
                raise CorruptFile(meta_file, "is a symbolic link; only a plain meta.json is read")
            meta = read_json(meta_file)
            problem = meta_problem(meta)
            if problem is not None:
                raise CorruptFile(meta_file, problem)
            try:
                raw = own_file(self.path, meta["file"])
            except ValueError as exc:
                raise CorruptFile(
                    meta_file, f"its 'file' is refused: {exc}; a dataset reads only its own file"
                ) from None
            if not raw.is_file():
                raise CorruptFile(raw, "the dataset's file is missing")
        except CorruptFile as exc:
            if self._deleted_since(seen):
                raise self._gone_error() from None
            raise BrokenDataset(
                f"dataset {self.sha[:12]} is damaged: {exc}. Fix: upload the same file again to "
                f"repair it, or delete it (`python -m engine delete dataset {self.sha[:12]}` removes the folder "
                f"{self.path})."
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
        return _purpose(self.meta)

    @property
    def missing_values(self) -> dict[str, list[float]]:
        """The numbers read as missing, ``{column: [numbers]}`` (see :func:`engine.data.leads.treat_missing`).
        Raises ValueError naming the file and the fix when ``meta.json`` holds a damaged one (hand-edited)."""
        try:
            return parse_missing_values(self.meta.get("missing_values"))
        except LeadDataError as exc:
            raise ValueError(
                f"the numbers read as missing of dataset {self.name!r} are not usable: {exc} The setting is "
                f"ignored until it is fixed in {self.path / META_FILE}, or cleared on the Data page."
            ) from None

    @property
    def kinds(self) -> dict[str, str]:
        """The column kinds the user set (``{column: kind}``, the Data page), the default of every training of this
        dataset from the Train page. Raises ValueError naming the file and the fix when ``meta.json`` holds a
        damaged one (hand-edited)."""
        try:
            return parse_kinds(self.meta.get("kinds"))
        except LeadDataError as exc:
            raise ValueError(
                f"the column kinds of dataset {self.name!r} are not usable: {exc} The setting is ignored until it is "
                f"fixed in {self.path / META_FILE}, or cleared on the Data page."
            ) from None

    def label(self) -> str:
        m = self.meta
        synth = " (synthetic)" if m.get("synthetic") else ""
        what = "leads to score" if m["kind"] == "leads" and self.purpose == "scoring" else m["kind"]
        version = f" v{m['version']}" if type(m.get("version")) is int else ""
        return f"{m.get('name') or self.sha[:12]}{version}{synth} — {what} [{self.sha[:8]}]"

    def _reading(self, read):
        """``read(raw_path)``; NoSuchDataset when the dataset is deleted while it is read."""
        seen = self._seen()
        path = self.raw_path
        try:
            return read(path)
        except Exception:
            if self._deleted_since(seen):
                raise self._gone_error() from None
            raise

    def read_bytes(self) -> bytes:
        return self._reading(Path.read_bytes)

    @property
    def filename(self) -> str:
        """The name the file was uploaded under (what messages call it)."""
        return self.meta.get("filename") or self.raw_path.name

    def load_frame(self):
        """The raw table as a DataFrame (leads) or the transcript records' frame (transcripts)."""
        filename = self.filename
        if self.kind == "leads":
            from engine.data.leads import read_table  # heavy: loads pandas

            return self._reading(lambda path: read_table(path, filename=filename))
        from engine.data.transcripts import load_transcripts  # heavy: loads pandas

        return self._reading(lambda path: load_transcripts(path, filename=filename).X)


class DatasetStore:
    """Datasets under ``<workspace>/datasets``, keyed by content hash."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else workspace() / "datasets"
        self.root.mkdir(parents=True, exist_ok=True)
        #: datasets the last :meth:`list` left out, ``{sha: why}``
        self.problems: dict[str, str] = {}

    def _lock(self):
        """The store's lock (threads and processes): held by every change of the store. Its file lies beside
        the store (``.datasets.lock``), so that the store's folder holds datasets only."""
        return locked(self.root.resolve())

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
        filename = upload_name(filename)
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        settings = _checked(settings, extra=ORIGINS)
        sha = content_hash(data)
        folder = self.root / sha
        ext = Path(filename).suffix.lower()
        ext = ext if re.fullmatch(r"\.[a-z0-9]{1,12}", ext) else ".csv"  # the store's own name: data.<ext>
        changes = {**({"name": name} if name else {}), **settings}
        existing = self._stored_meta(folder)
        checked = existing is None
        if checked:  # a new upload: checked before anything (even its folder) exists, outside the lock
            check_upload(data, filename, kind or guess_kind(filename))
        with self._lock():  # the first creation, or a settings change, by one writer at a time
            existing = self._stored_meta(folder)
            if existing is None and not checked:  # deleted since the look above: a new upload after all
                check_upload(data, filename, kind or guess_kind(filename))
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
            meta = {
                "name": name or Path(filename).stem,
                "kind": kind or guess_kind(filename),
                "file": f"data{ext}",
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
            if os.path.lexists(folder):  # a damaged dataset (or a link planted in its place): replaced whole
                _remove(self._to_trash(folder))
            self._create(folder, data, meta)
        return Dataset(folder)

    def add_version(self, sha: str, data: bytes, origin: dict | None = None) -> Dataset:
        """A new version of dataset ``sha``: ``data`` (the whole table, e.g. its rows plus the outcomes that came back)
        stored as a dataset of its own, with the settings of ``sha`` and ``version_of`` (the first version's sha),
        ``version`` (1 + the family's highest, numbered under the store's lock so two versions added at once get two
        numbers), ``parent`` (``sha``) and ``origin`` (where its new rows came from). Earlier versions are kept and
        stay readable. The same bytes again are the version stored before (nothing changes)."""
        base = self.get(sha)
        meta = base.meta
        data = bytes(data)
        check_upload(data, meta.get("filename") or meta["file"], meta["kind"])
        new_sha = content_hash(data)
        folder = self.root / new_sha
        with self._lock():
            if self._stored_meta(folder) is not None:
                return Dataset(folder)
            family = meta.get("version_of") if isinstance(meta.get("version_of"), str) else base.sha
            number = 1 + max((version_number(d) for d in self.versions(family)), default=1)
            kept = {k: meta[k] for k in (*SETTINGS, *ORIGINS, "kind", "filename") if k in meta}
            version_meta = {
                **kept,
                "file": meta["file"],
                "bytes": len(data),
                "sha256": new_sha,
                "added": time.time(),
                "version_of": family,
                "version": number,
                "parent": base.sha,
                "origin": origin or {},
            }
            if os.path.lexists(folder):  # a damaged dataset in its place: replaced whole
                _remove(self._to_trash(folder))
            self._create(folder, data, jsonable(version_meta, fallback=str))
        return Dataset(folder)

    def versions(self, sha: str) -> list[Dataset]:
        """Every version of the dataset family of ``sha`` (its first version and those added to it), oldest
        first."""
        first = self.get(sha)
        family = first.meta.get("version_of") if isinstance(first.meta.get("version_of"), str) else first.sha
        found = [d for d in self.list() if d.sha == family or d.meta.get("version_of") == family]
        return sorted(found, key=version_number)

    def _create(self, folder: Path, data: bytes, meta: dict) -> None:
        """Write the dataset under a hidden name and rename it into place: readers never see half of it."""
        building = self.root / f"{NEW_PREFIX}{folder.name[:16]}-{secrets.token_hex(4)}"
        building.mkdir()
        try:
            write_bytes(building / meta["file"], data)
            _write_meta(building, meta)
            os.rename(building, folder)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise

    def _to_trash(self, folder: Path) -> Path:
        """Rename a dataset's folder to a hidden trash name (one step: it is gone for every reader); raises
        :class:`NoSuchDataset` when it is not there. Call with the store's lock held."""
        trash = self.root / f"{TRASH_PREFIX}{folder.name[:16]}-{secrets.token_hex(4)}"
        try:
            os.rename(folder, trash)
        except FileNotFoundError:
            raise NoSuchDataset(f"No dataset {folder.name[:12]} in {self.root}: it was deleted") from None
        return trash

    @staticmethod
    def _stored_meta(folder: Path) -> dict | None:
        """The dataset's meta when it is stored and readable with its raw file; ``None`` when it is not
        stored yet or is damaged (so that the upload stores it again, which repairs it)."""
        if not (folder / META_FILE).exists():
            return None
        try:
            return Dataset(folder).meta  # checks that its raw file is there
        except (BrokenDataset, NoSuchDataset):
            return None

    def update(self, sha: str, **settings: Any) -> Dataset:
        """Change a dataset's settings (name, target, leak policy, excluded columns...). Raises ValueError for
        an unknown setting or a value of the wrong type, :class:`NoSuchDataset` when there is no such dataset."""
        settings = _checked(settings, extra=("rows", "columns"))
        ds = self.get(sha)
        with self._lock():
            _write_meta(ds.path, {**ds.meta, **settings})  # ds.meta: NoSuchDataset when deleted meanwhile
        return ds

    def treat_as_missing(self, sha: str, column: str, value: float, missing: bool = True) -> dict[str, list[float]]:
        """Read ``value`` of ``column`` as missing (with a flag column) in training, or stop doing so
        (``missing=False``: the undo), changing only that entry of the setting under the store's lock, so that
        concurrent changes of other entries or settings are all kept. Returns the new setting; raises ValueError
        when the stored one is damaged (clear it with ``update(sha, missing_values={})``) or the change is
        unusable (a value that is not a number, too many values)."""
        ds = self.get(sha)
        with self._lock():
            setting = ds.missing_values
            values = [v for v in setting.get(column, []) if v != value]
            setting[column] = values + [value] if missing else values
            meta = {**ds.meta, **_checked({"missing_values": setting})}
            _write_meta(ds.path, meta)
        return meta["missing_values"]

    def set_kind(self, sha: str, column: str, kind: str | None) -> dict[str, str]:
        """Read ``column`` as ``kind`` in this dataset's trainings (``None``: as inferred again), changing only that
        entry of the ``kinds`` setting under the store's lock, so that concurrent changes of other columns or
        settings are all kept; the uploaded file is never touched. Returns the new setting; raises ValueError for
        a kind that cannot be set (naming the kinds) or a damaged stored setting (clear it with
        ``update(sha, kinds={})``)."""
        ds = self.get(sha)
        with self._lock():
            setting = ds.kinds
            setting.pop(column, None)
            if kind is not None:
                setting[column] = kind
            meta = {**ds.meta, **_checked({"kinds": setting})}
            _write_meta(ds.path, meta)
        return meta["kinds"]

    def _folders(self, key: str) -> list[Path]:
        """The store's entries whose name starts with ``key`` (hex): folders, and links (a damaged dataset)."""
        return [p for p in self.root.glob(f"{key}*") if p.is_dir() or p.is_symlink()]

    def delete(self, sha: str) -> str:
        """Remove a dataset (its raw file and settings; a damaged one too, a link only as a link) and return its
        full sha256: the only way a stored dataset goes away. Runs trained on it are kept (they name the dataset
        by its sha256). One step under the store's lock (its folder is renamed to a hidden trash name, then
        removed), so readers see the dataset or nothing, and of two deletes of one dataset one deletes it, the
        other raises :class:`NoSuchDataset`. Raises NoSuchDataset (a KeyError) when there is no such dataset (or
        the prefix is not unique)."""
        key = str(sha).strip().lower()
        if not SHA_PATTERN.fullmatch(key):
            raise NoSuchDataset(
                f"No dataset {sha!r} in {self.root} (a dataset id is the sha256 of its file, at least 6 hex digits)"
            )
        matches = self._folders(key)
        exact = self.root / key
        if exact in matches:
            matches = [exact]
        if len(matches) != 1:
            raise NoSuchDataset(
                f"No dataset {sha!r} in {self.root}"
                if not matches
                else f"{sha!r} names {len(matches)} datasets in {self.root}; give more of its sha256"
            )
        folder = matches[0]
        with self._lock():
            trash = self._to_trash(folder)
        _remove(trash)
        self.problems.pop(folder.name, None)
        for left in self.root.glob(f"{TRASH_PREFIX}*"):  # what an interrupted delete left
            _remove(left)
        return folder.name

    def get(self, sha: str) -> Dataset:
        """The dataset with this sha256 (or unique prefix of at least 6 hex digits). Raises
        :class:`NoSuchDataset` (a KeyError) when there is none and :class:`BrokenDataset` (a ValueError naming the
        file) when it is damaged."""
        key = str(sha).strip().lower()
        if not SHA_PATTERN.fullmatch(key):
            raise NoSuchDataset(
                f"No dataset {sha!r} in {self.root} (a dataset id is the sha256 of its file, at least 6 hex digits)"
            )
        folder = self.root / key
        if not (folder / META_FILE).exists():
            matches = [p for p in self._folders(key) if (p / META_FILE).exists()]
            if len(matches) != 1:
                raise NoSuchDataset(f"No dataset {sha!r} in {self.root}")
            folder = matches[0]
        ds = Dataset(folder)
        _ = ds.meta  # raises BrokenDataset, naming the file, or NoSuchDataset when deleted meanwhile
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
        recorded in :attr:`problems`; hidden folders (a dataset being written or removed) are skipped."""
        found = []
        self.problems = {}
        for folder in self.root.iterdir():
            if folder.name.startswith(".") or not (folder / META_FILE).exists():
                continue
            ds = Dataset(folder)
            try:
                meta = ds.meta
            except NoSuchDataset:  # deleted while the store was listed
                continue
            except BrokenDataset as exc:
                self.problems[folder.name] = str(exc)
                continue
            if purpose is not None and _purpose(meta) != purpose:
                continue
            if kind is None or meta.get("kind") == kind:
                found.append((meta.get("added") or 0, ds))
        return [ds for _, ds in sorted(found, key=lambda t: t[0], reverse=True)]

    def broken(self) -> dict[str, str]:
        """``{sha: why}`` of every damaged dataset (lists the store)."""
        self.list()
        return dict(self.problems)


def version_number(ds: Dataset) -> int:
    """A dataset's version (:meth:`DatasetStore.add_version`): 1 for one stored as uploaded."""
    value = ds.meta.get("version")
    return value if type(value) is int and value >= 1 else 1


def check_upload(data: bytes, filename: str | None, kind: str) -> None:
    """Cheap checks of an upload before anything is stored or parsed: not empty, a readable format, and
    within the row, column and size limits of :mod:`engine.data.leads` / :mod:`engine.data.transcripts`
    (counted from the file's metadata or its lines, never from a parsed table). Raises ``ValueError``
    (:class:`~engine.data.leads.LeadDataError` or :class:`~engine.data.transcripts.TranscriptDataError`)
    whose message names ``filename``; a header-only table passes (the readers say it has no rows)."""
    if kind == "leads":
        from engine.data.leads import check_table  # heavy: loads pandas

        check_table(data, filename)
    elif kind == "transcripts":
        from engine.data.transcripts import check_transcripts  # heavy: loads pandas

        check_transcripts(data, filename)
    else:
        raise ValueError(f"kind must be 'leads' or 'transcripts', not {kind!r}")
