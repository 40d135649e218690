"""Dataset store: every uploaded file kept once, by the sha256 of its bytes.

``<workspace>/datasets/<sha>/`` holds the raw file (``data<ext>``, bytes unchanged) and
``meta.json`` (name, kind, original filename, target, leak policy, excluded columns, size,
rows). The folder name equals the ``data_hash`` the loaders compute, so runs
(``spec["data_hash"]``) find their dataset. An upload never replaces another: the same bytes map
to the same folder, different bytes to a new one; only the settings in ``meta.json`` change.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import workspace

KINDS = ("leads", "transcripts")
LEAD_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".parquet", ".pq")
TRANSCRIPT_EXTENSIONS = (".json", ".jsonl", ".ndjson", ".csv")
META_FILE = "meta.json"
#: settings a user may change after the upload
SETTINGS = ("name", "target", "leak_policy", "exclude", "include", "synthetic", "notes")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def guess_kind(filename: str) -> str:
    """"transcripts" for JSON/JSONL files, "leads" otherwise (CSV may be either: pass kind=)."""
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
        return json.loads((self.path / META_FILE).read_text())

    @property
    def name(self) -> str:
        return self.meta.get("name") or self.sha[:12]

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def raw_path(self) -> Path:
        return self.path / self.meta["file"]

    def label(self) -> str:
        m = self.meta
        synth = " (synthetic)" if m.get("synthetic") else ""
        return f"{m.get('name') or self.sha[:12]}{synth} — {m['kind']} [{self.sha[:8]}]"

    def read_bytes(self) -> bytes:
        return self.raw_path.read_bytes()

    def load_frame(self):
        """The raw table as a DataFrame (leads) or the transcript records' frame (transcripts)."""
        if self.kind == "leads":
            from engine.data.leads import read_table

            return read_table(self.raw_path)
        from engine.data.transcripts import load_transcripts

        return load_transcripts(self.raw_path).X


class DatasetStore:
    """Datasets under ``<workspace>/datasets``, keyed by content hash."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else workspace() / "datasets"
        self.root.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes | str | Path, filename: str | None = None, kind: str | None = None,
            name: str | None = None, **settings: Any) -> Dataset:
        """Store a file's bytes (or a path's) and return its dataset. Storing the same bytes twice
        returns the existing dataset (its raw file is never rewritten; given settings update meta)."""
        if isinstance(data, (str, Path)):
            path = Path(data)
            filename = filename or path.name
            data = path.read_bytes()
        data = bytes(data)
        if not data:
            raise ValueError(f"{filename or 'the upload'} is empty (0 bytes); choose the file that holds your data")
        filename = os.path.basename(filename or "data.csv")
        kind = kind or guess_kind(filename)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown dataset setting(s) {sorted(unknown)}; valid: {SETTINGS}")
        sha = content_hash(data)
        folder = self.root / sha
        ext = Path(filename).suffix.lower() or ".csv"
        if not (folder / META_FILE).exists():
            folder.mkdir(parents=True, exist_ok=True)
            raw = folder / f"data{ext}"
            tmp = folder / f".data{ext}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, raw)
            meta = {"name": name or Path(filename).stem, "kind": kind, "file": raw.name, "filename": filename,
                    "bytes": len(data), "sha256": sha, "added": time.time(), "target": None,
                    "leak_policy": "default", "exclude": [], "include": [], "synthetic": False}
            meta.update({k: v for k, v in settings.items() if v is not None})
            self._write_meta(folder, meta)
        elif name or settings:
            self.update(sha, **({"name": name} if name else {}), **settings)
        return Dataset(folder)

    def update(self, sha: str, **settings: Any) -> Dataset:
        """Change a dataset's settings (name, target, leak policy, excluded columns...)."""
        ds = self.get(sha)
        unknown = set(settings) - set(SETTINGS) - {"rows", "columns"}
        if unknown:
            raise ValueError(f"unknown dataset setting(s) {sorted(unknown)}; valid: {SETTINGS}")
        meta = ds.meta
        meta.update(settings)
        self._write_meta(ds.path, meta)
        return ds

    def get(self, sha: str) -> Dataset:
        folder = self.root / sha
        if not (folder / META_FILE).exists():
            matches = [p for p in self.root.glob(f"{sha}*") if (p / META_FILE).exists()] if len(sha) >= 6 else []
            if len(matches) != 1:
                raise KeyError(f"No dataset {sha!r} in {self.root}")
            folder = matches[0]
        return Dataset(folder)

    def find(self, sha: str) -> Dataset | None:
        try:
            return self.get(sha)
        except KeyError:
            return None

    def list(self, kind: str | None = None) -> list[Dataset]:
        """Datasets, newest first."""
        found = []
        for folder in self.root.iterdir():
            if (folder / META_FILE).exists():
                ds = Dataset(folder)
                try:
                    meta = ds.meta
                except (OSError, ValueError):
                    continue
                if kind is None or meta.get("kind") == kind:
                    found.append((meta.get("added", 0), ds))
        return [ds for _, ds in sorted(found, key=lambda t: t[0], reverse=True)]

    @staticmethod
    def _write_meta(folder: Path, meta: dict) -> None:
        tmp = folder / f".{META_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(meta, indent=2, default=str))
        os.replace(tmp, folder / META_FILE)
