"""Messages every channel builds the same way: the time a message arrived, an answer to it."""

from __future__ import annotations

from datetime import UTC, datetime

from chatflow.domain.messages import InboundMessage, OutboundMessage


def received_now() -> str:
    """When a webhook's message reached us, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def reply_to(message: InboundMessage, text: str) -> OutboundMessage:
    """An answer to the sender of `message`, from the number it wrote to, on its channel."""
    return OutboundMessage(
        channel=message.channel,
        provider=message.provider,
        number=message.number,
        customer=message.customer,
        text=text,
        # The customer has just written: WhatsApp's 24-hour window is open for this answer.
        last_inbound_at=message.received_at,
    )
