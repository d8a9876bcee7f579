"""The Stripe source verifies `Stripe-Signature` as Stripe signs it (its own library signs here)."""

import json
import time
from typing import Any

import pytest
import stripe

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding
from providers.stripe import spec

SECRET = "whsec_test_secret"
EVENT = {
    "id": "evt_1",
    "object": "event",
    "type": "payment_intent.succeeded",
    "data": {"object": {"id": "pi_1", "object": "payment_intent", "metadata": {"order_id": "A-1001"}}},
}


def request(body: bytes, header: str) -> WebhookRequest:
    return WebhookRequest("POST", "http://test/webhooks/stripe", {"stripe-signature": header}, {}, body)


def source(**options: Any) -> Source:
    return spec.build(SourceBinding("stripe", "stripe", "m", options=options), {"STRIPE_WEBHOOK_SECRET": SECRET})


def signed(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)
    return header


def test_a_signed_event_is_read_with_its_id_type_and_object() -> None:
    body = json.dumps(EVENT).encode()
    (event,) = source().verify(request(body, signed(body)))
    assert (event.id, event.type) == ("evt_1", "payment_intent.succeeded")
    assert event.object["metadata"] == {"order_id": "A-1001"}


def test_another_secret_or_a_changed_body_is_refused() -> None:
    body = json.dumps(EVENT).encode()
    with pytest.raises(Forbidden):
        source().verify(request(body, signed(body, secret="whsec_other")))
    with pytest.raises(Forbidden):
        source().verify(request(body.replace(b"A-1001", b"A-1002"), signed(body)))
    with pytest.raises(Forbidden):
        source().verify(request(body, ""))


def test_a_timestamp_older_than_the_tolerance_is_refused() -> None:
    body = json.dumps(EVENT).encode()
    with pytest.raises(Forbidden, match="tolerance"):
        source().verify(request(body, signed(body, timestamp=int(time.time()) - 301)))
    (event,) = source(tolerance=600).verify(request(body, signed(body, timestamp=int(time.time()) - 301)))
    assert event.id == "evt_1"


def test_a_signed_body_that_is_no_event_is_a_bad_request() -> None:
    body = b'{"object": "event"}'
    with pytest.raises(BadRequest):
        source().verify(request(body, signed(body)))


def test_the_secret_is_read_from_the_source_name() -> None:
    assert spec.environment("stripe") == ("STRIPE_WEBHOOK_SECRET",)
    assert spec.environment("stripe-eu") == ("STRIPE_EU_WEBHOOK_SECRET",)
    with pytest.raises(ValueError, match="tolerence"):
        spec.build(SourceBinding("stripe", "stripe", "m", options={"tolerence": 1}), {})
