"""The scoring API's request bodies and error answers (used by :mod:`engine.api`): the reader that caps the body
as it streams in (:func:`read_body`, run by a route's dependencies after the host and key checks), the parser that
counts a batch's items as it reads them and refuses past the cap before any item is validated
(:func:`parse_body`), the 422 answer that lists a few errors (:func:`invalid`), and strict JSON answers
(:class:`StrictJSONResponse`: never ``NaN``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

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


def _once_each(pairs: list[tuple[str, Any]]) -> dict:
    """An object whose keys are each given once: a key given twice is ambiguous (parsers keep the first or the
    last; a proxy that checked one value would let the other through), so it is refused, named."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the field {str(twice)[:80]!r} is given twice in one object; send each field once")
    return out


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_once_each)
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
        if not isinstance(key, str) or key in out:
            raise ValueError("a key is not text, or is given twice")  # json's own reading names the problem
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


def refusal(status: int, message: str) -> HTTPException:
    """An error answer sent before (or instead of) reading the rest of the body: the connection is closed after
    it, so a client streaming a body nobody will read cannot keep the server busy."""
    return HTTPException(status, detail={"message": message}, headers={"Connection": "close"})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, counted as it arrives (chunked bodies without ``Content-Length`` too): 413 as soon as
    ``Content-Length`` or the count passes ``limit`` bytes, before the rest is read."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise refusal(413, f"Request body is {int(length):,} bytes; the limit is {limit:,}. Send smaller batches.")
    chunks, total = [], 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise refusal(413, f"Request body is over the limit of {limit:,} bytes. Send smaller batches.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise refusal(499, "The client disconnected before the body was read.") from None
    return b"".join(chunks)


def _invalid_json(msg: str, kind: str = "json_invalid") -> RequestValidationError:
    return RequestValidationError([{"loc": ["body"], "msg": msg, "type": kind}])


def lone_surrogate(payload: Any) -> str | None:
    """Where the first string (key or value) of parsed JSON holds a lone UTF-16 surrogate (``"\\udcff"`` is valid
    JSON but not Unicode: pandas' Arrow strings and the tokenizers refuse it), as ``leads.0.Lead Source``; None
    when there is none. Walks with its own stack (no recursion limit)."""
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return (where or "body")[:200]
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                try:
                    str(key).encode("utf-8")
                except UnicodeEncodeError:
                    return f"a field name in {(where or 'body')[:200]}"
                stack.append((item, name))
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{i}" if where else str(i)) for i, item in enumerate(value))
    return None


def parse_body(body: bytes, model: type[BaseModel], items_key: str, max_items: int) -> BaseModel:
    """The request body as ``model``. Raises the answer that says what is wrong with it: 413
    (:class:`fastapi.HTTPException`) as soon as the list under ``items_key`` passes ``max_items`` items (before
    the rest of the body is parsed or any item validated), 422 (:class:`RequestValidationError`, answered by
    :func:`invalid`: at most :data:`MAX_LISTED_ERRORS` errors listed) for anything else."""
    too_many = refusal(
        413,
        f"Batch of more than {max_items:,} {items_key}; the limit is {max_items:,} per request. "
        "Split it into smaller requests.",
    )
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads reads bytes
        try:
            payload = _load_counted(text, items_key, max_items)
        except TooManyItems:
            raise too_many from None
        except (ValueError, IndexError):  # not readable item by item: json.loads names the problem
            payload = _DECODER.decode(text)
    except RecursionError:
        raise _invalid_json("the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise _invalid_json(f"not valid JSON ({str(exc)[:200]})") from None
    items = payload.get(items_key) if isinstance(payload, dict) else None
    if isinstance(items, list) and len(items) > max_items:  # read whole (a body json.loads had to read)
        raise too_many
    where = lone_surrogate(payload)
    if where is not None:
        raise _invalid_json(
            f"{where} holds a lone surrogate escape (\\ud800-\\udfff without its pair), which is not Unicode text. "
            "Fix: send the text as UTF-8, or a character beyond U+FFFF as a pair of \\u escapes.",
            "string_unicode",
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    except RecursionError:
        raise _invalid_json("the JSON is nested too deeply", "value_error") from None
