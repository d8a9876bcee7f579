"""Segment's Webhooks destination: each call posts one Segment message (track, identify, page...)
signed in `X-Signature` as the hex HMAC-SHA1 of the body with the destination's shared secret.
Its id is `messageId`; its type is a track's `event` name, else the message `type`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding, SourceEvent, SourceSpec, environment_name
from providers._sources import json_object, same


@dataclass(frozen=True)
class SegmentSource:
    name: str
    secret: str

    def verify(self, request: WebhookRequest) -> list[SourceEvent]:
        expected = hmac.new(self.secret.encode(), request.body, hashlib.sha1).hexdigest()
        if not same(request.headers.get("x-signature", ""), expected):
            raise Forbidden("X-Signature does not hold")
        message = json_object(request.body)
        message_id, kind = message.get("messageId"), message.get("type")
        if not isinstance(message_id, str) or not isinstance(kind, str):
            raise BadRequest("a Segment message has a messageId and a type")
        event = message.get("event")
        return [SourceEvent(message_id, event if kind == "track" and isinstance(event, str) else kind, message)]


def build(binding: SourceBinding, environment: Mapping[str, str]) -> Source:
    if binding.options:
        raise ValueError(f"unknown key {sorted(binding.options)[0]!r} (segment takes none of its own)")
    return SegmentSource(binding.name, environment.get(environment_name(binding.name, "WEBHOOK_SECRET"), ""))


# Segment retries a failed delivery for up to four hours; a day covers it with room.
spec = SourceSpec(kind="segment", build=build, redelivery=timedelta(days=1))
