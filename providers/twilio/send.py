"""Sending SMS and WhatsApp messages through Twilio's Messages API."""

from __future__ import annotations

from typing import Any

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from chatflow.domain.errors import PermanentSendError
from chatflow.domain.messages import OutboundMessage, SendResult, numbered_menu
from providers.twilio.segments import segments

MAX_BODY = 1600  # characters Twilio accepts in one message body, SMS or WhatsApp
BODY_TOO_LONG = "21617"  # Twilio's own code for a body over MAX_BODY


def address(channel: str, number: str) -> str:
    """How Twilio names a number on a channel: `+1555...` for SMS, `whatsapp:+1555...` for WhatsApp."""
    return f"whatsapp:{number}" if channel == "whatsapp" else number


async def send(client: Client, message: OutboundMessage, *, status_callback: str = "") -> SendResult:
    """Hand `message` to Twilio; `status_callback` is where Twilio reports its delivery ("": nowhere)."""
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
    if status_callback:
        params["status_callback"] = status_callback
    try:
        sent = await client.messages.create_async(**params)
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
