"""The web app: webhooks in, journeys API, operations endpoints. Assembled from route lists."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from temporalio.client import Client

from chatflow.config import Config
from chatflow.dispatch import Deliver, deliver
from chatflow.messages import InboundMessage


def direct_delivery(client: Client) -> Deliver:
    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow)

    return _deliver


def create_app(config: Config, client: Client, *, deliver: Deliver | None = None) -> Starlette:
    deliver = deliver or direct_delivery(client)
    routes: list[BaseRoute] = []
    return Starlette(routes=routes)
