"""One JSON codec for the messages that cross Redis (the buffer, the console, the fallback).

Temporal has its own (the SDK's data converter reads the same dataclasses); this one is for the
places where chatflow itself stores a message as text.
"""

from __future__ import annotations

import json
from dataclasses import is_dataclass
from typing import Any

from chatflow.domain.messages import (
    InboundMessage,
    Location,
    Media,
    Option,
    OutboundMessage,
    Reaction,
    TemplateButton,
    TemplateMessage,
    TemplateParameter,
)


def dumps(message: InboundMessage | OutboundMessage) -> str:
    return json.dumps(fields_of(message), separators=(",", ":"), ensure_ascii=False)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def fields_of(value: Any) -> Any:
    """`dataclasses.asdict(value)` for encoding: the same dicts and lists, with the values in them
    shared rather than deep-copied. An encoder only reads them, and `asdict`'s copies made a
    message's encoding cost three times as much, twice per webhook (the size check, the buffer)."""
    if type(value) in _SCALARS:
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {name: item if type(item) in _SCALARS else fields_of(item) for name, item in vars(value).items()}
    if isinstance(value, list | tuple):
        return [fields_of(item) for item in value]
    if isinstance(value, dict):
        return {key: fields_of(item) for key, item in value.items()}
    return value


def inbound_from(fields: dict[str, Any]) -> InboundMessage:
    fields = dict(fields)
    fields["media"] = [Media(**m) for m in fields.get("media", [])]
    if fields.get("location"):
        fields["location"] = Location(**fields["location"])
    if fields.get("reaction"):
        fields["reaction"] = Reaction(**fields["reaction"])
    return InboundMessage(**fields)


def outbound_from(fields: dict[str, Any]) -> OutboundMessage:
    fields = dict(fields)
    fields["options"] = [Option(**o) for o in fields.get("options", [])]
    fields["media"] = [Media(**m) for m in fields.get("media", [])]
    if fields.get("location"):
        fields["location"] = Location(**fields["location"])
    if fields.get("template_message"):
        fields["template_message"] = template_from(fields["template_message"])
    if fields.get("reaction"):
        fields["reaction"] = Reaction(**fields["reaction"])
    return OutboundMessage(**fields)


def template_from(fields: dict[str, Any]) -> TemplateMessage:
    fields = dict(fields)
    for part in ("header", "body"):
        fields[part] = [TemplateParameter(**p) for p in fields.get(part, [])]
    fields["buttons"] = [
        TemplateButton(b["index"], b.get("sub_type", "url"), [TemplateParameter(**p) for p in b.get("parameters", [])])
        for b in fields.get("buttons", [])
    ]
    return TemplateMessage(**fields)


def loads_inbound(raw: str | bytes) -> InboundMessage:
    """ValueError, TypeError or KeyError when `raw` is not an encoded InboundMessage."""
    return inbound_from(json.loads(raw))


def loads_outbound(raw: str | bytes) -> OutboundMessage:
    return outbound_from(json.loads(raw))
