"""What the sink plug-ins share: one POST, its failures sorted into retryable or not."""

from __future__ import annotations

from typing import Any

import httpx

from chatflow.domain.sink import LifecycleEvent, SinkFailed

TIMEOUT = 10.0


async def post(http: httpx.AsyncClient, url: str, *, what: str, **kwargs: Any) -> None:
    """POST to a destination; SinkFailed, retryable for the network, 408, 429 and 5xx."""
    try:
        answer = await http.post(url, timeout=TIMEOUT, **kwargs)
    except httpx.HTTPError as error:
        raise SinkFailed(f"{what} unreachable: {error!r}", retryable=True) from None
    if answer.status_code >= 300:
        retryable = answer.status_code in (408, 429) or answer.status_code >= 500
        raise SinkFailed(f"{what} answered {answer.status_code}: {answer.text[:200]}", retryable=retryable)


def properties(event: LifecycleEvent) -> dict[str, Any]:
    """An event's fields as analytics tools take them: flat, data keys as they are."""
    return {"conversation": event.conversation, "flow": event.flow, **event.detail, **event.data}


def title(kind: str) -> str:
    """`conversation.started` -> `Conversation Started` (Segment's naming of track events)."""
    return " ".join(word.capitalize() for word in kind.replace("_", " ").replace(".", " ").split())
