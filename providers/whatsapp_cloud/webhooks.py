"""Meta's WhatsApp Cloud webhooks: the subscription handshake, inbound messages and statuses.

Meta signs the raw body with the app secret (`X-Hub-Signature-256`); the body is not even parsed
as JSON before that signature holds. One POST can batch many entries, changes, messages and
statuses, may repeat a message (`wamid`), and reports statuses out of order.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from chatflow.domain.channel import Received, WebhookAnswer, WebhookRequest, read_settings
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.messages import STATUS_RANK
from chatflow.domain.signing import signature_matches
from providers._messages import one_line, shown, text
from providers.whatsapp_cloud.graph import graph_url
from providers.whatsapp_cloud.inbound import parse_message
from providers.whatsapp_cloud.payload import items, object_at
from providers.whatsapp_cloud.settings import PHONE_NUMBER_ID, CloudSettings
from providers.whatsapp_cloud.statuses import parse_status

JSON = "application/json"
# Meta documents webhook payloads of up to 3 MB; refusing a genuine batch would make Meta retry
# it for days, so the limit is Meta's own.
MAX_REQUEST_BYTES = 3 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    """What one POST has given so far, and the message ids and statuses already in it."""

    received: Received = field(default_factory=Received)
    messages: set[str] = field(default_factory=set)
    statuses: set[tuple[str, str]] = field(default_factory=set)


def _dropped(where: str, reason: str) -> None:
    """One log line for a part of a POST that is dropped: where it is and why."""
    log.warning("whatsapp_cloud dropped %s", one_line(reason if reason.startswith(where) else f"{where}: {reason}"))


class WhatsAppCloudWebhooks:
    """Verifies and parses Meta's requests into what the edge receives."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = read_settings(CloudSettings, config.settings.environment)

    async def handshake(self, request: WebhookRequest) -> Received:
        """Meta's subscription handshake: echo the challenge when the verify token is ours."""
        params = request.query
        token = self.settings.verify_token
        offered = params.get("hub.verify_token", "")
        if params.get("hub.mode") == "subscribe" and token and hmac.compare_digest(offered.encode(), token.encode()):
            return Received(answer=WebhookAnswer(200, params.get("hub.challenge", "")))
        raise Forbidden("hub.mode must be subscribe and hub.verify_token must match WHATSAPP_VERIFY_TOKEN")

    async def receive(self, request: WebhookRequest) -> Received:
        signature = request.headers.get("x-hub-signature-256", "")
        if not signature:
            raise Forbidden("missing X-Hub-Signature-256")
        secret = self.settings.app_secret
        if not secret:
            raise Forbidden("WHATSAPP_APP_SECRET is not set: cannot verify Meta's signature")
        if not signature_matches(secret, request.body, signature):
            raise Forbidden("X-Hub-Signature-256 does not match this body")
        try:
            return self.parse(json.loads(request.body.decode("utf-8")))
        except UnicodeDecodeError:
            raise BadRequest("body is not UTF-8") from None
        except RecursionError:
            raise BadRequest("malformed webhook: JSON nested too deeply") from None
        except ValueError as error:  # JSONDecodeError included
            raise BadRequest(f"malformed webhook: {error}") from None

    def parse(self, payload: object) -> Received:
        """Each message once, each status once, in Meta's order.

        Every entry, change, message and status stands on its own: one that is malformed, or a
        change for a phone_number_id of the app that no number of the config has, is logged in
        one line and dropped, and the rest is received. Meta sends a POST it did not get a 200
        for again and again for days, and a part it sent once it will not send right. ValueError
        only when the payload is not an object at all.
        """
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object")
        batch = _Batch()
        for entry_at, entry in items(payload, "entry", "", _dropped):
            for change_at, change in items(entry, "changes", entry_at, _dropped):
                try:
                    self.change(change, change_at, batch)
                except ValueError as error:
                    _dropped(change_at, str(error))
        return batch.received

    def change(self, change: dict[str, Any], where: str, batch: _Batch) -> None:
        """The messages and statuses of one change into `batch`; ValueError drops all of them."""
        if change.get("field") != "messages":
            return  # account and template updates: nothing for a conversation
        value = change.get("value")
        if not isinstance(value, dict):
            raise ValueError("value must be an object")
        messages = items(value, "messages", f"{where}.value", _dropped)
        statuses = items(value, "statuses", f"{where}.value", _dropped)
        if not messages and not statuses:
            return
        binding = self.binding(value)
        contacts = [contact for _, contact in items(value, "contacts", f"{where}.value", _dropped)]
        for message_at, raw in messages:
            try:
                message = parse_message(raw, contacts, binding, message_at, self.media_url)
            except ValueError as error:
                _dropped(message_at, str(error))
                continue
            if message is not None and message.id not in batch.messages:
                batch.messages.add(message.id)
                batch.received.messages.append((message, binding))
        for status_at, raw in statuses:
            try:
                report = parse_status(raw, binding, status_at)
            except ValueError as error:
                _dropped(status_at, str(error))
                continue
            if report is None:
                continue
            key = (report.update.message_id, report.update.status)
            # Statuses without a rank (deleted, warning...) say nothing about delivery.
            if key not in batch.statuses and report.update.status in STATUS_RANK:
                batch.statuses.add(key)
                batch.received.statuses.append(report)

    def binding(self, value: dict[str, Any]) -> NumberBinding:
        """The number a change is for; ValueError when it names none, or one not in the config."""
        phone_number_id = text(object_at(value, "metadata").get("phone_number_id"))
        if not phone_number_id:
            raise ValueError("value.metadata.phone_number_id is missing")
        binding = next(
            (
                b
                for b in self.config.numbers
                if b.provider == "whatsapp_cloud" and b.options.get(PHONE_NUMBER_ID) == phone_number_id
            ),
            None,
        )
        if binding is None:
            raise ValueError(f"phone_number_id {shown(phone_number_id)} is not bound to a flow in the config")
        return binding

    def media_url(self, media_id: str) -> str:
        return graph_url(self.settings, media_id)
