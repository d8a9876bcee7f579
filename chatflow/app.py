"""The web app: webhooks in, journeys API, operations endpoints. Assembled from route lists."""

from __future__ import annotations

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from temporalio.client import Client

from chatflow.config import Config
from chatflow.console_routes import console_routes
from chatflow.dispatch import Deliver, deliver, send_delivery
from chatflow.health import health_routes
from chatflow.journeys.api import journeys_api
from chatflow.messages import DeliveryUpdate, InboundMessage
from chatflow.metrics import WebhookMetrics, metrics_routes
from chatflow.registry import FlowRegistry, registry
from chatflow.tracing import asgi_middleware
from providers.console import ConsoleOutbox
from providers.intake import Report
from providers.webhooks import webhook_routes


def direct_delivery(client: Client) -> Deliver:
    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow)

    return _deliver


def direct_reporting(client: Client) -> Report:
    async def _report(conversation_id: str, update: DeliveryUpdate) -> bool:
        return await send_delivery(client, conversation_id, update)

    return _report


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
    routes: list[BaseRoute] = [*webhook_routes(config, deliver, direct_reporting(client))]
    if redis is not None:  # the journeys API keeps idempotency keys and queues in Redis
        routes += journeys_api(config, client, redis, flows or registry).routes()
    routes += health_routes(client, redis)
    routes += metrics_routes(client)
    routes += console_routes(config, deliver, console_outbox)
    middleware = [Middleware(WebhookMetrics), *asgi_middleware()]
    return Starlette(routes=routes, middleware=middleware)
