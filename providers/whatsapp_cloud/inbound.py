"""A customer's message in Meta's webhook as an InboundMessage: text, a tapped choice, a WhatsApp
Flow's answers, media, a reaction."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage, Location, Media, Reaction
from providers._messages import (
    clean_data,
    location,
    location_text,
    message_id,
    one_line,
    received_now,
    shown,
    text,
)
from providers.whatsapp_cloud.payload import customer_for, object_at

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Not something a customer said to the flow: number changes and other system notices, "chat
# opened" events, and messages the customer deleted (revoked) after sending them.
IGNORED_TYPES = frozenset({"system", "request_welcome", "ephemeral", "revoke", "deleted"})
# Unsupported messages (error 131051) that act on another message instead of saying something:
# the flow never hears of a reaction, a pin or a "keep in chat" whatever the type Meta gives it.
IGNORED_UNSUPPORTED = frozenset({"reaction", "pin", "keep_in_chat", "revoke"})
FLOW_REPLY = "nfm_reply"  # the interactive reply of a WhatsApp Flow the customer completed
# Meta's media ids are digits; nothing else goes into the Graph URL built from one.
MEDIA_ID = re.compile(r"[A-Za-z0-9._-]{1,256}")

# Meta sends a media id; the Graph URL of that id answers (with the access token) where it is.
MediaUrl = Callable[[str], str]

log = logging.getLogger(__name__)


def parse_message(
    raw: dict[str, Any], contacts: list[dict[str, Any]], binding: NumberBinding, where: str, media_url: MediaUrl
) -> InboundMessage | None:
    """The message, or None for one that is not for the flow; ValueError when malformed."""
    kind = text(raw.get("type"))
    if kind in IGNORED_TYPES:
        return None
    if kind == "unsupported" and text(object_at(raw, "unsupported").get("type")) in IGNORED_UNSUPPORTED:
        return None
    group = raw.get("group_id") or object_at(raw, "context").get("group_id")
    if group:  # said in a WhatsApp group the number is in: not to us one-to-one
        log.info("whatsapp_cloud ignored %s: a message in group %s", where, one_line(shown(group)))
        return None
    wamid = message_id(raw.get("id"), f"{where}.id")
    phone, user_id = text(raw.get("from")), text(raw.get("from_user_id"))
    contact = _contact(contacts, phone, user_id)
    if not user_id:
        user_id = text(contact.get("user_id"))
    content, payload, media, data = _content(raw, kind, where, media_url)
    place = None
    if kind == "location":
        place, content = _location(object_at(raw, kind), where)
    reaction = _reaction(object_at(raw, kind), where) if kind == "reaction" else None
    return InboundMessage(
        id=wamid,
        channel="whatsapp",
        provider="whatsapp_cloud",
        customer=customer_for(phone, user_id, where),
        number=binding.number,
        text=content,
        media=media,
        payload=payload,
        profile_name=text(object_at(contact, "profile").get("name")),
        received_at=received_now(),
        data=data,
        location=place,
        reaction=reaction,
    )


def _content(
    raw: dict[str, Any], kind: str, where: str, media_url: MediaUrl
) -> tuple[str, str, list[Media], dict[str, Any]]:
    """The message's text, the id of the choice it picked, its media and its structured data."""
    body = object_at(raw, kind)
    if kind == "text":
        return text(body.get("body")), "", [], {}
    if kind == "button":  # a quick-reply button of a template
        return text(body.get("text")), text(body.get("payload")), [], {}
    if kind == "interactive":
        reply_type = text(body.get("type"))
        reply = object_at(body, reply_type)
        if reply_type == FLOW_REPLY:
            return text(reply.get("body")), "", [], _flow_answers(reply, where)
        return text(reply.get("title")), text(reply.get("id")), [], {}  # button_reply or list_reply
    if kind in MEDIA_TYPES:
        media_id = text(body.get("id"))
        if not media_id:
            raise ValueError(f"{where}.{kind}.id is missing")
        if not MEDIA_ID.fullmatch(media_id):
            raise ValueError(f"{where}.{kind}.id {shown(media_id)} is not a media id")
        caption = text(body.get("caption"))
        media = Media(
            url=media_url(media_id), content_type=text(body.get("mime_type")), kind=kind, id=media_id, caption=caption
        )
        return caption, "", [media], {}
    if kind == "location":
        return "", "", [], {}  # the location itself: `parse_message`
    if kind == "contacts":
        listed = raw.get("contacts")
        cards = [card for card in listed if isinstance(card, dict)] if isinstance(listed, list) else []
        return "Contacts: " + "; ".join(_card(card) for card in cards), "", [], {}
    # Unsupported or future types still reach the flow, which can say it didn't understand.
    return "", "", [], {}


def _location(body: dict[str, Any], where: str) -> tuple[Location | None, str]:
    """The shared place and its text; without coordinates that are numbers, the text alone (read
    as far as it goes: the flow still hears that the customer shared something)."""
    try:
        place = location(body.get("latitude"), body.get("longitude"), body.get("name"), body.get("address"), where)
    except ValueError as error:
        log.warning("whatsapp_cloud kept %s without its place: %s", where, one_line(str(error)))
        return None, f"Location: {text(body.get('latitude'))}, {text(body.get('longitude'))}"
    return place, location_text(place)


def _reaction(body: dict[str, Any], where: str) -> Reaction:
    """The emoji and the message it is on; Meta leaves the emoji out (or empty) when the
    customer took their reaction away."""
    return Reaction(message_id(body.get("message_id"), f"{where}.reaction.message_id"), text(body.get("emoji")))


def _flow_answers(reply: dict[str, Any], where: str) -> dict[str, Any]:
    """A WhatsApp Flow's answers: its `response_json` (a JSON string) parsed, {} when it is not
    an object (the reply still reaches the flow, which has its `body` as text)."""
    try:
        answers = json.loads(text(reply.get("response_json")) or "{}")
        if not isinstance(answers, dict):
            raise ValueError("it is not a JSON object")
        cleaned: dict[str, Any] = clean_data(answers)
    except (ValueError, RecursionError) as error:
        log.warning(
            "whatsapp_cloud kept %s without its answers: nfm_reply.response_json %s", where, one_line(str(error))
        )
        return {}
    return cleaned


def _contact(contacts: list[dict[str, Any]], phone: str, user_id: str) -> dict[str, Any]:
    for contact in contacts:
        if (phone and text(contact.get("wa_id")) == phone) or (user_id and text(contact.get("user_id")) == user_id):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _card(card: dict[str, Any]) -> str:
    """A shared contact card as "Name +phone +phone"; whatever of it is not the expected shape is left out."""
    name = card.get("name")
    formatted = text(name.get("formatted_name")) if isinstance(name, dict) else text(name)
    phones = card.get("phones")
    numbers = [text(p.get("phone")) for p in phones if isinstance(p, dict)] if isinstance(phones, list) else []
    return " ".join(part for part in (formatted, *numbers) if part).strip()
