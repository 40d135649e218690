"""The scoring API's dependencies, in the order a request meets them: :func:`check_host` (every route),
:func:`check_key` (every route but the open ones: ``/health`` and the documentation), then, on the routes that
take a body, :func:`lead_body` / :func:`transcript_body`, which read the body as it streams in, capped
(:func:`engine.api.body.read_body`), and parse it as its pydantic model with the batch counted
(:func:`engine.api.body.parse_body`). So a request without the key is answered 401 before a byte of its body is
read, and the routes receive a validated model."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from engine.api.bodies import LeadRequest, TranscriptRequest
from engine.api.body import parse_body, read_body, refusal
from engine.api.service import Service
from engine.api.settings import API_KEY_ENV, api_key
from engine.api_hosts import is_loopback_host

API_KEY_HEADER = "X-API-Key"
#: Paths that answer without the API key (their routers carry only :func:`check_host`).
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description=f"the value of {API_KEY_ENV}")


def _service(request: Request) -> Service:
    return request.app.state.service


async def service(request: Request) -> Service:
    """The app's :class:`engine.api.service.Service` (a dependency of the routes)."""
    return _service(request)


async def check_host(request: Request) -> None:
    """A loopback server (``local_only``) with no API key set answers only requests whose ``Host`` names loopback:
    400 otherwise (DNS rebinding: :mod:`engine.api_hosts`)."""
    if (
        _service(request).settings.local_only
        and not api_key()
        and not is_loopback_host(request.headers.get("host", ""))
    ):
        raise refusal(400, "Invalid host header: without an API key only loopback is served.")


async def check_key(given: Annotated[str | None, Security(_key_header)]) -> None:
    """When ``CLAB_API_KEY`` is set, the ``X-API-Key`` header must hold it: 401 otherwise (compared in constant
    time). Read at each request, so a key set or changed takes effect at once."""
    expected = api_key()
    if expected and not secrets.compare_digest((given or "").encode("latin-1"), expected.encode()):
        raise refusal(401, f"Missing or wrong API key: send it in the {API_KEY_HEADER} header.")


async def lead_body(request: Request) -> LeadRequest:
    """The body of ``POST /predict/lead``, read capped and validated (see the module docstring)."""
    svc = _service(request)
    raw = await read_body(request, svc.settings.max_body_bytes)
    return await run_in_threadpool(parse_body, raw, LeadRequest, "leads", svc.settings.max_batch)


async def transcript_body(request: Request) -> TranscriptRequest:
    """The body of ``POST /predict/transcript``, read capped and validated (see the module docstring)."""
    svc = _service(request)
    raw = await read_body(request, svc.settings.max_body_bytes)
    return await run_in_threadpool(parse_body, raw, TranscriptRequest, "transcripts", svc.settings.max_batch)


#: The dependencies of an open route, and of every other one.
OPEN = [Depends(check_host)]
GUARDED = [Depends(check_host), Depends(check_key)]
