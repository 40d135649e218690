"""The leak policy presets: which columns a training leaves out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.data.leads.words import _norm
from engine.data.missing_values import (
    LeadDataError,
)

#: Columns left out by each leak-policy preset (matched case- and whitespace-insensitively).
#: ``default``: fields the sales team fills in after contacting the lead (see
#: shared/data/leads/SOURCE.md). ``strict`` also drops the last recorded activity, which may
#: postdate the contact. ``none`` keeps everything.
_AFTER_CONTACT = [
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
]


LEAK_PRESETS: dict[str, list[str]] = {
    "default": _AFTER_CONTACT,
    "none": [],
    "strict": [*_AFTER_CONTACT, "Last Activity", "Last Notable Activity"],
}


def _as_list(names: Any) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        return [p.strip() for p in names.split(",") if p.strip()]
    return [str(n) for n in names]


def _check_policy(leak_policy: str | None) -> str:
    policy = "default" if leak_policy is None else str(leak_policy).strip().lower()
    if policy not in LEAK_PRESETS:
        raise LeadDataError(
            f"unknown leak policy {leak_policy!r}. Choose one of: {', '.join(LEAK_PRESETS)} "
            "(and add columns with exclude / include)."
        )
    return policy


def describe_policy(
    columns: Iterable[Any], leak_policy: str = "default", exclude: Any = None, include: Any = None
) -> list[str]:
    """Columns (spelled as in ``columns``) that the leak policy leaves out, in column order.

    Excluded = preset columns + ``exclude`` - ``include``; names match case- and
    whitespace-insensitively; names not present are ignored.
    """
    policy = _check_policy(leak_policy)
    drop = {_norm(c) for c in LEAK_PRESETS[policy]} | {_norm(c) for c in _as_list(exclude)}
    keep = {_norm(c) for c in _as_list(include)}
    return [str(c) for c in columns if _norm(c) in drop and _norm(c) not in keep]
