"""Prometheus metrics of the web app and the worker, and the `/metrics` endpoint.

Metrics live in prometheus_client's default registry: the web app and the worker of `chatflow dev`
share a process and so one `/metrics`; a separate `chatflow worker` serves its own
(`--metrics-port`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

log = logging.getLogger(__name__)

WEBHOOKS = Counter(
    "chatflow_webhooks_total",
    "Inbound webhooks by provider and outcome (accepted, rejected, error).",
    ["provider", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "chatflow_webhook_duration_seconds",
    "Time from a webhook's arrival to its answer.",
    ["provider"],
)
SENDS = Counter(
    "chatflow_sends_total",
    "Messages handed to providers, by provider and status (the provider's status, or failed / retry).",
    ["provider", "status"],
)
ACTIVE_CONVERSATIONS = Gauge(
    "chatflow_active_conversations",
    "Running conversation workflows, as counted by Temporal visibility at scrape time.",
)

# Paths that receive customers' messages, and the provider each belongs to.
_INBOUND_PATHS = (
    ("/webhooks/twilio", "twilio"),
    ("/webhooks/whatsapp", "whatsapp_cloud"),
    ("/console/messages", "console"),
)
ACTIVE_QUERY = "WorkflowType = 'ConversationWorkflow' AND ExecutionStatus = 'Running'"


def inbound_provider(method: str, path: str) -> str | None:
    if method != "POST":
        return None
    for prefix, provider in _INBOUND_PATHS:
        if path == prefix or path.startswith(prefix + "/"):
            return provider
    return None


def outcome(status: int) -> str:
    if status < 400:
        return "accepted"
    return "rejected" if status < 500 else "error"


class WebhookMetrics:
    """ASGI middleware counting and timing inbound webhooks; leaves other requests alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = inbound_provider(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        if provider is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            WEBHOOKS.labels(provider, outcome(status)).inc()
            WEBHOOK_SECONDS.labels(provider).observe(time.perf_counter() - started)


def record_send(provider: str, status: str) -> None:
    SENDS.labels(provider, status).inc()


async def count_active_conversations(client: Client) -> None:
    """Refresh the active-conversations gauge; on failure keep the last value (and /readyz tells)."""
    try:
        count = await asyncio.wait_for(
            client.count_workflows(ACTIVE_QUERY, rpc_timeout=timedelta(seconds=2)), 3
        )
    except Exception as error:  # noqa: BLE001 - a scrape must never fail because Temporal did
        log.warning("cannot count active conversations: %s", error)
        return
    ACTIVE_CONVERSATIONS.set(count.count)


def metrics_routes(client: Client | None) -> list[Route]:
    async def metrics(request: Request) -> Response:
        if client is not None:
            await count_active_conversations(client)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]
