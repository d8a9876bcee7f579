"""An OutboundMessage as WhatsApp Cloud API message objects.

Choices become reply buttons (up to 3) or a list (up to 10), else a numbered menu. Free-form
messages are only allowed within 24 hours of the customer's last message; outside that window
only an approved template may be sent.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlsplit

from chatflow.domain.messages import Media, OutboundMessage, TemplateMessage, TemplateParameter, numbered_menu
from providers._messages import media_kind as kind_of

MAX_BUTTONS, BUTTON_TITLE = 3, 20
MAX_ROWS, ROW_TITLE, ROW_DESCRIPTION = 10, 24, 72
MAX_INTERACTIVE_BODY = 1024
LIST_BUTTON = "Choose"
CAPTIONED = ("image", "video", "document")


def recipient(customer: str) -> dict[str, str]:
    """Address a customer by phone (`to`) or, when that is all we know, by business-scoped id."""
    if customer.startswith("+"):
        return {"to": customer[1:]}
    return {"recipient": customer}


def media_kind(media: Media) -> str:
    if media.kind in ("image", "video", "audio", "document", "sticker"):
        return media.kind
    return kind_of(media.content_type or mimetypes.guess_type(urlsplit(media.url).path)[0] or "")


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
    if message.reaction is not None:  # an emoji on the customer's message, "" to take it away
        return [
            {
                "type": "reaction",
                "reaction": {"message_id": message.reaction.message_id, "emoji": message.reaction.emoji},
            }
        ]
    parts: list[dict[str, Any]] = []
    text, options = message.text, message.options
    if message.location is not None:
        place = message.location
        shown: dict[str, float | str] = {"latitude": place.latitude, "longitude": place.longitude}
        shown |= {key: value for key, value in (("name", place.name), ("address", place.address)) if value}
        parts.append({"type": "location", "location": shown})
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


def _parameter(parameter: TemplateParameter) -> dict[str, Any]:
    if parameter.kind == "payload":
        return {"type": "payload", "payload": parameter.text}
    if parameter.kind in ("image", "video", "document"):
        return {"type": parameter.kind, parameter.kind: {"link": parameter.text}}
    named = {"parameter_name": parameter.name} if parameter.name else {}
    return {"type": "text", **named, "text": parameter.text}


def template(message: TemplateMessage) -> dict[str, Any]:
    """A template message: its name, language and the components that carry its parameters."""
    components: list[dict[str, Any]] = []
    if message.header:
        components.append({"type": "header", "parameters": [_parameter(p) for p in message.header]})
    if message.body:
        components.append({"type": "body", "parameters": [_parameter(p) for p in message.body]})
    for button in message.buttons:
        components.append(
            {
                "type": "button",
                "sub_type": button.sub_type,
                "index": str(button.index),
                "parameters": [
                    {"type": "coupon_code", "coupon_code": p.text} if button.sub_type == "copy_code" else _parameter(p)
                    for p in button.parameters
                ],
            }
        )
    body: dict[str, Any] = {"name": message.name, "language": {"code": message.language}}
    if components:
        body["components"] = components
    return {"type": "template", "template": body}
