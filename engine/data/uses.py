"""What part of a lead table a run trains on: ``use`` = ``table`` | ``text`` | ``both`` (the default).

``table`` leaves the text columns out (kind ``text``: call notes, a joined ``call``), ``text`` keeps only them,
``both`` keeps every feature. Runs of one dataset and split that differ only by ``use`` sit together on the board,
which says what the text is worth (both minus the better part, a paired interval on the same test rows). A column
left out this way is recorded in the run's ``dropped`` with the reason, so scoring knows it and a file that carries
it is not "unknown".
"""

from __future__ import annotations

import dataclasses

#: The values of ``use``, and the default.
USES = ("table", "text", "both")
DEFAULT_USE = "both"
TEXT_KIND = "text"
#: How a run's name says what it trained on (the dashboard's run labels, the CLI's run lines).
USE_NAMES = {"table": "table only", "text": "text only", "both": "table + text"}


def check_use(use) -> str:
    """``use`` if it is one of :data:`USES`; a ValueError naming them otherwise."""
    if not isinstance(use, str) or use not in USES:
        raise ValueError(
            f"use must be one of {', '.join(USES)} (the table's fields, its text columns, or both), not {use!r}"
        )
    return use


def apply_use(table, use: str):
    """A :class:`engine.data.leads.LeadTable` with only the features ``use`` asks for (the same table for
    ``both``). A ``text`` run on a table without a text column, or a ``table`` run on one with nothing but text,
    is refused naming the fix."""
    check_use(use)
    if use == DEFAULT_USE:
        return table
    text = [c for c in table.X.columns if table.kinds.get(c) == TEXT_KIND]
    if use == "text":
        if not text:
            raise ValueError(
                "--use text needs a text column, and this table has none (no column reads as free text). "
                "Fix: join the leads with their calls first (python -m engine join, or Join on the Data page), "
                "or train with --use both."
            )
        keep, why = text, "a field (the run uses the text columns only: use text)"
    else:
        keep = [c for c in table.X.columns if c not in text]
        if not keep:
            raise ValueError("--use table leaves no column: every feature of this table is text. Fix: --use text.")
        why = "text (the run uses the table's fields only: use table)"
    left_out = {c: why for c in table.X.columns if c not in keep}
    return dataclasses.replace(
        table,
        X=table.X[keep],
        kinds={c: k for c, k in table.kinds.items() if c in keep},
        dropped={**table.dropped, **left_out},
    )


def text_columns(kinds: dict[str, str]) -> list[str]:
    """The text columns among a run's kinds."""
    return [c for c, k in kinds.items() if k == TEXT_KIND]


def use_name(use, kinds: dict[str, str] | None) -> str | None:
    """What a run's name says it trained on (:data:`USE_NAMES`), from its ``use`` and its ``kinds``: every use
    names itself on a table with text columns; a run of a table without text (``both``, the default) says
    nothing, as before there was a choice."""
    if use in ("table", "text"):
        return USE_NAMES[use]
    return USE_NAMES["both"] if use == "both" and text_columns(kinds or {}) else None
