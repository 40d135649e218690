"""The registry of approaches: name -> ``"module:Class"``, for the approaches that ship, those added with
:func:`register`, and plug-ins (entry points, :data:`PLUGIN_ENV`). A class is imported only when it is asked for.

Nothing here imports NumPy, pandas or scikit-learn (nor :mod:`engine.approaches.base`, which does): the run
store, scoring, the CLI's start-up and job specs ask for names and hooks without loading an approach.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from engine.runspec import APPROACH_NAME

#: The file in a saved approach's folder that names the approach and holds its parameters.
PARAMS_FILE = "approach.json"

#: name -> "module:Class" of the approaches that ship. Modules are imported only when the approach is asked for.
REGISTRY: dict[str, str] = {
    "stacking": "engine.approaches.stacking:StackingApproach",
    "lora": "engine.approaches.lora:LoraApproach",
    "embeddings": "engine.approaches.embeddings:EmbeddingApproach",
}
#: Approaches a run can hold that are not trained on a table, so never offered for training (not in
#: :func:`approach_names`), only loaded: a blend of stored runs (:mod:`engine.blend`). No plug-in can take the name.
DERIVED: dict[str, str] = {"blend": "engine.approaches.blend:BlendApproach"}
#: Where more approaches come from: an installed package's entry points in this group (``name = "module:Class"``),
#: and ``CLAB_APPROACHES="name=module:Class;..."`` in the environment (set by whoever runs the service, like
#: ``PYTHONPATH``; jobs inherit it). Neither can replace an approach that ships.
PLUGIN_GROUP = "conversion_lab.approaches"
PLUGIN_ENV = "CLAB_APPROACHES"
_NAME = re.compile(APPROACH_NAME)
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ADDED: dict[str, str] = {}


#: Plug-in entries that could not be used, with why (shown by the CLI and the pages; the rest still work).
PLUGIN_PROBLEMS: dict[str, str] = {}


@functools.cache
def _entry_points() -> tuple[tuple[str, str], ...]:
    """The installed packages' approach entry points, read once a process (a scan of every package's metadata,
    milliseconds each time; installing a package means restarting the service anyway)."""
    try:
        return tuple((point.name, point.value) for point in importlib.metadata.entry_points(group=PLUGIN_GROUP))
    except Exception:  # noqa: BLE001 - a broken package's metadata must not hide the approaches that ship
        return ()


def _plugins() -> dict[str, str]:
    found: dict[str, str] = dict(_entry_points())
    for item in os.environ.get(PLUGIN_ENV, "").split(";"):
        name, _, target = item.strip().partition("=")
        if name.strip():
            found[name.strip()] = target.strip()
    good = {}
    for name, target in found.items():
        if not _NAME.match(name) or not _TARGET.match(target):
            PLUGIN_PROBLEMS[name] = (
                f"approach plug-in {name!r} = {target!r} is not NAME=module:Class (a lowercase name of at most 32 "
                f"characters); fix {PLUGIN_ENV} or the package's {PLUGIN_GROUP!r} entry point"
            )
            continue
        good[name] = target
    return good


def registry() -> dict[str, str]:
    """Every approach that can be used: the shipped ones, then :func:`register`-ed and plugged-in ones."""
    return {k: v for k, v in {**_plugins(), **_ADDED, **REGISTRY}.items() if k not in DERIVED}


def approach_names() -> list[str]:
    return list(registry())


def register(name: str, target: str) -> None:
    """Add an approach for this process (``target`` is ``"module:Class"``); what it takes and does is read from
    the class's hooks. For jobs (other processes), use :data:`PLUGIN_ENV` or an entry point."""
    if name in REGISTRY or name in DERIVED:
        raise ValueError(f"{name!r} is an approach that ships; choose another name")
    _ADDED[name] = target


def input_kinds(name: str | None = None) -> dict[str, tuple[str, ...]] | tuple[str, ...]:
    """The inputs each approach takes (``{name: kinds}``), or one approach's, from its class."""
    if name is not None:
        return tuple(get_approach_class(name).input_kinds)
    return {n: tuple(get_approach_class(n).input_kinds) for n in registry()}


def approach_hook(name: str | None, hook: str, default: Any = None) -> Any:
    """A class hook of the approach called ``name`` (:class:`Approach`'s attributes), or ``default`` for a name
    that is not registered (a damaged run's) or whose module cannot be imported."""
    if not isinstance(name, str) or (name not in registry() and name not in DERIVED):
        return default
    try:
        return getattr(get_approach_class(name), hook, default)
    except (ImportError, AttributeError):
        return default


def get_approach_class(name: str) -> type:
    """The :class:`~engine.approaches.base.Approach` subclass registered as ``name`` (its module imported now)."""
    known = {**registry(), **DERIVED}
    if name not in known:
        raise KeyError(f"Unknown approach {name!r}; choose one of {sorted(known)}")
    module_name, class_name = known[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    # The class's module has imported the base by now; looked up, not imported, so that this module stays light.
    base = sys.modules.get("engine.approaches.base")
    if base is None or not (isinstance(cls, type) and issubclass(cls, base.Approach)) or cls.name != name:
        raise TypeError(f"{known[name]} is not the Approach subclass named {name!r}")
    return cls


def load_approach(path: str | Path) -> Any:
    """Load a saved approach (an :class:`~engine.approaches.base.Approach`) from its folder, whatever its kind."""
    name = json.loads((Path(path) / PARAMS_FILE).read_text())["approach"]
    return get_approach_class(name).load(path)
