"""What Mailgun posts, read: an inbound route's parsed email (form fields) and an event
webhook's JSON (delivered, failed, complained, unsubscribed).

An inbound route posts `application/x-www-form-urlencoded`, or `multipart/form-data` when the
email has attachments (attachments are not kept: a flow reads the text). The fields used:
`sender`/`from`, `recipient`, `subject`, `body-plain`, `message-headers` (a JSON list of [name,
value] pairs: Message-Id, In-Reply-To, References), `timestamp`, `token`, `signature`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from chatflow.domain.messages import DeliveryUpdate
from providers._messages import received_now, text
from providers.email.mailgun import Signed
from providers.email.mime import normalise

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 500
ANGLE_ID = re.compile(r"<([^<>\s]+)>")


def form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The fields of a form body, urlencoded or multipart (files skipped); ValueError when it is
    neither. A repeated field keeps its first value."""
    fields: dict[str, str] = {}
    if content_type.split(";")[0].strip().lower() == MULTIPART:
        head = f"Content-Type: {content_type}\r\n\r\n".encode("utf-8", "replace")
        parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        if not parsed.is_multipart():
            raise ValueError("body is not multipart/form-data")
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str) or part.get_filename():
                continue
            payload = part.get_payload(decode=True)
            value = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            fields.setdefault(name, value)
            if len(fields) > MAX_FIELDS:
                raise ValueError(f"more than {MAX_FIELDS} fields")
        return fields
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise ValueError("body is not UTF-8 form data") from None
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def signed_form(fields: dict[str, str]) -> Signed:
    return Signed(fields.get("timestamp", ""), fields.get("token", ""), fields.get("signature", ""))


def message_ids(value: str) -> list[str]:
    """The Message-IDs in a header (In-Reply-To, References), without their angle brackets."""
    return ANGLE_ID.findall(value)


@dataclass
class InboundEmail:
    id: str  # its Message-ID (the dedupe key)
    sender: str  # normalised
    recipient: str  # normalised: our address it was sent to
    subject: str
    body: str  # body-plain, quoted text and all
    refers_to: list[str] = field(default_factory=list)  # In-Reply-To then References, newest first
    received_at: str = ""


def _headers(fields: dict[str, str]) -> dict[str, str]:
    try:
        pairs = json.loads(fields.get("message-headers", "[]"))
    except (ValueError, RecursionError):
        pairs = []
    headers: dict[str, str] = {}
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2:
            headers.setdefault(text(pair[0]).lower(), text(pair[1]))
    # Mailgun also posts some headers as fields of their own.
    for name in ("Message-Id", "In-Reply-To", "References"):
        if fields.get(name):
            headers.setdefault(name.lower(), fields[name])
    return headers


def parse_inbound(fields: dict[str, str]) -> InboundEmail:
    """An inbound route's email; ValueError naming what is missing or wrong."""
    headers = _headers(fields)
    sender = normalise(fields.get("from") or fields.get("sender") or "")
    recipient = normalise((fields.get("recipient") or "").split(",")[0])
    ids = message_ids(headers.get("message-id", ""))
    if not ids:
        raise ValueError("the email has no Message-Id")
    refers = message_ids(headers.get("in-reply-to", ""))
    refers += [i for i in reversed(message_ids(headers.get("references", ""))) if i not in refers]
    return InboundEmail(
        id=ids[0][:256],
        sender=sender,
        recipient=recipient,
        subject=fields.get("subject", ""),
        body=fields.get("body-plain", ""),
        refers_to=refers[:50],
        received_at=received_now(),
    )


@dataclass
class EmailEvent:
    update: DeliveryUpdate | None  # None: an event that says nothing of delivery
    recipient: str
    opt_out: bool  # a complaint or an unsubscribe: the recipient wants no more


def parse_event(body: dict[str, Any]) -> EmailEvent:
    """An event webhook's `event-data`; ValueError when it is not one."""
    data = body.get("event-data")
    if not isinstance(data, dict):
        raise ValueError("the body has no event-data object")
    event = text(data.get("event"))
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message, dict) and isinstance(message.get("headers"), dict) else {}
    message_id = text(headers.get("message-id")).strip().strip("<>") if isinstance(headers, dict) else ""
    try:
        recipient = normalise(text(data.get("recipient")))
    except ValueError:
        recipient = ""
    status = _status(event, text(data.get("severity")), text(data.get("reason")))
    update = None
    if status and message_id:
        delivery = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) else {}
        code = text(delivery.get("code")) if isinstance(delivery, dict) else ""
        update = DeliveryUpdate(message_id, status, code if status in ("failed", "undelivered") else "", received_now())
    return EmailEvent(update, recipient, event in ("complained", "unsubscribed"))


def _status(event: str, severity: str, reason: str) -> str:
    """Our delivery status for a Mailgun event ("" for none: opened, clicked, a temporary failure
    that Mailgun itself retries). A permanent failure is "undelivered" when the receiving server
    refused it (a bounce) and "failed" when Mailgun did not send it (the address is on its
    bounce, complaint or unsubscribe list)."""
    if event == "accepted":
        return "queued"
    if event == "delivered":
        return "delivered"
    if event == "failed":
        if severity != "permanent":
            return ""
        return "failed" if reason.startswith("suppress") else "undelivered"
    if event == "complained":
        return "delivered"  # it reached the inbox, and the reader marked it as spam
    return ""
