"""The web app: channels' webhooks, the journeys API, health and metrics, and the loops that
run beside them for as long as the app runs (the buffer's forwarder, queued journeys, digests).

`chatflow.runtime.services` builds the parts once; `chatflow web`, `chatflow dev`, the tests and
the bench all get their app from there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from temporalio.client import Client

from chatflow.domain.channel import Channel
from chatflow.domain.config import Config
from chatflow.domain.errors import Refused
from chatflow.domain.tasks import stop_tasks
from chatflow.edge.inbound import Receive
from chatflow.edge.statuses import Report
from chatflow.journeys.broadcast import Broadcasts
from chatflow.journeys.service import Journeys
from chatflow.journeys.sources import ConfiguredSource, SourceIntake
from chatflow.web.access import ApiKey, Throttle
from chatflow.web.dashboard import dashboard_routes
from chatflow.web.errors import on_refused
from chatflow.web.health import health_routes
from chatflow.web.journeys_api import journeys_api
from chatflow.web.landing import Mailbox, landing_routes
from chatflow.web.metrics import metrics_routes
from chatflow.web.operations import operations_routes
from chatflow.web.sources import source_routes
from chatflow.web.webhooks import channel_routes

Loop = Callable[[], Coroutine[Any, Any, None]]

# The console channel answers anyone without an account: `chatflow dev` serves it to this machine
# ("open"), `chatflow web` only when told to and then behind the API key ("key"), else not ("off").
ConsoleAccess = Literal["open", "key", "off"]
CONSOLE = "console"


def create_app(
    *,
    config: Config,
    client: Client,
    redis: Redis,
    channels: Mapping[str, Channel],
    receive: Receive,
    report: Report,
    journeys: Journeys,
    broadcasts: Broadcasts,
    loops: Sequence[Loop] = (),
    middleware: Sequence[Middleware] = (),
    sources: Sequence[ConfiguredSource] = (),
    mailbox: Mailbox | None = None,
    console: ConsoleAccess = "open",
) -> Starlette:
    # Wrong API keys and sign-ins, counted together per client address.
    throttle = Throttle(redis)
    key = config.settings.api_key
    api_key = ApiKey(key, throttle, what="the journeys API")
    served = {name: channel for name, channel in channels.items() if name != CONSOLE or console != "off"}
    locked = {CONSOLE: ApiKey(key, throttle, what="the console")} if console == "key" else {}
    routes: list[BaseRoute] = [
        *channel_routes(served, receive, report, public_url=config.settings.public_url, locked=locked),
        *source_routes(sources, SourceIntake(journeys, redis), public_url=config.settings.public_url),
        *journeys_api(api_key, journeys, broadcasts).routes(console=console),
        *operations_routes(ApiKey(key, throttle, what="the operations API"), redis),  # dead letters
        *health_routes(client, redis),
        *metrics_routes(client),
        *landing_routes(config, mailbox=mailbox),  # chatflow dev's caught mail too
        *dashboard_routes(config, journeys, throttle),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(loop()) for loop in loops]
        try:
            yield
        finally:
            # What the forwarder has not forwarded stays in Redis for the next start (or another web).
            await stop_tasks(tasks)

    return Starlette(
        routes=routes,
        middleware=list(middleware),
        exception_handlers={Refused: on_refused},
        lifespan=lifespan,
    )
