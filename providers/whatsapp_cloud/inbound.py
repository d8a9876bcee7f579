"""A customer's message in Meta's webhook as an InboundMessage: text, a tapped choice, media."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage, Media
from providers._messages import received_now
from providers.whatsapp_cloud.payload import customer_for, object_at

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Not something a customer said to the flow: reactions, number changes, "chat opened" events.
IGNORED_TYPES = frozenset({"reaction", "system", "request_welcome", "ephemeral"})

# Meta sends a media id; the Graph URL of that id answers (with the access token) where it is.
MediaUrl = Callable[[str], str]


def parse_message(
    raw: dict[str, Any], contacts: list[dict[str, Any]], binding: NumberBinding, where: str, media_url: MediaUrl
) -> InboundMessage | None:
    """The message, or None for one that is not for the flow; ValueError when malformed."""
    kind = str(raw.get("type") or "")
    if kind in IGNORED_TYPES:
        return None
    wamid = raw.get("id")
    if not isinstance(wamid, str) or not wamid:
        raise ValueError(f"{where}.id is missing")
    phone, user_id = str(raw.get("from") or ""), str(raw.get("from_user_id") or "")
    contact = _contact(contacts, phone, user_id)
    if not user_id and contact:
        user_id = str(contact.get("user_id") or "")
    text, payload, media = _content(raw, kind, where, media_url)
    return InboundMessage(
        id=wamid,
        channel="whatsapp",
        provider="whatsapp_cloud",
        customer=customer_for(phone, user_id, where),
        number=binding.number,
        text=text,
        media=media,
        payload=payload,
        profile_name=str(object_at(contact, "profile", where).get("name") or "") if contact else "",
        received_at=received_now(),
    )


def _content(raw: dict[str, Any], kind: str, where: str, media_url: MediaUrl) -> tuple[str, str, list[Media]]:
    """The message's text, the id of the choice it picked, and its media."""
    found = raw.get(kind)
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "text":
        return str(body.get("body") or ""), "", []
    if kind == "button":  # a quick-reply button of a template
        return str(body.get("text") or ""), str(body.get("payload") or ""), []
    if kind == "interactive":
        reply = body.get(str(body.get("type") or "")) or {}
        if isinstance(reply, dict):  # button_reply or list_reply
            return str(reply.get("title") or ""), str(reply.get("id") or ""), []
        return "", "", []
    if kind in MEDIA_TYPES:
        media_id = str(body.get("id") or "")
        if not media_id:
            raise ValueError(f"{where}.{kind}.id is missing")
        media = Media(url=media_url(media_id), content_type=str(body.get("mime_type") or ""))
        return str(body.get("caption") or ""), "", [media]
    if kind == "location":
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        text = f"Location: {body.get('latitude')}, {body.get('longitude')}"
        return text + (f" ({place})" if place else ""), "", []
    if kind == "contacts":
        listed = raw.get("contacts")
        cards: list[Any] = listed if isinstance(listed, list) else []
        return "Contacts: " + "; ".join(_card(card) for card in cards if isinstance(card, dict)), "", []
    # Unsupported or future types still reach the flow, which can say it didn't understand.
    return "", "", []


def _contact(contacts: list[dict[str, Any]], phone: str, user_id: str) -> dict[str, Any]:
    for contact in contacts:
        if (phone and contact.get("wa_id") == phone) or (user_id and contact.get("user_id") == user_id):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _card(card: dict[str, Any]) -> str:
    name = card.get("name", {}).get("formatted_name", "") if isinstance(card.get("name"), dict) else ""
    phones = [str(p.get("phone")) for p in card.get("phones", []) if isinstance(p, dict) and p.get("phone")]
    return " ".join([name, *phones]).strip()
