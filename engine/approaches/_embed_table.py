"""A lead table with text columns, for the embeddings approach: the text columns are embedded, the other fields
encoded beside the embedding (Issue 24 §2).

:func:`split_columns` reads the columns' kinds (the training table's, the user's included, else
:func:`engine.data.leads.infer_kinds`): the ``text`` columns are what the model embeds, the rest (identifiers and
dates left out) go through the :class:`~engine.approaches.embeddings_parts.MetadataEncoder`. A table without a text
column gives ``([], [])``: the caller keeps its whole-row serialization. :func:`table_texts` writes a row's text
cells as ``Column: text`` lines in column order (missing and blank cells skipped, each cut to
:data:`~engine.approaches._stack_text.MAX_CHARS` characters, bytes decoded, lone surrogates replaced), ``""`` for a row without text.
:func:`field_occlusion` names the fields for a head without exact SHAP (the hybrid): each field's encoded
features set to its training median / most frequent value, the row scored again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.approaches._stack_text import MAX_CHARS, cell_texts

#: Kinds never encoded as a field: identifiers (carried through scoring), dates (never a feature), empty columns.
NOT_FIELDS = ("identifier", "date", "empty")


def split_columns(X: pd.DataFrame, given: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """``(text columns, field columns)`` of a lead table, in column order; ``([], [])`` when none is text."""
    from engine.data.leads import kinds_given_else_inferred

    kinds = kinds_given_else_inferred(X, given)
    text = [c for c in X.columns if kinds.get(str(c)) == "text"]
    if not text:
        return [], []
    return text, [c for c in X.columns if c not in text and kinds.get(str(c)) not in NOT_FIELDS]


def table_texts(X: pd.DataFrame, text_columns: list, max_chars: int = MAX_CHARS) -> list[str]:
    """Each row's text cells as ``Column: text`` lines (column order; blank cells skipped; ``""`` when none)."""
    frame = X.reindex(columns=text_columns)
    cells = [cell_texts(frame.iloc[:, j].to_numpy(dtype=object), max_chars) for j in range(len(text_columns))]
    out = []
    for r in range(len(frame)):
        lines = [f"{name}: {col[r].strip()}" for name, col in zip(text_columns, cells) if col[r].strip()]
        out.append("\n".join(lines))
    return out


def split_line(text_columns: list, field_columns: list, encoded: list) -> str:
    """The fit log's line: what is embedded, what is encoded beside it, what the encoder left out."""
    left = [str(c) for c in field_columns if c not in set(encoded)]
    fields = ", ".join(map(str, encoded)) or "none"
    line = f"embedding the text columns ({', '.join(map(str, text_columns))}); fields encoded beside them: {fields}"
    return line + (f" (not encoded: {', '.join(left)}: no variation, or too many distinct values)" if left else "")


def _baseline(encoder) -> np.ndarray:
    """The encoder's features of a lead whose every field sits at its training median / most frequent value (a
    time at its missing value)."""
    row = {}
    for item in encoder.spec:
        if item["kind"] == "numeric":
            row[item["column"]] = item["median"]
        elif item["kind"] == "category":
            row[item["column"]] = item["categories"][0]  # the categories are kept most frequent first
        else:
            row[item["column"]] = None
    return encoder.transform(pd.DataFrame([row], dtype=object))[0]


def field_occlusion(model, X: pd.DataFrame, which: str, label) -> list[dict]:
    """Per row and encoded field: p(lead) - p(lead with that field at its training median / most frequent value),
    one batched head call per field (the embeddings are computed once)."""
    encoder = model.metadata_encoder_
    names = encoder.feature_names
    features = model._features(X, which)
    start = features.shape[1] - len(names)
    baseline = _baseline(encoder)
    head = model.classifiers_[which]
    full = head.predict_proba(model._head_input(features, X))[:, 1]
    meta = model._metadata_frame(X).reset_index(drop=True)
    rows = []
    for column in dict.fromkeys(c for _, c in names):
        idx = [start + j for j, (_, c) in enumerate(names) if c == column]
        changed = features.copy()
        changed[:, idx] = baseline[[i - start for i in idx]]
        p = head.predict_proba(model._head_input(changed, X))[:, 1]
        for r in range(len(X)):
            cell = meta.at[r, column] if column in meta.columns else None
            rows.append(
                {
                    "row": r,
                    "feature": label(column),
                    "value": "" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else str(cell),
                    "contribution": float(full[r] - p[r]),
                }
            )
    return rows
