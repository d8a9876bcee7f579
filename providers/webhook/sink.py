"""Lifecycle events to the business's webhook, one request per event, in order, signed as
Standard Webhooks sign (the `standardwebhooks` library): `webhook-id` (the event's id, the same on
every retry, to drop repeats by), `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 with
the `whsec_` secret `<NAME>_SINK_SECRET`). The body is `{"type", "timestamp", "data"}`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from chatflow.domain.sink import LifecycleEvent, Sink, SinkBinding, SinkSpec
from chatflow.domain.source import environment_name
from providers._sinks import post


@dataclass(frozen=True)
class WebhookSink:
    name: str
    url: str
    webhook: Webhook
    http: httpx.AsyncClient

    async def deliver(self, events: Sequence[LifecycleEvent]) -> None:
        for event in events:
            body = json.dumps({"type": event.type, "timestamp": event.at, "data": asdict(event)})
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": event.id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": self.webhook.sign(event.id, now, body),
            }
            await post(self.http, self.url, what=f"webhook {self.name}", content=body, headers=headers)


def build(binding: SinkBinding, environment: Mapping[str, str], http: httpx.AsyncClient) -> Sink:
    if not binding.url:
        raise ValueError('needs url = "https://..." (where the events go)')
    if binding.options:
        raise ValueError(f"unknown key {sorted(binding.options)[0]!r} (webhook takes name, kind, url, types)")
    env = environment_name(binding.name, "SINK_SECRET")
    try:
        webhook = Webhook(environment.get(env, ""))
    except Exception as error:  # noqa: BLE001 - the library raises several kinds for a bad secret
        raise ValueError(f"{env} is not a whsec_ secret: {error}") from None
    return WebhookSink(binding.name, binding.url, webhook, http)


# One event a request: Standard Webhooks has one message per request.
spec = SinkSpec(kind="webhook", build=build, batch=50)
