"""What the source plug-ins share: reading a JSON body and comparing signatures."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from chatflow.domain.errors import BadRequest, Forbidden

MAX_DEPTH = 32  # as the web layer's JSON: deeper bodies are refused before anything recurses


def json_object(body: bytes, what: str = "the body") -> dict[str, Any]:
    """`body` as a JSON object; BadRequest saying why when it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise BadRequest(f"{what} nests deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def fresh(timestamp: str, tolerance: int, header: str) -> None:
    """Forbidden unless `timestamp` (Unix seconds) is within `tolerance` seconds of now: an old
    signed request replayed is refused."""
    if not timestamp.isdigit():
        raise Forbidden(f"{header} is not a Unix time")
    if abs(time.time() - int(timestamp)) > tolerance:
        raise Forbidden(f"{header} is more than {tolerance} seconds from now")


def text_option(options: dict[str, Any], key: str, default: str, choices: tuple[str, ...] = ()) -> str:
    value = options.get(key, default)
    if not isinstance(value, str) or (choices and value not in choices):
        wanted = f"one of {', '.join(choices)}" if choices else "a string"
        raise ValueError(f"{key} must be {wanted}")
    return value


def int_option(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{key} must be a positive whole number")
    return value
