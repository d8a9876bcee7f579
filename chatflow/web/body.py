"""The one body reader of every route: type checked first, size counted as it arrives."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from chatflow.domain.errors import BadRequest, Invalid, TooLarge, UnsupportedMediaType


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, *, limit: int, expected: str) -> bytes:
    """The raw body, refused early when it is not of type `expected` or is over `limit` bytes."""
    received = content_type(request)
    if received != expected:
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
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise Invalid("the body must be a JSON object")
    return value
