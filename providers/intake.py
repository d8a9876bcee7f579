"""What every webhook endpoint does with a request: refuse bad input early, hand messages on.

Bad input is answered with `HTTPException`, which Starlette turns into a plain-text response
carrying the reason, so a provider's debugger (or a person with curl) sees what was wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request

from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.messages import DeliveryUpdate, InboundMessage

if TYPE_CHECKING:
    from chatflow.edge.inbound import Receive, Verdict

# Report a delivery status to a conversation; False when that conversation no longer exists.
Report = Callable[[str, DeliveryUpdate], Awaitable[bool]]


async def read_body(request: Request, *, limit: int, content_type: str) -> bytes:
    """The raw body, refused early when it is of the wrong type or larger than `limit` bytes."""
    received = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if received != content_type:
        raise HTTPException(415, f"expected Content-Type {content_type}, got {received or 'none'}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the {limit}-byte limit")
    # Content-Length may be absent (chunked) or wrong: count what actually arrives.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is over the {limit}-byte limit")
    return bytes(body)


async def hand_on(receive: Receive, message: InboundMessage, binding: NumberBinding) -> Verdict:
    """Give a parsed message to the inbound edge; 503 (so the provider retries) if that fails."""
    try:
        return await receive(binding, message)
    except Exception as error:  # whatever the transport raised, the provider must retry
        raise HTTPException(503, f"could not hand message {message.id} on: {error}") from error


async def report_status(report: Report, conversation: str, update: DeliveryUpdate) -> bool:
    """Report a status; False when the conversation is gone, 503 when it could not be reached."""
    try:
        return await report(conversation, update)
    except Exception as error:
        raise HTTPException(503, f"could not report status of {update.message_id}: {error}") from error


def now() -> str:
    return datetime.now(UTC).isoformat()
