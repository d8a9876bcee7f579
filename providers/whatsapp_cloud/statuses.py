"""A delivery status in Meta's webhook as a StatusReport for the conversations it may belong to."""

from __future__ import annotations

from typing import Any

from chatflow.domain.addresses import conversation_id
from chatflow.domain.channel import StatusReport
from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import DeliveryUpdate
from providers.whatsapp_cloud.payload import customer_for, objects, timestamp


def parse_status(raw: dict[str, Any], binding: NumberBinding, where: str) -> StatusReport:
    """ValueError when malformed; a status of any name (the channel drops the unranked ones)."""
    wamid, status = raw.get("id"), raw.get("status")
    if not isinstance(wamid, str) or not wamid or not isinstance(status, str) or not status:
        raise ValueError(f"{where} needs id and status")
    errors = objects(raw, "errors", where)
    update = DeliveryUpdate(
        message_id=wamid,
        status=status,
        error_code=str(errors[0].get("code") or "") if errors else "",
        at=timestamp(raw.get("timestamp")),
    )
    # We may have addressed the customer by phone or by user id: try the conversation of each.
    phone, user_id = str(raw.get("recipient_id") or ""), str(raw.get("recipient_user_id") or "")
    conversations = []
    for candidate_phone, candidate_user in ((phone, ""), ("", user_id)):
        if candidate_phone or candidate_user:
            customer = customer_for(candidate_phone, candidate_user, where)
            conversations.append(conversation_id("whatsapp", binding.number, customer))
    if not conversations:
        raise ValueError(f"{where} names no recipient")
    return StatusReport(update, list(dict.fromkeys(conversations)))
