"""An OutboundMessage as WhatsApp Cloud API message objects.

Choices become reply buttons (up to 3) or a list (up to 10), else a numbered menu. Free-form
messages are only allowed within 24 hours of the customer's last message; outside that window
only an approved template may be sent.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from chatflow.domain.messages import Media, OutboundMessage, numbered_menu

SERVICE_WINDOW = timedelta(hours=24)
MAX_BUTTONS, BUTTON_TITLE = 3, 20
MAX_ROWS, ROW_TITLE, ROW_DESCRIPTION = 10, 24, 72
MAX_INTERACTIVE_BODY = 1024
LIST_BUTTON = "Choose"
DEFAULT_TEMPLATE_LANGUAGE = "en_US"
CAPTIONED = ("image", "video", "document")


def within_window(last_inbound_at: str, now: datetime) -> bool:
    """True while free-form messages are allowed: the customer wrote less than 24 hours ago."""
    if not last_inbound_at:
        return False
    try:
        last = datetime.fromisoformat(last_inbound_at)
    except ValueError:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return now - last < SERVICE_WINDOW


def recipient(customer: str) -> dict[str, str]:
    """Address a customer by phone (`to`) or, when that is all we know, by business-scoped id."""
    if customer.startswith("+"):
        return {"to": customer[1:]}
    return {"recipient": customer}


def media_kind(media: Media) -> str:
    content_type = media.content_type or mimetypes.guess_type(urlsplit(media.url).path)[0] or ""
    for kind in ("image", "video", "audio"):
        if content_type.startswith(f"{kind}/"):
            return kind
    return "document"


def _buttons(text: str, message: OutboundMessage) -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": text},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": option.id, "title": option.title[:BUTTON_TITLE]}}
                for option in message.options
            ]
        },
    }


def _list(text: str, message: OutboundMessage) -> dict[str, Any]:
    rows = []
    for option in message.options:
        row = {"id": option.id, "title": option.title[:ROW_TITLE]}
        if option.description:
            row["description"] = option.description[:ROW_DESCRIPTION]
        rows.append(row)
    return {
        "type": "list",
        "body": {"text": text},
        "action": {"button": LIST_BUTTON, "sections": [{"rows": rows}]},
    }


def render(message: OutboundMessage) -> list[dict[str, Any]]:
    """The Cloud API message objects (without addressing) that say `message`, in order."""
    parts: list[dict[str, Any]] = []
    text, options = message.text, message.options
    captioned = False
    for media in message.media:
        kind = media_kind(media)
        body = {"link": media.url}
        if text and not options and not captioned and kind in CAPTIONED:
            body["caption"], captioned = text, True
        parts.append({"type": kind, kind: body})
    interactive = options and len(options) <= MAX_ROWS and len(text) <= MAX_INTERACTIVE_BODY
    if interactive:
        prompt = text or "Please choose:"  # an interactive message needs a body
        build = _buttons if len(options) <= MAX_BUTTONS else _list
        parts.append({"type": "interactive", "interactive": build(prompt, message)})
    elif (text or options) and not captioned:
        parts.append({"type": "text", "text": {"body": numbered_menu(text, options), "preview_url": False}})
    return parts


def template(name: str) -> dict[str, Any]:
    """A template message from `name` or `name:language` (language defaults to en_US)."""
    name, _, language = name.partition(":")
    return {"type": "template", "template": {"name": name, "language": {"code": language or DEFAULT_TEMPLATE_LANGUAGE}}}
