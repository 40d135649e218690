"""The scoring API's settings in one place: :class:`ApiSettings`, built once per app (by
:func:`engine.api.create_app`, from its keyword arguments) and passed to its :class:`~engine.api.service.Service`,
and the API key (:func:`api_key`, from ``CLAB_API_KEY``). A new setting is one field of :class:`ApiSettings` with its
default and check: ``create_app(name=...)`` takes it as it is."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass

from engine.api.cache import MAX_CACHED_MODELS

MAX_BATCH = 500
MAX_TRANSCRIPT_CHARS = 200_000
MAX_BODY_BYTES = 10_000_000
#: Seconds of explaining one request may take; rows past it are scored without reasons (said in ``notes``).
EXPLAIN_SECONDS = 20.0
#: Seconds between looks at the runs folder for new, finished or removed runs.
REFRESH_SECONDS = 1.0

#: The environment variable holding the API key clients must send (``X-API-Key``).
API_KEY_ENV = "CLAB_API_KEY"


def api_key() -> str | None:
    """The API key clients must send: ``CLAB_API_KEY``, None when unset or empty. Read at each call (each request),
    so a key set, changed or removed takes effect at once, without restarting the server."""
    return os.environ.get(API_KEY_ENV) or None


@dataclass(frozen=True)
class ApiSettings:
    """The settings of one scoring app (see :mod:`engine.api`: the limits are the checks' caps). Checked when
    built: a count that is not a whole number of at least 1, or seconds that are not a number of 0 or more
    (``inf`` allowed: no budget), is refused with the setting named.

    ``max_batch`` items a request, ``max_transcript_chars`` characters a transcript, ``max_body_bytes`` bytes a body;
    ``max_models`` models kept loaded; ``refresh_seconds`` between looks at the runs folder; ``serialize_scoring``
    scores one batch at a time per model (a lock per model: on few cores that keeps the tail latency low under many
    concurrent clients); ``explain_seconds`` of explaining a request; ``local_only`` (a loopback server): while no
    API key is set, requests whose Host is not loopback get 400 (DNS rebinding; :func:`engine.api.guards.check_host`).
    """

    max_batch: int = MAX_BATCH
    max_transcript_chars: int = MAX_TRANSCRIPT_CHARS
    max_body_bytes: int = MAX_BODY_BYTES
    max_models: int = MAX_CACHED_MODELS
    refresh_seconds: float = REFRESH_SECONDS
    serialize_scoring: bool = True
    explain_seconds: float = EXPLAIN_SECONDS
    local_only: bool = False

    def __post_init__(self):
        for name in ("max_batch", "max_transcript_chars", "max_body_bytes", "max_models"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be a whole number of at least 1, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("refresh_seconds", "explain_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a number of seconds (0 or more), not {value!r}")
            if math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")

    @classmethod
    def build(cls, settings: ApiSettings | None = None, where: str = "ApiSettings", **overrides) -> ApiSettings:
        """``settings`` (the defaults when None) with ``overrides`` (keyword arguments named like the fields).
        An unknown name is a TypeError naming ``where`` (the function called) and listing the settings."""
        if settings is not None and not isinstance(settings, ApiSettings):
            raise TypeError(
                f"{where}() takes its settings as keyword arguments or an ApiSettings, not {settings!r}: "
                f"e.g. {where}(store, max_batch=100)"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(
                f"{where}() got an unexpected keyword argument {unknown[0]!r}; the settings are: {', '.join(names)}"
            )
        base = settings if settings is not None else cls()
        return dataclasses.replace(base, **overrides) if overrides else base
