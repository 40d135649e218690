"""Which leak-policy presets apply to a given lead table.

The presets of :data:`engine.data.leads.LEAK_PRESETS` (``default``: fields filled in after contact; ``strict``:
also the last activity) name X Education's CRM fields: Tags, Lead Quality, Asymmetrique..., Last Activity. On
another company's export they leave out nothing, so offering them there only misleads: the choice is then
``none`` plus the columns the user excludes (the leak finder's suggestions among them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.data.leads import LEAK_PRESETS, _check_policy, describe_policy

__all__ = ["effective_policy", "leak_presets_for", "left_out"]


def leak_presets_for(columns: Iterable[Any]) -> list[str]:
    """The presets that mean something for a table with these columns, in :data:`LEAK_PRESETS`'s order: ``none``
    always; ``default`` and ``strict`` only when they leave out a column of this table, ``strict`` only when it
    leaves out more than ``default``."""
    cols = list(columns)
    dropped = {name: describe_policy(cols, name) for name in LEAK_PRESETS}
    return [
        name
        for name in LEAK_PRESETS
        if name == "none" or (dropped[name] and (name != "strict" or len(dropped[name]) > len(dropped["default"])))
    ]


def effective_policy(columns: Iterable[Any], leak_policy: str | None = "default") -> str:
    """The preset that does to this table what ``leak_policy`` does: ``leak_policy`` itself when
    :func:`leak_presets_for` offers it, else the closest one it offers (``strict`` without the activity columns is
    ``default``; a preset that leaves out no column of the table is ``none``)."""
    policy = _check_policy(leak_policy)
    offered = leak_presets_for(columns)
    if policy in offered:
        return policy
    return "default" if policy == "strict" and "default" in offered else "none"


def left_out(columns: Iterable[Any], leak_policy: str | None = "default", exclude: Any = None, include: Any = None):
    """``(by the preset, by the user)``: the columns the leak policy's preset leaves out and those added by
    ``exclude``, each in column order (``include`` puts preset columns back)."""
    cols = list(columns)
    policy = effective_policy(cols, leak_policy)
    preset = describe_policy(cols, policy, None, include)
    every = describe_policy(cols, policy, exclude, include)
    return preset, [c for c in every if c not in preset]
