"""The parts of a chatflow process, built from the config: flows, Temporal client, Redis,
providers, and the two services, the web app and the worker, run until told to stop.

`chatflow web`, `chatflow worker` and `chatflow dev` are different arrangements of these parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Mapping, Sequence

import uvicorn
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.worker import Worker

import providers as provider_package
from chatflow.web.app import create_app
from chatflow.domain.config import Config, ConfigError, check_flows
from chatflow.edge.buffer import BufferedDelivery, Forwarder
from chatflow.edge.delivery_reports import DeliveryReporter
from chatflow.edge.fallback import ChannelFallback
from chatflow.edge.optout import OptOuts
from chatflow.edge.rate_limit import RateLimiter, SenderRates
from chatflow.edge.send_guard import SendGuard
from chatflow.flows.flow import Flow, FlowDefinitionError
from chatflow.journeys.service import Journeys
from chatflow.flows.registry import FlowRegistry, flows_in
from chatflow.runtime.tracing import temporal_interceptors
from chatflow.temporal.worker import build_worker
from providers.base import Provider
from providers.console import ConsoleOutbox, ConsoleProvider, Outbox, RedisOutbox

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """Something outside the config stops a process from starting (Temporal unreachable...)."""


def load_flows(config: Config, *, source: str = "chatflow.toml") -> list[type[Flow]]:
    """The flows of the config's modules; ConfigError for a missing module, a broken flow or a
    number bound to a flow none of them defines."""
    flows: list[type[Flow]] = []
    for module in config.flow_modules:
        try:
            flows += flows_in(module)
        except ModuleNotFoundError as error:
            if error.name is None or not module.startswith(error.name):
                raise  # the module exists but imports something missing: the author's bug
            raise ConfigError(f"{source}: [flows] module {module!r} not found") from None
        except FlowDefinitionError as error:
            raise ConfigError(f"{source}: {error}") from None
    check_flows(config, {flow.name for flow in flows}, source=source)
    return flows


async def connect_temporal(config: Config, *, lazy: bool = False) -> Client:
    address = config.settings.temporal_address or DEFAULT_TEMPORAL_ADDRESS
    try:
        return await Client.connect(
            address,
            namespace=config.settings.temporal_namespace,
            interceptors=temporal_interceptors(),
            lazy=lazy,
        )
    except RuntimeError as error:
        raise StartupError(
            f"cannot reach Temporal at {address} (set CHATFLOW_TEMPORAL_ADDRESS): {error}"
        ) from None


def connect_redis(config: Config) -> Redis | None:
    url = config.settings.redis_url
    return Redis.from_url(url) if url else None


async def check_redis(redis: Redis | None) -> None:
    """Fail at start rather than at the first send. The first command also imports redis-py's
    lazily loaded modules, which would otherwise load while a workflow runs and make Temporal's
    sandbox warn about imports after the workflow was loaded."""
    if redis is None:
        return
    try:
        await redis.ping()
    except Exception as error:  # noqa: BLE001 - any failure: the same message
        raise StartupError(f"cannot reach Redis (CHATFLOW_REDIS_URL): {error}") from None


def console_outbox(redis: Redis | None) -> ConsoleOutbox:
    # Without Redis the console's messages stay in this process: fine for tests, invisible to a
    # web app running elsewhere.
    return RedisOutbox(redis) if redis is not None else Outbox()


def build_providers(config: Config, outbox: ConsoleOutbox) -> dict[str, Provider]:
    built: dict[str, Provider] = {"console": ConsoleProvider(outbox)}
    # The Twilio and WhatsApp Cloud adapters come from `providers.build_providers` when the
    # package has it; the console provider stays ours so it writes where the web app reads.
    account_providers = getattr(provider_package, "build_providers", None)
    if account_providers is not None:
        for name, provider in dict(account_providers(config)).items():
            built.setdefault(name, provider)
    return built


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The CLI owns signals: it stops the web app, the worker and the servers in order.
        yield


async def serve_web(
    config: Config,
    client: Client,
    redis: Redis | None,
    sock: socket.socket,
    stop: asyncio.Event,
    flows: Sequence[type[Flow]] = (),
) -> None:
    """Serve the web app on an already bound socket until `stop` is set.

    With Redis, inbound messages are buffered there and a forwarder drains them into Temporal,
    so a webhook is acknowledged even while Temporal is unreachable and nothing is lost.
    """
    deliver = BufferedDelivery(redis) if redis is not None else None
    registry = FlowRegistry(flows)
    app = create_app(
        config,
        client,
        deliver=deliver,
        redis=redis,
        flows=registry,
        console_outbox=console_outbox(redis) if redis else None,
    )
    background: list[asyncio.Task[None]] = []
    if redis is not None:
        background.append(asyncio.create_task(Forwarder(redis, client).run()))
        # Journeys queued behind a running conversation (when_busy = "queue") start as it ends.
        journeys = Journeys(config, client, redis, registry)
        background.append(asyncio.create_task(journeys.drain_queue()))
        background.append(asyncio.create_task(journeys.flush_digests()))
    server = _Server(
        uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=3)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
    # What the forwarder has not forwarded stays in Redis for the next start (or another web).
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_worker(
    client: Client,
    flows: list[type[Flow]],
    providers: Mapping[str, Provider],
    stop: asyncio.Event,
    *,
    config: Config | None = None,
    redis: Redis | None = None,
) -> None:
    """Run conversations and their activities until `stop` is set.

    With Redis every send passes the opt-out check and the sender's rate limit, shared by all
    worker processes.
    """
    guard = None
    sweeper: asyncio.Task[None] | None = None
    if redis is not None:
        rates = SenderRates(config.numbers if config else ())
        optouts, limiter = OptOuts(redis), RateLimiter(redis)
        watchers = []
        if config is not None and any(b.fallback_number for b in config.numbers):
            # WhatsApp messages not delivered in time go again by SMS, paced and opt-out checked.
            fallback = ChannelFallback(
                redis, config, providers, optouts=optouts, guard=SendGuard(optouts, limiter, rates)
            )
            watchers.append(fallback.watch)
            sweeper = asyncio.create_task(fallback.sweep_forever())
        guard = SendGuard(optouts, limiter, rates, watchers=watchers)
    reporter = None
    if config is not None and config.settings.callback_url:
        reporter = DeliveryReporter(config.settings.callback_url, config.settings.callback_secret)
    worker: Worker = build_worker(client, flows, providers, guard=guard, reporter=reporter)
    try:
        async with worker:
            await stop.wait()
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
