"""One JSON codec for the messages that cross Redis (the buffer, the console, the fallback).

Temporal has its own (the SDK's data converter reads the same dataclasses); this one is for the
places where chatflow itself stores a message as text.
"""

from __future__ import annotations

import json
from dataclasses import asdict
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
    return json.dumps(asdict(message), separators=(",", ":"), ensure_ascii=False)


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
