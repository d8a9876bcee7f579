"""What every channel that calls a provider's HTTP API shares."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from chatflow.domain.errors import ChatflowError

# What an API's error body says: its code ("" when none) and its message.
ErrorOf = Callable[[dict[str, Any]], tuple[str, str]]


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a `Retry-After` header given in seconds (the HTTP-date form is ignored)."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


async def call_json(
    http: httpx.AsyncClient, method: str, url: str, *, api: str, error_of: ErrorOf, **kwargs: Any
) -> dict[str, Any]:
    """The JSON object `api` answers a 2xx with; ChatflowError naming `api`, the status and what
    it said otherwise (for commands that read an account, not for sends: no retry here)."""
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise ChatflowError(f"{api} unreachable: {error!r}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    code, reason = error_of(body) if isinstance(body, dict) else ("", response.text[:200])
    raise ChatflowError(f"{api} answered {response.status_code}{f' ({code})' if code else ''}: {reason}")
