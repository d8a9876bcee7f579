"""An email channel sending to a real SMTP server on loopback (aiosmtpd), and Mailgun's webhooks
signed as Mailgun signs them (HMAC-SHA256 of timestamp + token with the webhook signing key)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.config import Config, Settings
from providers.email.catcher import MailCatcher
from providers.email.channel import EmailChannel
from providers.email.settings import EmailSettings

PUBLIC_URL = "https://chat.shop.example"
SENDER = "support@shop.example"
FROM = f"Shop <{SENDER}>"
CUSTOMER = "ana@example.com"
SECRET = "unsubscribe-secret"
SIGNING_KEY = "key-mailgun-webhook-signing"
MAILGUN_API = "https://mailgun.test"
MAILGUN_DOMAIN = "mg.shop.example"
FORM = "application/x-www-form-urlencoded"


def email_settings(**overrides: str) -> EmailSettings:
    values = dict(email_from=FROM, secret=SECRET, mailgun_signing_key=SIGNING_KEY, mailgun_api_url=MAILGUN_API)
    values.update(overrides)
    return EmailSettings(**values)


def email_config(numbers: list[Any] | None = None) -> Config:
    return Config(numbers=numbers or [], flow_modules=[], settings=Settings(public_url=PUBLIC_URL))


@pytest.fixture
async def catcher() -> AsyncIterator[MailCatcher]:
    async with MailCatcher() as server:
        yield server


@pytest.fixture
def smtp_channel(catcher: MailCatcher) -> EmailChannel:
    return EmailChannel(email_config(), email_settings(smtp_url=catcher.url))


def mailgun_signature(timestamp: str | None = None, token: str | None = None, key: str = SIGNING_KEY) -> dict[str, str]:
    """The three fields Mailgun signs a request with."""
    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)  # Mailgun's tokens are 50 characters
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def inbound_fields(
    text: str,
    *,
    sender: str = CUSTOMER,
    recipient: str = SENDER,
    subject: str = "Re: Your order",
    in_reply_to: str = "",
    message_id: str = "",
) -> dict[str, str]:
    """An inbound route's POST, as Mailgun's forward() sends it (its documented fields)."""
    message_id = message_id or f"<{secrets.token_hex(8)}@mail.example.com>"
    headers = [["Message-Id", message_id], ["From", f"Ana <{sender}>"], ["To", recipient], ["Subject", subject]]
    if in_reply_to:
        headers += [["In-Reply-To", f"<{in_reply_to}>"], ["References", f"<{in_reply_to}>"]]
    return {
        "recipient": recipient,
        "sender": sender,
        "from": f"Ana <{sender}>",
        "subject": subject,
        "body-plain": text,
        "stripped-text": text.split("\n\nOn ")[0],
        "message-headers": json.dumps(headers),
        "Message-Id": message_id,
        **mailgun_signature(),
    }


def form_request(path: str, fields: dict[str, str], *, query: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=f"{PUBLIC_URL}{path}",
        headers={"content-type": FORM},
        query=query or {},
        body=urlencode(fields).encode(),
    )


def event_body(event: str, message_id: str, *, recipient: str = CUSTOMER, **extra: Any) -> dict[str, Any]:
    """An event webhook's JSON, in Mailgun's published shape."""
    data: dict[str, Any] = {
        "event": event,
        "id": secrets.token_hex(11),
        "timestamp": time.time(),
        "recipient": recipient,
        "message": {"headers": {"message-id": message_id, "from": FROM, "to": recipient, "subject": "Your order"}},
        **extra,
    }
    return {"signature": mailgun_signature(), "event-data": data}


def json_request(path: str, body: dict[str, Any]) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=f"{PUBLIC_URL}{path}",
        headers={"content-type": "application/json"},
        query={},
        body=json.dumps(body).encode(),
    )
