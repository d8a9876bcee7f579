"""Mailgun, the email service provider behind the same channel: its send API, and its signed
inbound routes and event webhooks.

Mailgun signs every POST it makes with the webhook signing key: HMAC-SHA256 over `timestamp`
followed by `token`, hex (https://documentation.mailgun.com, "Securing Webhooks"). An inbound
route (a `forward("https://.../webhooks/email/inbound")` action) sends the three as form fields
beside the parsed email; an event webhook sends them as `signature: {timestamp, token,
signature}` beside `event-data`. A token is used once: a replayed request is refused, as is one
whose timestamp is more than MAX_AGE old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from chatflow.domain.errors import BadRequest, Forbidden, PermanentSendError, RetryableSendError
from providers._http import retry_after

TIMEOUT = 15.0
MAX_AGE = 15 * 60  # seconds a signed request stays valid (Mailgun retries within minutes)
# Headers of ours that Mailgun sends as they are (`h:` fields); it writes From, To and Subject itself.
PASSED_HEADERS = ("Message-ID", "In-Reply-To", "References", "List-Unsubscribe", "List-Unsubscribe-Post")


def signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    timestamp: str
    token: str
    signature: str


def verify(signing_key: str, signed: Signed, *, now: float | None = None) -> None:
    """Forbidden unless Mailgun signed this request (and recently)."""
    if not signing_key:
        raise Forbidden("MAILGUN_WEBHOOK_SIGNING_KEY is not set: cannot verify Mailgun's signature")
    if not (signed.timestamp and signed.token and signed.signature):
        raise Forbidden("missing Mailgun signature (timestamp, token, signature)")
    expected = signature(signing_key, signed.timestamp, signed.token)
    if not hmac.compare_digest(expected, signed.signature.lower()):
        raise Forbidden("Mailgun signature does not match this request")
    try:
        age = (time.time() if now is None else now) - float(signed.timestamp)
    except ValueError:
        raise Forbidden("Mailgun timestamp is not a number") from None
    if abs(age) > MAX_AGE:
        raise Forbidden(f"Mailgun signature is {int(age)} s old: too old to be taken")


def signed_event(body: Mapping[str, Any]) -> Signed:
    """The signature block of an event webhook's JSON; BadRequest when it has none."""
    block = body.get("signature")
    if not isinstance(block, dict):
        raise Forbidden("missing Mailgun signature (the body has no signature object)")
    return Signed(str(block.get("timestamp", "")), str(block.get("token", "")), str(block.get("signature", "")))


class MailgunSender:
    """Mailgun's send API: POST /v3/{domain}/messages, the MIME parts as form fields."""

    def __init__(self, http: httpx.AsyncClient, api_url: str, domain: str, api_key: str) -> None:
        self.http = http
        self.url = f"{api_url}/v3/{domain}/messages"
        self.api_key = api_key

    async def send(self, email: EmailMessage, text: str, html: str) -> None:
        form: dict[str, str] = {
            "from": str(email["From"]),
            "to": str(email["To"]),
            "subject": str(email["Subject"]),
            "text": text,
            "html": html,
        }
        for name in PASSED_HEADERS:
            if email[name] is not None:
                form[f"h:{name}"] = str(email[name])
        try:
            response = await self.http.post(self.url, data=form, auth=("api", self.api_key), timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise RetryableSendError(f"cannot reach Mailgun: {error!r}", code="mailgun_connection") from error
        if response.status_code < 300:
            return
        reason = _message(response)
        code = str(response.status_code)
        # 429 (over the account's rate) and 5xx will pass; any other 4xx is the request's own
        # fault (a bad address, an unverified domain, a wrong key) and will not.
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableSendError(
                f"Mailgun answered {code}: {reason}", code=code, retry_after=retry_after(response.headers)
            )
        raise PermanentSendError(f"Mailgun refused the message ({code}): {reason}", code=code)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", ""))[:200] if isinstance(body, dict) else response.text[:200]


def json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value
