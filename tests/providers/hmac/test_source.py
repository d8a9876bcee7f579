"""The generic HMAC source, configured as a sender signs (header, algorithm, encoding, prefix,
timestamp header)."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding
from providers.hmac import spec

SECRET = "shop secret"
BODY = json.dumps({"event": {"id": 42, "name": "order.paid"}}).encode()
OPTIONS = {
    "header": "X-Shop-Signature",
    "algorithm": "sha512",
    "encoding": "base64",
    "prefix": "v1=",
    "timestamp_header": "X-Shop-Timestamp",
    "id_field": "event.id",
    "type_field": "event.name",
}


def source(**options: Any) -> Source:
    return spec.build(SourceBinding("shop", "hmac", "m", options=options), {"SHOP_WEBHOOK_SECRET": SECRET})


def request(body: bytes, *, timestamp: int | None = None, secret: str = SECRET) -> WebhookRequest:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha512).digest()
    headers = {"x-shop-signature": "v1=" + base64.b64encode(digest).decode(), "x-shop-timestamp": stamp}
    return WebhookRequest("POST", "http://test/webhooks/shop", headers, {}, body)


def test_an_event_signed_as_configured_is_read_by_its_fields() -> None:
    (event,) = source(**OPTIONS).verify(request(BODY))
    assert (event.id, event.type) == ("42", "order.paid")


def test_a_stale_timestamp_or_another_secret_is_refused() -> None:
    with pytest.raises(Forbidden, match="seconds"):
        source(**OPTIONS).verify(request(BODY, timestamp=int(time.time()) - 301))
    with pytest.raises(Forbidden):
        source(**OPTIONS).verify(request(BODY, secret="guess"))


def test_the_defaults_are_a_hex_sha256_of_the_body_in_x_signature() -> None:
    body = b'{"id": "e1", "type": "ping"}'
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    good = WebhookRequest("POST", "http://test/webhooks/shop", {"x-signature": signature}, {}, body)
    assert source().verify(good)[0].type == "ping"
    with pytest.raises(BadRequest):
        signature = hmac.new(SECRET.encode(), b"[]", hashlib.sha256).hexdigest()
        source().verify(WebhookRequest("POST", "u", {"x-signature": signature}, {}, b"[]"))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        source(algorithm="md5")
    with pytest.raises(ValueError, match="headr"):
        source(headr="X")
