"""What every channel builds the same way: the time a message arrived, an answer to it, and the
fields of a provider's payload read so that nothing a provider (or a forger with the secret) sends
can make a message that the rest of chatflow cannot store, encode or log."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from chatflow.domain.messages import InboundMessage, Location, OutboundMessage

# A provider's message id (Twilio's MessageSid, Meta's wamid) is the dedupe key and is logged:
# printable ASCII without spaces. Meta's wamids are a few dozen characters of base64.
MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,256}")
# How deep structured content (a WhatsApp Flow's answers) may nest: a form is a few levels deep.
MAX_DATA_DEPTH = 16
LOGGED_CHARACTERS = 300


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


def message_id(value: object, what: str) -> str:
    """A provider's message id; ValueError naming `what` when it is missing or not one."""
    if value is None or value == "":
        raise ValueError(f"{what} is missing")
    if not isinstance(value, str) or not MESSAGE_ID.fullmatch(value):
        raise ValueError(f"{what} {shown(value)} is not a message id (printable ASCII, at most 256 characters)")
    return value


def text(value: object) -> str:
    """A field read as text: a string as it is (with any lone UTF-16 surrogate, which no UTF-8
    encoder takes, replaced), a number written out, anything else (objects, lists, null) empty."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    return ""


def clean_data(value: object, depth: int = 0) -> Any:
    """A parsed JSON value that every JSON encoder takes: strings as `text` reads them, keys as
    strings, non-finite numbers as null; ValueError when it nests deeper than MAX_DATA_DEPTH."""
    if depth > MAX_DATA_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DATA_DEPTH} levels")
    if isinstance(value, dict):
        return {
            text(key) if isinstance(key, str) else str(key): clean_data(item, depth + 1) for key, item in value.items()
        }
    if isinstance(value, list):
        return [clean_data(item, depth + 1) for item in value]
    if isinstance(value, str):
        return text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def shown(value: object, limit: int = 80) -> str:
    """`value` for an error message: its repr (control characters escaped), cut to `limit`."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def one_line(message: str) -> str:
    """`message` as one log line: control and other unprintable characters escaped, cut short."""
    line = "".join(char if char.isprintable() else repr(char)[1:-1] for char in message[: LOGGED_CHARACTERS + 1])
    return line if len(line) <= LOGGED_CHARACTERS else line[: LOGGED_CHARACTERS - 3] + "..."


def _coordinate(value: object, limit: float, what: str) -> float:
    try:
        number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError(f"{what} {shown(value)} is not a coordinate (a number from -{limit:g} to {limit:g})")
    return number


def location(latitude: object, longitude: object, name: object, address: object, where: str) -> Location:
    """A shared location; ValueError naming `where` when its coordinates are not coordinates."""
    return Location(
        _coordinate(latitude, 90, f"{where}.latitude"),
        _coordinate(longitude, 180, f"{where}.longitude"),
        text(name),
        text(address),
    )


def location_text(place: Location) -> str:
    """A shared location as text, for flows that read only the text."""
    named = ", ".join(part for part in (place.name, place.address) if part)
    return f"Location: {place.latitude:.10g}, {place.longitude:.10g}" + (f" ({named})" if named else "")


def media_kind(content_type: str) -> str:
    """image, video or audio by its content type, else document."""
    for kind in ("image", "video", "audio"):
        if content_type.startswith(f"{kind}/"):
            return kind
    return "document"
