"""The one body reader of every route: type checked first, size counted as it arrives, JSON
nested no deeper than `MAX_DEPTH`."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from chatflow.domain.errors import BadRequest, Invalid, TooLarge, UnsupportedMediaType

# Deeper JSON is refused before anything else sees it: the parser, the payload converter and
# `dataclasses.asdict` all recurse, and 950 levels in a journey's data overflowed one of them (a 500).
MAX_DEPTH = 32


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, *, limit: int, expected: str) -> bytes:
    """The raw body, refused early when it is not of type `expected` (one type, or several
    separated by commas) or is over `limit` bytes."""
    received = content_type(request)
    if received not in (accepted.strip() for accepted in expected.split(",")):
        raise UnsupportedMediaType(f"send the body as {expected} (Content-Type: {expected}), not {received or 'none'}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    # Content-Length may be absent (chunked) or wrong: count what actually arrives.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"body is over the {limit}-byte limit")
    return bytes(body)


async def read_json_object(request: Request, *, limit: int) -> dict[str, Any]:
    """A JSON object body; BadRequest when it is not JSON, Invalid when it is JSON but no object."""
    body = await read_body(request, limit=limit, expected="application/json")
    value = parse_json(body, what="the body", refuse=BadRequest)
    if not isinstance(value, dict):
        raise Invalid("the body must be a JSON object")
    return value


def parse_json(text: str | bytes, *, what: str, refuse: type[BadRequest | Invalid] = Invalid) -> Any:
    """`text` parsed; `refuse(reason)` when it is not JSON, Invalid when nested deeper than MAX_DEPTH."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise Invalid(too_deep(what)) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise refuse(f"{what} is not valid JSON: {error}") from None
    if depth_over(value, MAX_DEPTH):
        raise Invalid(too_deep(what))
    return value


def too_deep(what: str) -> str:
    return f"{what} nests JSON deeper than {MAX_DEPTH} levels"


def depth_over(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than `limit` levels (without recursing)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
