"""The web app: webhooks in, journeys API, operations endpoints. Assembled from route lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from temporalio.client import Client

from chatflow.config import Config
from chatflow.dispatch import deliver, send_delivery
from chatflow.messages import DeliveryUpdate, InboundMessage
from providers.intake import Report
from providers.webhooks import webhook_routes

# How the web tier hands an inbound message on: straight to Temporal by default; a buffered
# implementation can replace it without the webhooks knowing.
Deliver = Callable[[InboundMessage, str], Awaitable[None]]


def direct_delivery(client: Client) -> Deliver:
    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow)

    return _deliver


def direct_reporting(client: Client) -> Report:
    async def _report(conversation_id: str, update: DeliveryUpdate) -> bool:
        return await send_delivery(client, conversation_id, update)

    return _report


def create_app(config: Config, client: Client, *, deliver: Deliver | None = None) -> Starlette:
    deliver = deliver or direct_delivery(client)
    routes: list[BaseRoute] = [*webhook_routes(config, deliver, direct_reporting(client))]
    return Starlette(routes=routes)
