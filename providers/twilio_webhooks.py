"""Twilio's webhooks: inbound SMS/WhatsApp messages and status callbacks of the ones we sent.

Twilio signs each request with the account's auth token over the URL it called plus the sorted
form fields (`X-Twilio-Signature`). Nothing is parsed into a message before that signature holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from chatflow.domain.config import Config, e164
from chatflow.temporal.records import conversation_id
from chatflow.domain.messages import STATUS_RANK, DeliveryUpdate, InboundMessage, Media
from providers.intake import Report, hand_on, now, read_body, report_status

if TYPE_CHECKING:
    from chatflow.edge.inbound import Receive

FORM = "application/x-www-form-urlencoded"
MAX_REQUEST_BYTES = 64 * 1024  # a Twilio webhook is a few KiB even with ten media URLs
MAX_FIELDS = 200
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a form-encoded body; ValueError when it is not strictly one, in UTF-8."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise ValueError("body is not UTF-8 form data") from None
    except ValueError as error:
        raise ValueError(f"body is not form data: {error}") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise ValueError(f"field {key} appears more than once")
        form[key] = value
    return form


def _required(form: dict[str, str], *names: str) -> str:
    for name in names:
        if form.get(name):
            return form[name]
    raise ValueError(f"missing field {names[0]}")


def _number(form: dict[str, str], name: str) -> str:
    return e164(_required(form, name), what=name)


def _channel(form: dict[str, str]) -> str:
    return "whatsapp" if form.get("From", "").startswith("whatsapp:") else "sms"


def parse_inbound(form: dict[str, str]) -> InboundMessage:
    """A customer's message from Twilio's inbound webhook fields; ValueError names what is wrong."""
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise ValueError(f"NumMedia {form['NumMedia']!r} is not a number") from None
    media = [
        Media(url=form[f"MediaUrl{i}"], content_type=form.get(f"MediaContentType{i}", ""))
        for i in range(min(count, 10))
        if form.get(f"MediaUrl{i}")
    ]
    text = form.get("Body") or form.get("ButtonText", "")
    if not text and form.get("Latitude") and form.get("Longitude"):  # a WhatsApp shared location
        place = ", ".join(part for part in (form.get("Label", ""), form.get("Address", "")) if part)
        text = f"Location: {form['Latitude']}, {form['Longitude']}" + (f" ({place})" if place else "")
    return InboundMessage(
        id=_required(form, "MessageSid", "SmsMessageSid"),
        channel=_channel(form),
        provider="twilio",
        customer=_number(form, "From"),
        number=_number(form, "To"),
        text=text,
        media=media,
        payload=form.get("ButtonPayload", ""),
        profile_name=form.get("ProfileName", ""),
        received_at=now(),
    )


def parse_status(form: dict[str, str]) -> tuple[str, DeliveryUpdate]:
    """The conversation a status callback is about, and the update; ValueError when malformed."""
    status = _required(form, "MessageStatus", "SmsStatus")
    update = DeliveryUpdate(
        message_id=_required(form, "MessageSid", "SmsSid"),
        status=status,
        error_code=form.get("ErrorCode", "") if status in ("failed", "undelivered") else "",
        at=now(),
    )
    # We sent the message: From is our number, To the customer.
    return conversation_id(_channel(form), _number(form, "From"), _number(form, "To")), update


class TwilioWebhooks:
    def __init__(self, config: Config, receive: Receive, report: Report) -> None:
        self.config = config
        self.intake = receive  # the inbound edge: opt-out, keywords, dedupe, delivery
        self.report = report
        token = config.settings.twilio_auth_token
        self.validator = RequestValidator(token) if token else None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/webhooks/twilio", self.inbound, methods=["POST"]),
            Route("/webhooks/twilio/status", self.status, methods=["POST"]),
        ]

    def signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the one it was told to call, which a proxy may have rewritten."""
        public = self.config.settings.public_url
        if not public:
            return str(request.url)
        query = request.url.query
        return public + request.url.path + (f"?{query}" if query else "")

    async def verified_form(self, request: Request) -> dict[str, str]:
        signature = request.headers.get("x-twilio-signature", "")
        if not signature:
            raise HTTPException(403, "missing X-Twilio-Signature")
        if self.validator is None:
            raise HTTPException(403, "TWILIO_AUTH_TOKEN is not set: cannot verify Twilio's signature")
        body = await read_body(request, limit=MAX_REQUEST_BYTES, content_type=FORM)
        try:
            form = parse_form(body)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        if not self.validator.validate(self.signed_url(request), form, signature):
            raise HTTPException(403, "X-Twilio-Signature does not match this request")
        return form

    async def inbound(self, request: Request) -> Response:
        form = await self.verified_form(request)
        try:
            message = parse_inbound(form)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        binding = self.config.binding(message.number, "twilio")
        if binding is None:
            raise HTTPException(404, f"{message.number} is not bound to a flow for twilio in the config")
        verdict = await hand_on(self.intake, message, binding)
        if verdict.reply:
            # Opt-out confirmations and help answer in the TwiML itself: they must reach a
            # customer whom the send activity now refuses.
            answer = MessagingResponse()
            answer.message(verdict.reply)
            return Response(str(answer), media_type="text/xml")
        # A flow's replies go out through the API once it has run, never in this response.
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def status(self, request: Request) -> Response:
        form = await self.verified_form(request)
        try:
            conversation, update = parse_status(form)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        # Statuses without a rank (received, canceled, scheduled...) say nothing about delivery;
        # one for a conversation that has ended is of no use either: both are acknowledged.
        if update.status in STATUS_RANK:
            await report_status(self.report, conversation, update)
        return Response(status_code=200)
