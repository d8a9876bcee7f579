"""Where a provider's delivery status goes: the conversation's transcript, the channel fallback
and, when a callback URL is configured, the business's delivery reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio.client import Client

from chatflow.domain.addresses import parse_conversation_id
from chatflow.domain.messages import DeliveryUpdate
from chatflow.edge.delivery_reports import DeliveryReports
from chatflow.edge.fallback import ChannelFallback
from chatflow.temporal.client import send_delivery
from chatflow.temporal.delivery_reports import DeliveryReport

# Report a delivery status to a conversation; False when that conversation no longer exists.
Report = Callable[[str, DeliveryUpdate], Awaitable[bool]]


class StatusRouter:
    def __init__(
        self, client: Client, reports: DeliveryReports | None = None, fallback: ChannelFallback | None = None
    ) -> None:
        self._client = client
        self._reports = reports
        self._fallback = fallback

    async def report(self, conversation_id: str, update: DeliveryUpdate) -> bool:
        known = await send_delivery(self._client, conversation_id, update)
        if self._fallback is not None:  # a WhatsApp message delivered needs no SMS; a failed one now
            await self._fallback.on_status(update)
        if self._reports is not None:
            address = parse_conversation_id(conversation_id)
            await self._reports.status_changed(
                DeliveryReport(
                    conversation_id=conversation_id,
                    message_id=update.message_id,
                    status=update.status,
                    customer=address.customer,
                    number=address.number,
                    error_code=update.error_code,
                    at=update.at,
                )
            )
        return known
