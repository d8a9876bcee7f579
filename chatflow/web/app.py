"""The web app: webhooks in, journeys API, operations endpoints. Assembled from route lists."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from temporalio.client import Client

from chatflow.domain.config import Config
from chatflow.edge.buffer import BufferedDelivery
from chatflow.edge.dedupe import Dedupe, deduped
from chatflow.edge.delivery_reports import DeliveryReport, DeliveryReports
from chatflow.edge.fallback import ChannelFallback
from chatflow.edge.inbound import InboundEdge
from chatflow.edge.optout import OptOuts
from chatflow.web.console import answer_to, console_routes
from chatflow.temporal.client import Deliver, deliver, send_delivery
from chatflow.web.health import health_routes
from chatflow.web.journeys_api import journeys_api
from chatflow.domain.messages import DeliveryUpdate, InboundMessage
from chatflow.web.metrics import WebhookMetrics, metrics_routes
from chatflow.flows.registry import FlowRegistry, registry
from chatflow.runtime.tracing import asgi_middleware
from chatflow.temporal.worker import TASK_QUEUE
from providers.console import ConsoleOutbox
from providers.intake import Report
from providers import build_providers
from providers.base import SendError
from providers.webhooks import webhook_routes
from providers.whatsapp_cloud_webhooks import Answer

log = logging.getLogger(__name__)


def direct_delivery(client: Client) -> Deliver:
    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow)

    return _deliver


def direct_reporting(
    client: Client, reports: DeliveryReports | None = None, fallback: ChannelFallback | None = None
) -> Report:
    """Statuses go to the conversation's transcript, to the channel fallback (a WhatsApp message
    delivered needs no SMS; a failed one needs it now) and, when a callback URL is configured,
    to the business as signed delivery reports."""

    async def _report(conversation_id: str, update: DeliveryUpdate) -> bool:
        known = await send_delivery(client, conversation_id, update)
        if fallback is not None:
            await fallback.on_status(update)
        if reports is not None:
            _, _, number, customer = conversation_id.split(":", 3)
            await reports.status_changed(
                DeliveryReport(
                    conversation_id=conversation_id,
                    message_id=update.message_id,
                    status=update.status,
                    customer=customer,
                    number=number,
                    error_code=update.error_code,
                    at=update.at,
                )
            )
        return known

    return _report


def inbound_edge(client: Client, deliver: Deliver, redis: Redis | None) -> InboundEdge:
    """Opt-out, help, keywords and the fast dedupe in front of every flow (they need Redis)."""
    if redis is None:
        return InboundEdge(deliver)
    dedupe = Dedupe(redis)
    # A BufferedDelivery claims ids itself, atomically with buffering; direct delivery needs
    # the dedupe in front of it.
    if not isinstance(deliver, BufferedDelivery):
        deliver = deduped(deliver, dedupe)
    return InboundEdge(deliver, OptOuts(redis), dedupe, client=client)


def direct_answer(config: Config) -> Answer:
    """Answer a WhatsApp customer outside any flow, straight through the Cloud API."""
    whatsapp = build_providers(config).get("whatsapp_cloud")

    async def _answer(message: InboundMessage, text: str) -> None:
        if whatsapp is None:
            return
        try:
            await whatsapp.send(answer_to(message, text))
        except SendError as error:
            log.warning("could not answer %s outside a flow: %s", message.id, error)

    return _answer


def create_app(
    config: Config,
    client: Client,
    *,
    deliver: Deliver | None = None,
    redis: Redis | None = None,
    flows: FlowRegistry | None = None,
    console_outbox: ConsoleOutbox | None = None,
) -> Starlette:
    deliver = deliver or direct_delivery(client)
    edge = inbound_edge(client, deliver, redis)
    reports = fallback = None
    if redis is not None and config.settings.callback_url:
        reports = DeliveryReports(client, redis, task_queue=TASK_QUEUE)
    if redis is not None and any(b.fallback_number for b in config.numbers):
        fallback = ChannelFallback(redis, config, {})  # the web side only records statuses
    report = direct_reporting(client, reports, fallback)
    routes: list[BaseRoute] = [*webhook_routes(config, edge.receive, report, direct_answer(config))]
    if redis is not None:  # the journeys API keeps idempotency keys and queues in Redis
        routes += journeys_api(config, client, redis, flows or registry).routes()
    routes += health_routes(client, redis)
    routes += metrics_routes(client)
    routes += console_routes(config, edge.receive, console_outbox)
    middleware = [Middleware(WebhookMetrics), *asgi_middleware()]
    return Starlette(routes=routes, middleware=middleware)
