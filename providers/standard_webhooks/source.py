"""A Standard Webhooks sender's events, verified by the reference library: HMAC-SHA256 of
`<id>.<timestamp>.<body>` with the `whsec_` secret, the timestamp within five minutes. The
event id is `webhook-id` (the same on every redelivery); its type is the payload's `type`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from standardwebhooks import Webhook, WebhookVerificationError

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import BadRequest, Forbidden
from chatflow.domain.source import Source, SourceBinding, SourceEvent, SourceSpec, environment_name
from providers._sources import json_object, text_option


@dataclass(frozen=True)
class StandardWebhooksSource:
    name: str
    webhook: Webhook
    type_field: str = "type"

    def verify(self, request: WebhookRequest) -> list[SourceEvent]:
        try:
            self.webhook.verify(request.body, dict(request.headers), json_parse=False)
        except WebhookVerificationError as error:
            raise Forbidden(f"the webhook signature does not hold: {error}") from None
        payload = json_object(request.body)
        kind = payload.get(self.type_field)
        if not isinstance(kind, str):
            raise BadRequest(f"the event has no {self.type_field!r}")
        return [SourceEvent(request.headers["webhook-id"], kind, payload)]


def build(binding: SourceBinding, environment: Mapping[str, str]) -> Source:
    unknown = set(binding.options) - set(spec.option_keys)
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} (standard_webhooks takes type_field)")
    secret = environment.get(environment_name(binding.name, "WEBHOOK_SECRET"), "")
    try:
        webhook = Webhook(secret)
    except Exception as error:  # noqa: BLE001 - the library raises several kinds for a bad secret
        raise ValueError(
            f"{environment_name(binding.name, 'WEBHOOK_SECRET')} is not a whsec_ secret: {error}"
        ) from None
    return StandardWebhooksSource(binding.name, webhook, text_option(binding.options, "type_field", "type"))


# Svix's schedule retries for about 27 hours; two days covers it and other senders' like it.
spec = SourceSpec(kind="standard_webhooks", build=build, redelivery=timedelta(days=2), option_keys=("type_field",))
