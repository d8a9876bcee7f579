"""A delivery status in Meta's webhook as a StatusReport for the conversations it may belong to."""

from __future__ import annotations

from typing import Any

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.channel import StatusReport
from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import DeliveryUpdate
from providers._messages import message_id, text
from providers.whatsapp_cloud.payload import customer_for, timestamp


def parse_status(raw: dict[str, Any], binding: NumberBinding, where: str) -> StatusReport | None:
    """The status with every conversation its recipient names (none when it names none we can
    read: the status is still the message's, by id); None for a message sent to a group.
    ValueError when it has no id or no status; a status of any name (the channel drops the
    unranked ones)."""
    if not raw.get("id") or not text(raw.get("status")):
        raise ValueError(f"{where} needs id and status")
    if text(raw.get("recipient_type")) == "group":
        return None
    errors = raw.get("errors")
    first_error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    update = DeliveryUpdate(
        message_id=message_id(raw.get("id"), f"{where}.id"),
        status=text(raw.get("status")),
        error_code=text(first_error.get("code")),
        at=timestamp(raw.get("timestamp")),
    )
    # We may have addressed the customer by phone or by user id: try the conversation of each.
    conversations = []
    for phone, user_id in ((text(raw.get("recipient_id")), ""), ("", text(raw.get("recipient_user_id")))):
        if phone or user_id:
            try:
                customer = customer_for(phone, user_id, where)
            except ValueError:
                continue  # a recipient we cannot read names no conversation; the id still does
            conversations.append(ConversationRef("whatsapp", binding.number, customer).id)
    return StatusReport(update, list(dict.fromkeys(conversations)))
