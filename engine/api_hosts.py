"""Which hosts reach this machine only, for the API and the dashboard.

A service on loopback without a key or password is safe from the network but not from DNS rebinding: a page on
``evil.example`` that re-resolves its own name to 127.0.0.1 makes the browser send requests to the local
service with ``Host: evil.example`` (and, for a websocket, an Origin that matches it). Answering only requests
whose ``Host`` names loopback (:func:`is_loopback_host`) shuts that out."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) reaches this machine only: 127.0.0.0/8, ::1, localhost."""
    name = host.strip().strip("[]").casefold()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header value, without its port: ``[::1]:8501`` is ``::1``, ``localhost:8501``
    is ``localhost``."""
    text = header.strip()
    if text.startswith("["):
        return text[1 : text.index("]")] if "]" in text else ""
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def is_loopback_host(header: object) -> bool:
    """Whether a ``Host`` header value names loopback (``localhost``, ``127.x.x.x``, ``[::1]``, any port)."""
    return isinstance(header, str) and 0 < len(header) <= 300 and is_loopback(host_name(header))
