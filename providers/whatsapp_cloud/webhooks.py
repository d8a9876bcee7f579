"""Meta's WhatsApp Cloud webhooks: the subscription handshake, inbound messages and statuses.

Meta signs the raw body with the app secret (`X-Hub-Signature-256`); the body is not even parsed
as JSON before that signature holds. One POST can batch many entries, changes, messages and
statuses, may repeat a message (`wamid`), and reports statuses out of order.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from chatflow.domain.channel import Received, WebhookAnswer, WebhookRequest
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import BadRequest, Forbidden, NotFound
from chatflow.domain.messages import STATUS_RANK
from chatflow.domain.signing import signature_matches
from providers.whatsapp_cloud.graph import graph_url
from providers.whatsapp_cloud.inbound import parse_message
from providers.whatsapp_cloud.payload import object_at, objects
from providers.whatsapp_cloud.statuses import parse_status

JSON = "application/json"
# Meta documents webhook payloads of up to 3 MB; refusing a genuine batch would make Meta retry
# it for days, so the limit is Meta's own.
MAX_REQUEST_BYTES = 3 * 1024 * 1024


class WhatsAppCloudWebhooks:
    """Verifies and parses Meta's requests into what the edge receives."""

    def __init__(self, config: Config) -> None:
        self.config = config

    async def handshake(self, request: WebhookRequest) -> Received:
        """Meta's subscription handshake: echo the challenge when the verify token is ours."""
        params = request.query
        token = self.config.settings.whatsapp_verify_token
        offered = params.get("hub.verify_token", "")
        if params.get("hub.mode") == "subscribe" and token and hmac.compare_digest(offered.encode(), token.encode()):
            return Received(answer=WebhookAnswer(200, params.get("hub.challenge", "")))
        raise Forbidden("hub.mode must be subscribe and hub.verify_token must match WHATSAPP_VERIFY_TOKEN")

    async def receive(self, request: WebhookRequest) -> Received:
        signature = request.headers.get("x-hub-signature-256", "")
        if not signature:
            raise Forbidden("missing X-Hub-Signature-256")
        secret = self.config.settings.whatsapp_app_secret
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
        """Each message once, each status once, in Meta's order; ValueError when malformed,
        NotFound for a phone_number_id that no number of the config has."""
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object")
        received = Received()
        seen_messages: set[str] = set()
        seen_statuses: set[tuple[str, str]] = set()
        for e, entry in enumerate(objects(payload, "entry", "payload")):
            for c, change in enumerate(objects(entry, "changes", f"entry[{e}]")):
                where = f"entry[{e}].changes[{c}]"
                if change.get("field") != "messages":
                    continue  # account and template updates: nothing for a conversation
                value = object_at(change, "value", where)
                messages = objects(value, "messages", f"{where}.value")
                statuses = objects(value, "statuses", f"{where}.value")
                if not messages and not statuses:
                    continue
                binding = self.binding(value, where)
                contacts = objects(value, "contacts", f"{where}.value")
                for m, raw in enumerate(messages):
                    message = parse_message(raw, contacts, binding, f"{where}.value.messages[{m}]", self.media_url)
                    if message is not None and message.id not in seen_messages:
                        seen_messages.add(message.id)
                        received.messages.append((message, binding))
                for s, raw in enumerate(statuses):
                    report = parse_status(raw, binding, f"{where}.value.statuses[{s}]")
                    key = (report.update.message_id, report.update.status)
                    # Statuses without a rank (deleted, warning...) say nothing about delivery.
                    if key not in seen_statuses and report.update.status in STATUS_RANK:
                        seen_statuses.add(key)
                        received.statuses.append(report)
        return received

    def binding(self, value: dict[str, Any], where: str) -> NumberBinding:
        phone_number_id = str(object_at(value, "metadata", f"{where}.value").get("phone_number_id") or "")
        if not phone_number_id:
            raise ValueError(f"{where}.value.metadata.phone_number_id is missing")
        binding = self.config.binding_for_phone_number_id(phone_number_id)
        if binding is None:
            raise NotFound(f"phone_number_id {phone_number_id} is not bound to a flow in the config")
        return binding

    def media_url(self, media_id: str) -> str:
        return graph_url(self.config.settings, media_id)
