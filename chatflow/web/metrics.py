"""The web app's Prometheus metrics and the `/metrics` endpoint (which also shows the worker's
when they share a process).

Metrics live in prometheus_client's default registry: the web app and the worker of `chatflow dev`
share a process and so one `/metrics`; a separate `chatflow worker` serves its own
(`--metrics-port`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client

from chatflow.temporal.constants import CONVERSATION_WORKFLOW

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
ACTIVE_CONVERSATIONS = Gauge(
    "chatflow_active_conversations",
    "Running conversation workflows, as counted by Temporal visibility at scrape time.",
)

ACTIVE_QUERY = f"WorkflowType = '{CONVERSATION_WORKFLOW}' AND ExecutionStatus = 'Running'"


def outcome(status: int) -> str:
    if status < 400:
        return "accepted"
    return "rejected" if status < 500 else "error"


async def count_active_conversations(client: Client) -> None:
    """Refresh the active-conversations gauge; on failure keep the last value (and /readyz tells)."""
    try:
        count = await asyncio.wait_for(client.count_workflows(ACTIVE_QUERY, rpc_timeout=timedelta(seconds=2)), 3)
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
