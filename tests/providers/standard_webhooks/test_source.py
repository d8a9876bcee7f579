"""The Standard Webhooks source, signed by the reference library as Svix, Clerk or Resend sign."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import Forbidden
from chatflow.domain.source import Source, SourceBinding
from providers.standard_webhooks import spec

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty two bytes!!!!").decode()
BODY = json.dumps({"type": "user.created", "data": {"id": "user_1"}}).encode()


def source() -> Source:
    return spec.build(SourceBinding("clerk", "standard_webhooks", "m"), {"CLERK_WEBHOOK_SECRET": SECRET})


def signed(body: bytes, *, secret: str = SECRET, at: datetime | None = None, msg_id: str = "msg_1") -> WebhookRequest:
    at = at or datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }
    return WebhookRequest("POST", "http://test/webhooks/clerk", headers, {}, body)


def test_a_signed_message_is_read_with_its_webhook_id_and_type() -> None:
    (event,) = source().verify(signed(BODY))
    assert (event.id, event.type, event.payload["data"]) == ("msg_1", "user.created", {"id": "user_1"})


def test_another_secret_an_old_timestamp_or_a_changed_body_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    with pytest.raises(Forbidden):
        source().verify(signed(BODY, secret=other))
    with pytest.raises(Forbidden):
        source().verify(signed(BODY, at=datetime.now(UTC) - timedelta(minutes=10)))
    forged = signed(BODY)
    with pytest.raises(Forbidden):
        source().verify(WebhookRequest("POST", forged.url, forged.headers, {}, BODY + b" "))


def test_a_secret_that_is_no_whsec_secret_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="CLERK_WEBHOOK_SECRET"):
        spec.build(SourceBinding("clerk", "standard_webhooks", "m"), {"CLERK_WEBHOOK_SECRET": "whsec_%%%"})
