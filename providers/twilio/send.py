"""Sending SMS and WhatsApp messages through Twilio's Messages API."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from chatflow.domain.errors import PermanentSendError
from chatflow.domain.messages import OutboundMessage, SendResult, TemplateMessage, numbered_menu
from providers._whatsapp import within_window
from providers.twilio.content import Contents, content_variables, shape_for
from providers.twilio.segments import segments

MAX_BODY = 1600  # characters Twilio accepts in one message body, SMS or WhatsApp
BODY_TOO_LONG = "21617"  # Twilio's own code for a body over MAX_BODY
# Twilio's refusal of free text outside WhatsApp's 24-hour window: a Content template may go.
OUTSIDE_WINDOW = "63016"


def address(channel: str, number: str) -> str:
    """How Twilio names a number on a channel: `+1555...` for SMS, `whatsapp:+1555...` for WhatsApp."""
    return f"whatsapp:{number}" if channel == "whatsapp" else number


async def content_template(message: OutboundMessage, contents: Contents | None) -> TemplateMessage | None:
    """The Content template that goes instead of free text on WhatsApp: the declared SID, else
    the account's content WhatsApp approved under the template's name and language."""
    declared = message.template_to_send() if message.channel == "whatsapp" else None
    if declared is None or declared.content_sid or contents is None:
        return declared if declared is not None and declared.content_sid else None
    sid = await contents.template_sid(declared)
    return replace(declared, content_sid=sid) if sid else None


async def _interactive(message: OutboundMessage, contents: Contents | None) -> dict[str, Any]:
    """ContentSid and ContentVariables that show the choices as WhatsApp quick replies or a list
    picker; nothing when they go as a numbered menu (SMS, media, no such content)."""
    if message.channel != "whatsapp" or message.media or contents is None:
        return {}
    shape = shape_for(message.text, message.options)
    if shape is None:
        return {}
    sid = await contents.shape_sid(shape)
    if not sid:
        return {}
    values = shape.variables(message.text or "Please choose:", message.options)
    return {"content_sid": sid, "content_variables": content_variables(values)}


async def send(
    client: Client, message: OutboundMessage, *, status_callback: str = "", contents: Contents | None = None
) -> SendResult:
    """Hand `message` to Twilio; `status_callback` is where Twilio reports its delivery ("": nowhere).

    On WhatsApp, choices go as quick replies or a list picker when the account has the content
    for them (`contents`), else as a numbered menu; outside the 24-hour window (or when Twilio
    refuses free text as outside it: 63016) the message's Content template goes instead, when
    it has one.
    """
    body = numbered_menu(message.text, message.options)
    if len(body) > MAX_BODY:
        raise PermanentSendError(
            f"message is {len(body)} characters; Twilio accepts at most {MAX_BODY}: shorten it",
            code=BODY_TOO_LONG,
        )
    params: dict[str, Any] = {
        "to": address(message.channel, message.customer),
        "from_": address(message.channel, message.number),
    }
    if status_callback:
        params["status_callback"] = status_callback
    if message.template_only or not within_window(message.last_inbound_at, datetime.now(UTC)):
        content = await content_template(message, contents)
        if content is not None:
            return await _create(client, message, _with_content(params, content), body)
    free: dict[str, Any] = {**params, **(await _interactive(message, contents) or {"body": body})}
    if message.media:
        free["media_url"] = [media.url for media in message.media]
    if message.location is not None and message.channel == "whatsapp":
        place = message.location
        # Twilio sends a WhatsApp location as a persistent action beside the body.
        free["persistent_action"] = [f"geo:{place.latitude},{place.longitude}|{place.name or place.address}"]
    try:
        return await _create(client, message, free, body)
    except PermanentSendError as error:
        if error.code != OUTSIDE_WINDOW:
            raise
        content = await content_template(message, contents)
        if content is None:
            raise
        return await _create(client, message, _with_content(params, content), body)


def _with_content(params: dict[str, Any], content: TemplateMessage) -> dict[str, Any]:
    return {
        **params,
        "content_sid": content.content_sid,
        "content_variables": content_variables(content.content_variables),
    }


async def _create(client: Client, message: OutboundMessage, params: dict[str, Any], body: str) -> SendResult:
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
