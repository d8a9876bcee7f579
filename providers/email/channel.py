"""Email as a chatflow channel: sends through SMTP or Mailgun, takes replies and delivery events
from Mailgun's signed webhooks, and one-click unsubscribes (RFC 8058).

A conversation by email is one customer address with one of our sender addresses. A reply is
matched to the conversation whose email it answers (its In-Reply-To or References name a
Message-ID we sent, to that same person), so a reply to an email that a flow on SMS sent
(`Notify`) goes on in that SMS conversation; a new email goes to the flow bound to the address
it was sent to.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.headerregistry import Address as MailAddress
from html import escape

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatflow.domain.addresses import MAILTO, Address, ConversationRef
from chatflow.domain.channel import Received, StatusReport, WebhookAnswer, WebhookRequest, WebhookRoute
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import BadRequest, ConfigError, NotFound, PermanentSendError
from chatflow.domain.keywords import OPT_OUT_WORDS, command
from chatflow.domain.messages import InboundMessage, OutboundMessage, SendResult
from providers._messages import received_now
from providers.email import mailgun, unsubscribe
from providers.email.inbound import FORM, MULTIPART, InboundEmail, form_fields, parse_event, parse_inbound, signed_form
from providers.email.mime import Built, Unsubscribe, build, normalise
from providers.email.replies import reply_text
from providers.email.settings import EmailSettings, SmtpServer, sender_address
from providers.email.smtp import SmtpSender

log = logging.getLogger(__name__)

NAME = "email"
INBOUND_PATH = "/webhooks/email/inbound"
EVENTS_PATH = "/webhooks/email/events"
JSON = "application/json"
MAX_INBOUND = 10 * 1024 * 1024  # an email with attachments; the attachments are skipped
MAX_EVENT = 64 * 1024
SENT_PREFIX = "chatflow:email:sent:"
THREAD_PREFIX = "chatflow:email:thread:"
SENT_TTL = 30 * 24 * 3600  # seconds a sent email's reply is matched to its conversation
# Ids of the opt-outs this channel makes itself: answered with no confirmation email (RFC 8058
# asks for none, and a complaint must not be answered with more mail).
SILENT = ("unsubscribe-", "complaint-")
STOP = "STOP"


@dataclass(frozen=True)
class Thread:
    message_id: str  # the customer's latest email in the conversation
    subject: str


@dataclass(frozen=True)
class SentEmail:
    conversation: str
    to: str
    sender: str


class EmailChannel:
    name = NAME

    def __init__(
        self,
        config: Config,
        settings: EmailSettings,
        *,
        http: httpx.AsyncClient | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.redis = redis
        self.default_from = sender_address(settings.email_from) if settings.email_from else None
        self.smtp: SmtpSender | None = None
        self.mailgun: mailgun.MailgunSender | None = None
        if settings.transport == "mailgun":
            if http is None:
                raise ConfigError("the email channel needs an HTTP client to reach Mailgun")
            self.mailgun = mailgun.MailgunSender(
                http, settings.mailgun_api_url, settings.mailgun_domain, settings.mailgun_api_key
            )
        elif settings.transport == "smtp":
            self.smtp = SmtpSender(SmtpServer.from_url(settings.smtp_url))

    @property
    def sender(self) -> str:
        """The address a flow's email comes from when no binding says (CHATFLOW_EMAIL_FROM)."""
        return normalise(self.default_from.addr_spec) if self.default_from is not None else ""

    def routes(self) -> Sequence[WebhookRoute]:
        return [
            WebhookRoute(INBOUND_PATH, "POST", self.inbound, f"{FORM}, {MULTIPART}", MAX_INBOUND),
            WebhookRoute(EVENTS_PATH, "POST", self.events, JSON, MAX_EVENT),
            WebhookRoute(unsubscribe.PATH, "POST", self.unsubscribe, f"{FORM}, {MULTIPART}", 4 * 1024),
            WebhookRoute(unsubscribe.PATH, "GET", self.unsubscribe_page),
        ]

    # -- sending -----------------------------------------------------------------------------

    def _from(self, number: str) -> MailAddress:
        default = self.default_from
        if not number or (default is not None and normalise(default.addr_spec) == number):
            if default is None:
                raise PermanentSendError("no sender address: set CHATFLOW_EMAIL_FROM or bind an address")
            return default
        return MailAddress(addr_spec=number)

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            recipient = normalise(message.customer)
        except ValueError as error:
            raise PermanentSendError(str(error), code="invalid_address") from None
        sender = self._from(message.number)
        link = unsubscribe.url(
            self.config.settings.public_url, self.settings.secret, normalise(sender.addr_spec), recipient
        )
        thread = await self._thread(message.conversation_id)
        if thread is not None and not message.subject:
            # An answer in the thread the customer's email started: "Re: " their subject.
            subject = thread.subject if thread.subject.lower().startswith("re:") else f"Re: {thread.subject}"
            message = replace(message, subject=subject)
        built = build(
            message,
            sender,
            unsubscribe=Unsubscribe(mailto=sender.addr_spec, url=link),
            in_reply_to=thread.message_id if thread is not None else "",
        )
        # Remembered first: a reply can come back before this call returns. An email that is then
        # not sent leaves a record nobody can answer.
        await self._remember(
            built.message_id, SentEmail(message.conversation_id, recipient, normalise(sender.addr_spec))
        )
        await self._deliver(built)
        return SendResult(message_id=built.message_id, status="sent")

    async def _deliver(self, built: Built) -> None:
        if self.mailgun is not None:
            await self.mailgun.send(built.email, built.text, built.html)
        elif self.smtp is not None:
            await self.smtp.send(built.email)
        else:
            raise PermanentSendError("email is not configured: set CHATFLOW_SMTP_URL or MAILGUN_API_KEY")

    async def _remember(self, message_id: str, sent: SentEmail) -> None:
        if self.redis is None or not sent.conversation:
            return
        try:
            value = json.dumps({"conversation": sent.conversation, "to": sent.to, "from": sent.sender})
            await self.redis.set(SENT_PREFIX + message_id, value, ex=SENT_TTL)
        except RedisError as error:
            # Sent all the same: a reply to it then goes to the flow of the address it was sent
            # from instead of going on in this conversation.
            log.warning("email %s: could not remember its conversation: %r", message_id, error)

    async def _remember_thread(self, conversation: str, thread: Thread) -> None:
        """The customer's latest email in a conversation: our next email answers it (In-Reply-To,
        "Re: " its subject), so mail clients show one thread."""
        if self.redis is None:
            return
        try:
            value = json.dumps({"message_id": thread.message_id, "subject": thread.subject[:200]})
            await self.redis.set(THREAD_PREFIX + conversation, value, ex=SENT_TTL)
        except RedisError as error:
            log.warning("cannot remember the thread of an email: %r", error)  # the next one starts its own

    async def _thread(self, conversation: str) -> Thread | None:
        if self.redis is None or not conversation:
            return None
        try:
            raw = await self.redis.get(THREAD_PREFIX + conversation)
        except RedisError as error:
            log.warning("cannot look up the thread of an email: %r", error)
            return None
        if not raw:
            return None
        value = json.loads(raw)
        return Thread(str(value["message_id"]), str(value["subject"]))

    async def _sent(self, message_id: str) -> SentEmail | None:
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(SENT_PREFIX + message_id)
        except RedisError as error:
            log.warning("cannot look up email %s: %r", message_id, error)
            return None
        if not raw:
            return None
        value = json.loads(raw)
        return SentEmail(str(value["conversation"]), str(value["to"]), str(value["from"]))

    # -- webhooks ----------------------------------------------------------------------------

    def _binding(self, address: str) -> NumberBinding | None:
        return next((b for b in self.config.numbers if b.provider == NAME and b.number == address), None)

    def _opt_out_binding(self, address: str) -> NumberBinding:
        """Our address's binding, for an opt-out: one stands in for a sender bound to no flow
        (CHATFLOW_EMAIL_FROM), since an opt-out needs no flow."""
        return self._binding(address) or NumberBinding(
            address=Address(MAILTO.name, address), provider=NAME, channel=NAME, flow=""
        )

    def _stop(self, id: str, ours: str, customer: str) -> tuple[InboundMessage, NumberBinding]:
        message = InboundMessage(
            id=id, channel=NAME, provider=NAME, customer=customer, number=ours, text=STOP, received_at=received_now()
        )
        return message, self._opt_out_binding(ours)

    async def inbound(self, request: WebhookRequest) -> Received:
        try:
            fields = form_fields(request.body, request.headers.get("content-type", ""))
        except ValueError as error:
            raise BadRequest(str(error)) from None
        mailgun.verify(self.settings.mailgun_signing_key, signed_form(fields))
        try:
            email = parse_inbound(fields)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        return Received(messages=[await self._threaded(email)])

    async def _threaded(self, email: InboundEmail) -> tuple[InboundMessage, NumberBinding]:
        message, binding = await self._route(email)
        if message.text != STOP and email.subject.strip():
            await self._remember_thread(message.conversation.id, Thread(email.id, email.subject.strip()))
        return message, binding

    async def _route(self, email: InboundEmail) -> tuple[InboundMessage, NumberBinding]:
        text = reply_text(email.body)
        # The mailto of List-Unsubscribe, and STOP written back: this address, from this sender.
        if email.subject.strip().lower() == "unsubscribe" or command(text) in OPT_OUT_WORDS:
            return self._stop(email.id, email.recipient, email.sender)
        for refers in email.refers_to:
            sent = await self._sent(refers)
            # Only the person we wrote to goes on in that conversation.
            if sent is None or sent.to != email.sender:
                continue
            try:
                address = ConversationRef.parse(sent.conversation)
            except ValueError:
                continue
            binding = self.config.binding(address.number)
            if binding is None and address.channel == NAME:
                binding = self._opt_out_binding(address.number)
            if binding is None:
                continue
            # A hashed id (CHATFLOW_ID_KEY) names the customer by a token, which still reaches the
            # conversation; on email they are the person we wrote to, by their address.
            customer = sent.to if address.hashed and address.channel == NAME else address.customer
            message = InboundMessage(
                id=email.id,
                channel=address.channel,
                provider=binding.provider,
                customer=customer,
                number=address.number,
                text=text,
                received_at=email.received_at,
            )
            return message, binding
        binding = self._binding(email.recipient)
        if binding is None:
            raise NotFound(f"{email.recipient} is not bound to a flow for email, and the email answers none we sent")
        message = InboundMessage(
            id=email.id,
            channel=NAME,
            provider=NAME,
            customer=email.sender,
            number=email.recipient,
            text=text,
            received_at=email.received_at,
        )
        return message, binding

    async def events(self, request: WebhookRequest) -> Received:
        body = mailgun.json_object(request.body)
        mailgun.verify(self.settings.mailgun_signing_key, mailgun.signed_event(body))
        try:
            event = parse_event(body)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        received = Received()
        sent = await self._sent(event.update.message_id) if event.update is not None else None
        if event.update is not None:
            received.statuses.append(StatusReport(event.update, [sent.conversation] if sent else []))
        if event.opt_out and event.recipient:
            ours = sent.sender if sent is not None else self.sender
            if ours:
                token = mailgun.signed_event(body).token
                received.messages.append(self._stop(f"complaint-{token[:64]}", ours, event.recipient))
        return received

    async def unsubscribe(self, request: WebhookRequest) -> Received:
        ours, recipient = unsubscribe.read_token(self.settings.secret, request.query.get("t", ""))
        return Received(messages=[self._stop(f"unsubscribe-{request.query['t'][-43:]}", ours, recipient)])

    async def unsubscribe_page(self, request: WebhookRequest) -> Received:
        """A browser that opens the link: one button, so a link scanner never unsubscribes anyone."""
        ours, recipient = unsubscribe.read_token(self.settings.secret, request.query.get("t", ""))
        page = (
            "<!doctype html><html><head><meta charset=utf-8><title>Unsubscribe</title></head><body>"
            f"<p>Stop emails from {escape(ours)} to {escape(recipient)}?</p>"
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            "<button>Unsubscribe</button></form></body></html>"
        )
        return Received(answer=WebhookAnswer(200, page, "text/html"))

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        for message, text in replies:
            if message.id.startswith(SILENT) or message.channel != NAME:
                continue
            # Outside any flow (STOP confirmed, HELP): straight to them, never refused as opted out.
            confirmation = OutboundMessage(
                channel=NAME, provider=NAME, number=message.number, customer=message.customer, text=text
            )
            built = build(confirmation, self._from(message.number))
            await self._deliver(built)
        if received.messages and received.messages[0][0].id.startswith("unsubscribe-"):
            return WebhookAnswer(200, "<!doctype html><p>You are unsubscribed.</p>", "text/html")
        return WebhookAnswer(200, "ok")
