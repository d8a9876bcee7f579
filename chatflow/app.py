"""The web app: webhooks in, journeys API, operations endpoints. Assembled from route lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from temporalio.client import Client

from chatflow.config import Config
from chatflow.console_routes import console_routes
from chatflow.dispatch import deliver
from chatflow.health import health_routes
from chatflow.messages import InboundMessage
from chatflow.metrics import WebhookMetrics, metrics_routes
from chatflow.tracing import asgi_middleware
from providers.console import ConsoleOutbox

# How the web tier hands an inbound message on: straight to Temporal by default; a buffered
# implementation can replace it without the webhooks knowing.
Deliver = Callable[[InboundMessage, str], Awaitable[None]]


def direct_delivery(client: Client) -> Deliver:
    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow)

    return _deliver


def create_app(
    config: Config,
    client: Client,
    *,
    deliver: Deliver | None = None,
    redis: Redis | None = None,
    console_outbox: ConsoleOutbox | None = None,
) -> Starlette:
    deliver = deliver or direct_delivery(client)
    routes: list[BaseRoute] = []
    routes += health_routes(client, redis)
    routes += metrics_routes(client)
    routes += console_routes(config, deliver, console_outbox)
    middleware = [Middleware(WebhookMetrics), *asgi_middleware()]
    return Starlette(routes=routes, middleware=middleware)
