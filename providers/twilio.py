"""Sending SMS and WhatsApp messages through Twilio, with the `twilio` SDK over httpx.

The SDK's own async client uses aiohttp; ours speaks httpx so that one connection pool serves
every provider and tests can mock Twilio at the HTTP layer with respx.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from chatflow.domain.config import Settings
from chatflow.domain.messages import OutboundMessage, SendResult, numbered_menu
from providers.base import PermanentSendError, RetryableSendError, retry_after
from providers.segments import segments

TWILIO_API = "https://api.twilio.com"
MAX_BODY = 1600  # characters Twilio accepts in one message body, SMS or WhatsApp
BODY_TOO_LONG = "21617"  # Twilio's own code for a body over MAX_BODY

logger = logging.getLogger("chatflow.providers.twilio")


def address(channel: str, number: str) -> str:
    """How Twilio names a number on a channel: `+1555...` for SMS, `whatsapp:+1555...` for WhatsApp."""
    return f"whatsapp:{number}" if channel == "whatsapp" else number


class HttpxTwilioClient(AsyncHttpClient):
    """The SDK's HTTP client, over httpx, sending to `base_url` instead of api.twilio.com.

    Throttling (429) and server errors (5xx) are raised here as `RetryableSendError` because only
    here is the `Retry-After` header still at hand; other errors go back to the SDK, which raises
    `TwilioRestException` with Twilio's error code.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str = TWILIO_API, timeout: float = 15.0) -> None:
        super().__init__(logger, is_async=True, timeout=timeout)
        self.http = http
        self.base_url = base_url.rstrip("/")

    def rebase(self, url: str) -> str:
        if url.startswith(TWILIO_API):
            return self.base_url + url[len(TWILIO_API) :]
        return url

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        url = self.rebase(uri)
        try:
            response = await self.http.request(
                method,
                url,
                params=params,  # type: ignore[arg-type]
                data=data,
                headers=headers,
                auth=auth,
                timeout=timeout or self.timeout,
                follow_redirects=allow_redirects,
            )
        except httpx.HTTPError as error:
            raise RetryableSendError(f"Twilio unreachable: {error!r}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableSendError(
                f"Twilio answered {response.status_code}: {response.text[:200]}",
                code=_error_code(response),
                retry_after=retry_after(response.headers),
            )
        return Response(response.status_code, response.text, response.headers)


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code)
    code = body.get("code") if isinstance(body, dict) else None
    return str(code or response.status_code)


class TwilioProvider:
    """SMS and WhatsApp through one Twilio account."""

    name = "twilio"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.http_client = HttpxTwilioClient(http or httpx.AsyncClient(), settings.twilio_api_url)
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=self.http_client
        )

    @property
    def status_callback(self) -> str:
        # Twilio needs an absolute URL it can reach; without a public URL there are no statuses.
        base = self.settings.public_url
        return f"{base}/webhooks/twilio/status" if base else ""

    async def send(self, message: OutboundMessage) -> SendResult:
        # Twilio WhatsApp could show buttons only through pre-approved content templates
        # (ContentSid), which need an account set up for them: choices go as a numbered menu.
        body = numbered_menu(message.text, message.options)
        if len(body) > MAX_BODY:
            raise PermanentSendError(
                f"message is {len(body)} characters; Twilio accepts at most {MAX_BODY}: shorten it",
                code=BODY_TOO_LONG,
            )
        params: dict[str, Any] = {
            "to": address(message.channel, message.customer),
            "from_": address(message.channel, message.number),
            "body": body,
        }
        if message.media:
            params["media_url"] = [media.url for media in message.media]
        if self.status_callback:
            params["status_callback"] = self.status_callback
        try:
            sent = await self.client.messages.create_async(**params)
        except (TwilioRestException, TwilioServiceException) as error:
            # 429 and 5xx were raised as retryable by the HTTP client: what is left is a 4xx,
            # which asking again will not fix (invalid or opted-out number, bad sender...).
            code = str(error.code or error.status)
            reason = getattr(error, "msg", "") or getattr(error, "detail", "") or getattr(error, "title", "")
            raise PermanentSendError(f"Twilio refused the message ({code}): {reason}", code=code) from error
        return SendResult(
            message_id=sent.sid or "",
            status=sent.status or "queued",
            segments=segments(body) if message.channel == "sms" else 1,
        )
