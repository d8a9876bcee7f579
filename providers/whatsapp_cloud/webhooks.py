"""Meta's WhatsApp Cloud webhooks: the subscription handshake, inbound messages and statuses.

Meta signs the raw body with the app secret (`X-Hub-Signature-256`); the body is not even parsed
as JSON before that signature holds. One POST can batch many entries, changes, messages and
statuses, may repeat a message (`wamid`), and reports statuses out of order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from chatflow.domain.config import Config, NumberBinding, e164
from chatflow.domain.addresses import conversation_id
from chatflow.domain.messages import STATUS_RANK, DeliveryUpdate, InboundMessage, Media
from providers.intake import Report, hand_on, now, read_body, report_status

# Answer a customer outside any flow (opt-out confirmation, help), straight through the API.
Answer = Callable[[InboundMessage, str], Awaitable[None]]

if TYPE_CHECKING:
    from chatflow.edge.inbound import Receive

JSON = "application/json"
# Meta documents webhook payloads of up to 3 MB; refusing a genuine batch would make Meta retry
# it for days, so the limit is Meta's own.
MAX_REQUEST_BYTES = 3 * 1024 * 1024
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Not something a customer said to the flow: reactions, number changes, "chat opened" events.
IGNORED_TYPES = frozenset({"reaction", "system", "request_welcome", "ephemeral"})
# A business-scoped user id (BSUID) such as "US.13491208655302741918".
USER_ID = re.compile(r"^[A-Za-z]{2}\.[A-Za-z0-9.]{1,120}$")


class UnboundNumber(LookupError):
    pass


@dataclass
class Batch:
    """What one webhook POST carries, each message once, each with the binding it was sent to."""

    messages: list[tuple[InboundMessage, NumberBinding]] = field(default_factory=list)
    # Each status with the conversations it may belong to, the most likely first.
    statuses: list[tuple[list[str], DeliveryUpdate]] = field(default_factory=list)


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def _objects(parent: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = parent.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{where}.{key} must be a list of objects")
    return items


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}.{key} must be an object")
    return value


def customer_for(phone: str, user_id: str, where: str) -> str:
    """The customer's E.164 number, or their business-scoped user id when Meta withholds the number.

    Users with a WhatsApp username may write without revealing their number; their BSUID is
    stable, and the Cloud API accepts it as a recipient, so the conversation is keyed by it.
    """
    if phone:
        if phone.isdigit():
            return e164(f"+{phone}", what=f"{where} sender")
        user_id = user_id or phone  # a BSUID in the phone field
    if USER_ID.match(user_id):
        return user_id
    if user_id:
        raise ValueError(f"{where}: {user_id!r} is neither a phone number nor a WhatsApp user id")
    raise ValueError(f"{where} names no sender (neither a phone number nor a user_id)")


class PayloadParser:
    """Turns a verified webhook payload into a `Batch`; ValueError or UnboundNumber when it can't."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def media_url(self, media_id: str) -> str:
        # Meta sends an id; this Graph URL answers (with the access token) where to download it.
        settings = self.config.settings
        return f"{settings.whatsapp_api_url}/v{settings.whatsapp_api_version}/{media_id}"

    def parse(self, payload: object) -> Batch:
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object")
        batch = Batch()
        seen_messages: set[str] = set()
        seen_statuses: set[tuple[str, str]] = set()
        for e, entry in enumerate(_objects(payload, "entry", "payload")):
            for c, change in enumerate(_objects(entry, "changes", f"entry[{e}]")):
                where = f"entry[{e}].changes[{c}]"
                if change.get("field") != "messages":
                    continue  # account and template updates: nothing for a conversation
                value = _object(change, "value", where)
                messages = _objects(value, "messages", f"{where}.value")
                statuses = _objects(value, "statuses", f"{where}.value")
                if not messages and not statuses:
                    continue
                binding = self.binding(value, where)
                contacts = _objects(value, "contacts", f"{where}.value")
                for m, raw in enumerate(messages):
                    message = self.message(raw, contacts, binding, f"{where}.value.messages[{m}]")
                    if message is not None and message.id not in seen_messages:
                        seen_messages.add(message.id)
                        batch.messages.append((message, binding))
                for s, raw in enumerate(statuses):
                    conversations, update = self.status(raw, binding, f"{where}.value.statuses[{s}]")
                    if (update.message_id, update.status) not in seen_statuses:
                        seen_statuses.add((update.message_id, update.status))
                        batch.statuses.append((conversations, update))
        return batch

    def binding(self, value: dict[str, Any], where: str) -> NumberBinding:
        phone_number_id = str(_object(value, "metadata", f"{where}.value").get("phone_number_id") or "")
        if not phone_number_id:
            raise ValueError(f"{where}.value.metadata.phone_number_id is missing")
        binding = self.config.binding_for_phone_number_id(phone_number_id)
        if binding is None:
            raise UnboundNumber(f"phone_number_id {phone_number_id} is not bound to a flow in the config")
        return binding

    def message(
        self, raw: dict[str, Any], contacts: list[dict[str, Any]], binding: NumberBinding, where: str
    ) -> InboundMessage | None:
        kind = str(raw.get("type") or "")
        if kind in IGNORED_TYPES:
            return None
        wamid = raw.get("id")
        if not isinstance(wamid, str) or not wamid:
            raise ValueError(f"{where}.id is missing")
        phone, user_id = str(raw.get("from") or ""), str(raw.get("from_user_id") or "")
        contact = _contact(contacts, phone, user_id)
        if not user_id and contact:
            user_id = str(contact.get("user_id") or "")
        text, payload, media = self.content(raw, kind, where)
        return InboundMessage(
            id=wamid,
            channel="whatsapp",
            provider="whatsapp_cloud",
            customer=customer_for(phone, user_id, where),
            number=binding.number,
            text=text,
            media=media,
            payload=payload,
            profile_name=str(_object(contact, "profile", where).get("name") or "") if contact else "",
            received_at=now(),
        )

    def content(self, raw: dict[str, Any], kind: str, where: str) -> tuple[str, str, list[Media]]:
        """The message's text, the id of the choice it picked, and its media."""
        body = raw.get(kind) if isinstance(raw.get(kind), dict) else {}
        if kind == "text":
            return str(body.get("body") or ""), "", []
        if kind == "button":  # a quick-reply button of a template
            return str(body.get("text") or ""), str(body.get("payload") or ""), []
        if kind == "interactive":
            reply = body.get(str(body.get("type") or "")) or {}
            if isinstance(reply, dict):  # button_reply or list_reply
                return str(reply.get("title") or ""), str(reply.get("id") or ""), []
            return "", "", []
        if kind in MEDIA_TYPES:
            media_id = str(body.get("id") or "")
            if not media_id:
                raise ValueError(f"{where}.{kind}.id is missing")
            media = Media(url=self.media_url(media_id), content_type=str(body.get("mime_type") or ""))
            return str(body.get("caption") or ""), "", [media]
        if kind == "location":
            place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
            text = f"Location: {body.get('latitude')}, {body.get('longitude')}"
            return text + (f" ({place})" if place else ""), "", []
        if kind == "contacts":
            cards = raw.get("contacts") if isinstance(raw.get("contacts"), list) else []
            return "Contacts: " + "; ".join(_card(card) for card in cards if isinstance(card, dict)), "", []
        # Unsupported or future types still reach the flow, which can say it didn't understand.
        return "", "", []

    def status(self, raw: dict[str, Any], binding: NumberBinding, where: str) -> tuple[list[str], DeliveryUpdate]:
        wamid, status = raw.get("id"), raw.get("status")
        if not isinstance(wamid, str) or not wamid or not isinstance(status, str) or not status:
            raise ValueError(f"{where} needs id and status")
        errors = _objects(raw, "errors", where)
        update = DeliveryUpdate(
            message_id=wamid,
            status=status,
            error_code=str(errors[0].get("code") or "") if errors else "",
            at=_timestamp(raw.get("timestamp")),
        )
        # We may have addressed the customer by phone or by user id: try the conversation of each.
        phone, user_id = str(raw.get("recipient_id") or ""), str(raw.get("recipient_user_id") or "")
        conversations = []
        for candidate_phone, candidate_user in ((phone, ""), ("", user_id)):
            if candidate_phone or candidate_user:
                customer = customer_for(candidate_phone, candidate_user, where)
                conversations.append(conversation_id("whatsapp", binding.number, customer))
        if not conversations:
            raise ValueError(f"{where} names no recipient")
        return list(dict.fromkeys(conversations)), update


def _contact(contacts: list[dict[str, Any]], phone: str, user_id: str) -> dict[str, Any]:
    for contact in contacts:
        if (phone and contact.get("wa_id") == phone) or (user_id and contact.get("user_id") == user_id):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _card(card: dict[str, Any]) -> str:
    name = card.get("name", {}).get("formatted_name", "") if isinstance(card.get("name"), dict) else ""
    phones = [str(p.get("phone")) for p in card.get("phones", []) if isinstance(p, dict) and p.get("phone")]
    return " ".join([name, *phones]).strip()


def _timestamp(value: object) -> str:
    try:
        return datetime.fromtimestamp(int(str(value)), UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        return now()


class WhatsAppCloudWebhooks:
    def __init__(
        self, config: Config, receive: Receive, report: Report, answer: Answer | None = None
    ) -> None:
        self.config = config
        self.intake = receive  # the inbound edge: opt-out, keywords, dedupe, delivery
        self.answer = answer
        self.report = report
        self.parser = PayloadParser(config)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/webhooks/whatsapp", self.verify, methods=["GET"]),
            Route("/webhooks/whatsapp", self.receive, methods=["POST"]),
        ]

    async def verify(self, request: Request) -> Response:
        """Meta's subscription handshake: echo the challenge when the verify token is ours."""
        params = request.query_params
        token = self.config.settings.whatsapp_verify_token
        offered = params.get("hub.verify_token", "")
        if (
            params.get("hub.mode") == "subscribe"
            and token
            and hmac.compare_digest(offered.encode(), token.encode())
        ):
            return PlainTextResponse(params.get("hub.challenge", ""))
        raise HTTPException(403, "hub.mode must be subscribe and hub.verify_token must match WHATSAPP_VERIFY_TOKEN")

    async def receive(self, request: Request) -> Response:
        signature = request.headers.get("x-hub-signature-256", "")
        if not signature:
            raise HTTPException(403, "missing X-Hub-Signature-256")
        secret = self.config.settings.whatsapp_app_secret
        if not secret:
            raise HTTPException(403, "WHATSAPP_APP_SECRET is not set: cannot verify Meta's signature")
        body = await read_body(request, limit=MAX_REQUEST_BYTES, content_type=JSON)
        if not signature_matches(secret, body, signature):
            raise HTTPException(403, "X-Hub-Signature-256 does not match this body")
        try:
            batch = self.parser.parse(json.loads(body.decode("utf-8")))
        except UnicodeDecodeError:
            raise HTTPException(400, "body is not UTF-8") from None
        except ValueError as error:  # JSONDecodeError included
            raise HTTPException(400, f"malformed webhook: {error}") from None
        except RecursionError:
            raise HTTPException(400, "malformed webhook: JSON nested too deeply") from None
        except UnboundNumber as error:
            raise HTTPException(404, str(error)) from None
        for message, binding in batch.messages:
            verdict = await hand_on(self.intake, message, binding)
            if verdict.reply and self.answer is not None:
                await self.answer(message, verdict.reply)
        for conversations, update in batch.statuses:
            if update.status in STATUS_RANK:
                await self.report_first(conversations, update)
        return PlainTextResponse("ok")

    async def report_first(self, conversations: list[str], update: DeliveryUpdate) -> None:
        for conversation in conversations:
            if await report_status(self.report, conversation, update):
                return
