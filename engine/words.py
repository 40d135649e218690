"""Small helpers for the words the engine and the pages say to people."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` agreeing in number, with thousands separators: ``1 point``, ``2 points``, ``1,200 leads``;
    ``many`` for a plural that is not ``word + "s"`` (``plural(2, "entry", "entries")``)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
