"""Segment's webhook destination: `X-Signature` is the hex HMAC-SHA1 of the body."""

import hashlib
import hmac
import json

import pytest

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding
from providers.segment import spec

SECRET = "segment shared secret"
TRACK = {"type": "track", "event": "Cart Abandoned", "messageId": "ajs-1", "userId": "u1", "properties": {}}


def source() -> Source:
    return spec.build(SourceBinding("segment", "segment", "m"), {"SEGMENT_WEBHOOK_SECRET": SECRET})


def request(body: bytes, secret: str = SECRET) -> WebhookRequest:
    signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return WebhookRequest("POST", "http://test/webhooks/segment", {"x-signature": signature}, {}, body)


def test_a_track_call_is_typed_by_its_event_name_and_identified_by_its_message_id() -> None:
    (event,) = source().verify(request(json.dumps(TRACK).encode()))
    assert (event.id, event.type) == ("ajs-1", "Cart Abandoned")
    identify = {"type": "identify", "messageId": "ajs-2", "userId": "u1", "traits": {}}
    (event,) = source().verify(request(json.dumps(identify).encode()))
    assert (event.id, event.type) == ("ajs-2", "identify")


def test_another_secret_is_refused_and_a_message_without_id_is_a_bad_request() -> None:
    with pytest.raises(Forbidden):
        source().verify(request(json.dumps(TRACK).encode(), secret="guess"))
    with pytest.raises(BadRequest):
        source().verify(request(b'{"type": "track"}'))
