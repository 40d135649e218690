"""The scoring API's request bodies and error answers (used by :mod:`engine.api`): the ASGI guard that checks
the API key and caps the body as it streams in (:class:`Guard`), the parser that counts a batch's items as it
reads them and refuses past the cap before any item is validated (:func:`parse_body`), the 422 answer that
lists a few errors (:func:`invalid`), and strict JSON answers (:class:`StrictJSONResponse`: never ``NaN``)."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from engine.api_hosts import is_loopback_host

#: Most errors a 422 answer lists (the rest are counted).
MAX_LISTED_ERRORS = 10


class StrictJSONResponse(JSONResponse):
    """A JSON answer that is valid JSON: non-finite numbers raise ValueError instead of writing ``NaN``."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def message_body(message: str) -> dict:
    return {"message": message, "detail": {"message": message}}


def _readable(errors: list[dict]) -> str:
    parts = []
    for err in errors[:MAX_LISTED_ERRORS]:
        where = ".".join(str(p) for p in err.get("loc", []) if p != "body") or "body"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(msg if msg.startswith(where) else f"{where}: {msg}")
    more = len(errors) - MAX_LISTED_ERRORS
    return "; ".join(parts) + (f" (and {more:,} more errors)" if more > 0 else "")


def invalid(errors: list[dict]) -> JSONResponse:
    """422 naming the first :data:`MAX_LISTED_ERRORS` errors (``detail``) and counting all (``errors``)."""
    listed = errors[:MAX_LISTED_ERRORS]
    return StrictJSONResponse(
        status_code=422,
        content={
            "message": f"Invalid request: {_readable(errors)}. See GET /docs for the expected body.",
            "errors": len(errors),
            "detail": [
                {k: (list(v) if k == "loc" else str(v)) for k, v in e.items() if k in ("loc", "msg", "type")}
                for e in listed
            ],
        },
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WHITESPACE = " \t\n\r"


class TooManyItems(Exception):
    """More than the cap of items in the batch (raised while reading, before the rest is parsed)."""


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _read_items(text: str, i: int, cap: int) -> tuple[list, int]:
    """The JSON array at ``text[i]`` (``[``), one item at a time; TooManyItems past ``cap`` items."""
    items: list = []
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "]":
        return items, i + 1
    while True:
        if len(items) >= cap:
            raise TooManyItems
        item, i = _DECODER.raw_decode(text, _skip(text, i))
        items.append(item)
        i = _skip(text, i)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        if i < len(text) and text[i] == "]":
            return items, i + 1
        raise ValueError(f"expected ',' or ']' at character {i}")


def _load_counted(text: str, items_key: str, cap: int) -> Any:
    """``json.loads(text)`` for a top-level object, reading the array under ``items_key`` item by item so that
    past ``cap`` items it stops (TooManyItems) before the rest is parsed; ValueError for any JSON it cannot read
    this way (the caller then lets ``json.loads`` say what is wrong)."""
    i = _skip(text, 0)
    if not text.startswith("{", i):
        raise ValueError("not an object")
    out: dict = {}
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return out if not text[i + 1 :].strip(_WHITESPACE) else _DECODER.decode(text)
    while True:
        key, i = _DECODER.raw_decode(text, i)
        if not isinstance(key, str):
            raise ValueError("a key is not text")
        i = _skip(text, i)
        if not text.startswith(":", i):
            raise ValueError("expected ':'")
        i = _skip(text, i + 1)
        if key == items_key and text.startswith("[", i):
            out[key], i = _read_items(text, i, cap)
        else:
            out[key], i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
            continue
        if text.startswith("}", i) and not text[i + 1 :].strip(_WHITESPACE):
            return out
        raise ValueError("expected ',' or '}'")


def parse_body(body: bytes, model: type[BaseModel], items_key: str, max_items: int) -> BaseModel | JSONResponse:
    """The request body as ``model``, or the answer that says what is wrong with it: 413 as soon as the list
    under ``items_key`` passes ``max_items`` items (before the rest of the body is parsed or any item
    validated), 422 for anything else (at most :data:`MAX_LISTED_ERRORS` errors listed)."""
    too_many = StrictJSONResponse(
        status_code=413,
        content=message_body(
            f"Batch of more than {max_items:,} {items_key}; the limit is {max_items:,} per request. "
            "Split it into smaller requests."
        ),
    )
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads reads bytes
        try:
            payload = _load_counted(text, items_key, max_items)
        except TooManyItems:
            return too_many
        except (ValueError, IndexError):  # not readable item by item: json.loads names the problem
            payload = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        return invalid([{"loc": ["body"], "msg": "the JSON is nested too deeply", "type": "json_invalid"}])
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        return invalid([{"loc": ["body"], "msg": f"not valid JSON ({str(exc)[:200]})", "type": "json_invalid"}])
    items = payload.get(items_key) if isinstance(payload, dict) else None
    if isinstance(items, list) and len(items) > max_items:  # read whole (a body json.loads had to read)
        return too_many
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        return invalid(exc.errors(include_url=False, include_input=False))
    except RecursionError:
        return invalid([{"loc": ["body"], "msg": "the JSON is nested too deeply", "type": "value_error"}])


class Guard:
    """Pure ASGI middleware in front of the routes: the loopback Host check (``local_only`` with no key set),
    the API key check and then the body cap, all before anything parses the body. The body is read here as it
    arrives, counted, and handed on whole."""

    def __init__(
        self, app, max_body_bytes: int, api_key_env: str, open_paths: frozenset[str], local_only: bool = False
    ):
        self.app, self.max_body_bytes = app, max_body_bytes
        self.api_key_env, self.open_paths, self.local_only = api_key_env, open_paths, local_only

    @staticmethod
    async def _respond(send, status: int, message: str) -> None:
        body = json.dumps(message_body(message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        expected = os.environ.get(self.api_key_env)
        if self.local_only and not expected and not is_loopback_host(headers.get(b"host", b"").decode("latin-1")):
            # no key on loopback: only a page served from this machine's own names may call it (DNS rebinding)
            return await self._respond(send, 400, "Invalid host header: without an API key only loopback is served.")
        if expected and scope.get("path") not in self.open_paths:
            given = headers.get(b"x-api-key", b"")
            if not secrets.compare_digest(given, expected.encode()):
                return await self._respond(send, 401, "Missing or wrong API key: send it in the X-API-Key header.")
        limit = self.max_body_bytes
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await self._respond(
                send, 413, f"Request body is {int(length):,} bytes; the limit is {limit:,}. Send smaller batches."
            )
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                return await self._respond(
                    send, 413, f"Request body is over the limit of {limit:,} bytes. Send smaller batches."
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
