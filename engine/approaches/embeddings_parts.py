"""The parts the embeddings approach is built from: the sentence-transformers models (found by path, loaded once
a process), a transcript's sentences, and the metadata encoder (numbers scaled, categories one-hot, ISO times as
hour and weekday; JSON, never pickled). :mod:`engine.approaches.embeddings` re-exports these names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import onnx_encoder
from engine.config import cache_dir
from engine.models import minilm_path

_MODEL_CACHE: dict[str, Any] = {}


# -- model loading ---------------------------------------------------------------------------------
def base_model_path(base_model: str | None = None) -> str:
    """Folder of the base MiniLM (the shipped one unless ``base_model`` names a local folder)."""
    if base_model:
        if not Path(base_model).exists():
            raise FileNotFoundError(
                f"Base model folder {base_model} not found. Fix: pass a local "
                "sentence-transformers folder, or leave base_model unset for the shipped MiniLM."
            )
        return str(base_model)
    return str(minilm_path())


def load_sentence_model(path: str, cached: bool = True):
    """A SentenceTransformer on CPU, loaded by path (offline); the base model is cached per process."""
    from sentence_transformers import SentenceTransformer

    if cached and path in _MODEL_CACHE:
        return _MODEL_CACHE[path]
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.eval()
    if cached:
        _MODEL_CACHE[path] = model
    return model


def embedding_dimension(model) -> int:
    """Width of a SentenceTransformer's embeddings (the method was renamed in sentence-transformers 6)."""
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(method())


def generic_onnx_graph(base_model: str | None = None) -> Path:
    """The int8 ONNX graph of the base MiniLM (or ``base_model``), exported once into the cache folder."""
    path = base_model_path(base_model)
    return onnx_encoder.cached_export(lambda: load_sentence_model(path), path, Path(cache_dir()) / "onnx")


# -- text helpers -------------------------------------------------------------------------------
def split_sentences(text: str) -> list[str]:
    """Sentences of a transcript: one per line, lines split further at ``. ! ?``."""
    units = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        speaker = ""
        match = re.match(r"^([A-Za-z][\w .'-]{0,30}:)\s*(.*)$", line)
        if match:
            speaker, line = match.group(1) + " ", match.group(2)
        parts = [p for p in re.split(r"(?<=[.!?])\s+", line) if p.strip()]
        for j, part in enumerate(parts):
            units.append((speaker if j == 0 else "") + part.strip())
    return units or [text.strip()]


def _truncate(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class MetadataEncoder:
    """Metadata columns -> numeric features: numbers scaled, categories one-hot, ISO times -> hour, weekday.

    Its state is plain JSON (``to_dict`` / ``from_dict``).
    """

    MAX_CATEGORIES = 30

    def __init__(self, spec: list[dict] | None = None):
        self.spec = spec or []

    def fit(self, frame: pd.DataFrame) -> MetadataEncoder:
        spec = []
        for column in frame.columns:
            s = frame[column]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                values = pd.to_numeric(s, errors="coerce").astype(float)
                if values.notna().sum() == 0 or values.nunique() < 2:
                    continue
                spec.append(
                    {
                        "column": column,
                        "kind": "numeric",
                        "median": float(values.median()),
                        "mean": float(values.fillna(values.median()).mean()),
                        "std": float(values.fillna(values.median()).std() or 1.0),
                    }
                )
                continue
            text = s.astype("object").where(s.notna(), None)
            filled = text.dropna().astype(str)
            if filled.empty or filled.nunique() < 2:
                continue
            times = (
                pd.to_datetime(filled, errors="coerce", format="ISO8601")
                if filled.str.match(r"^\d{4}-\d{2}-\d{2}").mean() > 0.9
                else None
            )
            if times is not None and times.notna().mean() > 0.9:
                spec.append({"column": column, "kind": "time"})
                continue
            counts = filled.value_counts()
            if len(counts) > self.MAX_CATEGORIES and counts.iloc[: self.MAX_CATEGORIES].sum() < 0.8 * len(filled):
                continue  # identifier-like or free text: left out
            spec.append(
                {
                    "column": column,
                    "kind": "category",
                    "categories": [str(c) for c in counts.index[: self.MAX_CATEGORIES]],
                }
            )
        self.spec = spec
        return self

    @property
    def feature_names(self) -> list[tuple[str, str]]:
        """(feature name, source column) per output feature."""
        names = []
        for item in self.spec:
            column = item["column"]
            if item["kind"] == "numeric":
                names.append((column, column))
            elif item["kind"] == "time":
                names += [(f"{column} hour", column), (f"{column} weekday", column)]
            else:
                names += [(f"{column}={c}", column) for c in item["categories"]]
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        n = len(frame)
        for item in self.spec:
            column = item["column"]
            s = frame[column] if column in frame.columns else pd.Series([None] * n, index=frame.index)
            if item["kind"] == "numeric":
                v = pd.to_numeric(s, errors="coerce").astype(float).fillna(item["median"]).to_numpy()
                blocks.append(((v - item["mean"]) / item["std"])[:, None])
            elif item["kind"] == "time":
                t = pd.to_datetime(s.astype("object").where(s.notna(), None), errors="coerce", format="ISO8601")
                hour = (t.dt.hour.fillna(12).to_numpy(dtype=float) - 12.0) / 6.0
                weekday = (t.dt.weekday.fillna(2).to_numpy(dtype=float) - 2.0) / 2.0
                blocks.append(np.column_stack([hour, weekday]))
            else:
                values = s.astype("object").where(s.notna(), None).map(lambda v: None if v is None else str(v))
                blocks.append(np.column_stack([(values == c).to_numpy(dtype=float) for c in item["categories"]]))
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def to_dict(self) -> dict:
        return {"spec": self.spec}

    @classmethod
    def from_dict(cls, payload: dict) -> MetadataEncoder:
        return cls(payload.get("spec", []))
