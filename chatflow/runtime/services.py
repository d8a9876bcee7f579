"""The one wiring: the running parts of chatflow, built once from the config, and the two
services made of them, the web app and the worker.

`chatflow web`, `chatflow worker`, `chatflow dev`, the tests and the bench all start from
`Services.start`, so what is tested and benchmarked is what users run: the same Redis edge
(opt-out, dedupe, keywords, buffer and forwarder), the same send guard, the same loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import uvicorn
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from starlette.applications import Starlette
from temporalio.client import Client
from temporalio.worker import Worker

import providers
from chatflow.domain.channel import Channel, Resources
from chatflow.domain.config import Config, check_flows
from chatflow.domain.errors import ConfigError, FlowDefinitionError, StartupError
from chatflow.domain.sink import Sink, SinkBinding, SinkSpec
from chatflow.domain.tasks import stop_tasks
from chatflow.edge.beside import BesideConversations
from chatflow.edge.buffer import BufferBarrier, BufferedDelivery, Forwarder
from chatflow.edge.consent import Scopes
from chatflow.edge.dedupe import Dedupe
from chatflow.edge.delivery import direct_delivery
from chatflow.edge.delivery_reports import DeliveryReports
from chatflow.edge.fallback import ChannelFallback
from chatflow.edge.inbound import InboundEdge, PendingOptOuts
from chatflow.edge.ledger import SentMessages
from chatflow.edge.optout import OptOuts
from chatflow.edge.rate_limit import RateLimiter, SenderRates
from chatflow.edge.renamed_keys import moved_first
from chatflow.edge.send_guard import SendGuard, Watcher
from chatflow.edge.sinks import KeptInTemporal, SinkRelay, StreamEmitter, announcing_opt_outs, emit
from chatflow.edge.statuses import StatusRouter
from chatflow.edge.windows import ServiceWindows
from chatflow.flows.flow import Flow
from chatflow.flows.registry import FlowRegistry, flows_in, registry
from chatflow.flows.window_check import window_findings
from chatflow.journeys.broadcast import Broadcasts
from chatflow.journeys.service import Journeys
from chatflow.journeys.sources import ConfiguredSource
from chatflow.runtime.config import with_line
from chatflow.runtime.loops import Loop, supervised
from chatflow.runtime.metrics import conversation_outcomes, record_send
from chatflow.runtime.sources import load_sources
from chatflow.runtime.tracing import asgi_middleware, temporal_interceptors
from chatflow.temporal import lifecycle
from chatflow.temporal.activities import Sender
from chatflow.temporal.client import connect
from chatflow.temporal.constants import TASK_QUEUE
from chatflow.temporal.delivery_reports import DeliveryReporter
from chatflow.temporal.worker import build_worker
from chatflow.web.app import ConsoleAccess, create_app
from chatflow.web.landing import Mailbox
from chatflow.web.operations import record_dead_letter
from chatflow.web.stopping import AnswerWhileStopping

log = logging.getLogger(__name__)

# Connections to Redis per process. The web tier holds one per request in flight (and the
# forwarder one per partition); past the pool a request waits for a free connection instead of
# failing ("Too many connections"), so a burst queues rather than being refused.
REDIS_CONNECTIONS = 256
REDIS_POOL_TIMEOUT = 20.0  # seconds a request may wait for a connection before it is refused


def load_flows(config: Config, *, source: str = "chatflow.toml") -> list[type[Flow]]:
    """The flows of the config's modules; ConfigError for a missing module, a broken flow or a
    number bound to a flow none of them defines."""
    # A module beside chatflow.toml (or in the current folder) is found without PYTHONPATH, as
    # `python -c "import my_flows"` finds it there.
    for folder in (config.folder, os.getcwd()):
        if folder and folder not in sys.path:
            sys.path.insert(0, folder)
    flows: list[type[Flow]] = []
    for module in config.flow_modules:
        try:
            flows += flows_in(module)
        except ModuleNotFoundError:  # flows_in names the file and line of a missing import in the module
            raise ConfigError(
                with_line(f"{source}: [flows] module {module!r} not found", source, Path(source))
            ) from None
        except FlowDefinitionError as error:  # it starts with the module's file and line
            raise ConfigError(str(error)) from None
    try:
        check_flows(config, {flow.name for flow in flows}, source=source)
    except ConfigError as error:
        raise ConfigError(with_line(str(error), source, Path(source))) from None
    return flows


def our_senders(config: Config, channels: Mapping[str, Channel]) -> dict[str, Sender]:
    """Our address on each message channel, for notifications (`Notify`): the first binding on
    it of a channel plug-in this process has, else a plug-in's own default (its `sender`: the
    email channel's CHATFLOW_EMAIL_FROM)."""
    found: dict[str, Sender] = {}
    for binding in config.numbers:
        if binding.provider in channels:
            found.setdefault(binding.channel, Sender(binding.provider, binding.number))
    for spec in providers.CHANNELS:
        default = getattr(channels.get(spec.name), "sender", "")
        if default:
            for carried in spec.carries:
                found.setdefault(carried, Sender(spec.name, default))
    return found


def connect_redis(url: str) -> Redis:
    """A client on CHATFLOW_REDIS_URL: one node, or with `?cluster=true` a Redis/Valkey Cluster
    (any of its nodes; the client finds the others and follows slot moves and failovers)."""
    if not url:
        raise ConfigError("CHATFLOW_REDIS_URL is not set (chatflow dev embeds Valkey; web and worker need one)")
    url, cluster = cluster_url(url)
    if cluster:
        # Every edge key is built in chatflow.edge.keys with hash tags, so what a script or a
        # transaction touches together lives in one slot. The cluster client answers the same
        # calls as the single-node one (scripts, pipelines, blocking reads routed by key); it is
        # typed as one so the edge keeps a single type. Its pools are per node: past the limit a
        # request fails rather than waits, so the limit is the same generous one.
        return cast(Redis, RedisCluster.from_url(url, decode_responses=True, max_connections=REDIS_CONNECTIONS))
    # One type everywhere: strings (decode_responses), in production as in the tests.
    pool = BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


def cluster_url(url: str) -> tuple[str, bool]:
    """The URL without chatflow's `cluster` query parameter, and whether it names a cluster."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = [value for name, value in query if name == "cluster"]
    if not flags:
        return url, False
    if flags[-1].lower() not in {"true", "false", "1", "0", "yes", "no"}:
        raise ConfigError(f"CHATFLOW_REDIS_URL: cluster={flags[-1]!r}, expected true or false")
    rest = urlencode([(name, value) for name, value in query if name != "cluster"])
    return urlunsplit(parts._replace(query=rest)), flags[-1].lower() in {"true", "1", "yes"}


async def check_redis(redis: Redis) -> None:
    """Fail at start rather than at the first send. The first command also imports redis-py's
    lazily loaded modules, which would otherwise load while a workflow runs and make Temporal's
    sandbox warn about imports after the workflow was loaded."""
    try:
        await redis.ping()
    except Exception as error:  # noqa: BLE001 - any failure: the same message
        raise StartupError(f"cannot reach Redis (CHATFLOW_REDIS_URL): {error}") from None


def sender_rates(config: Config) -> SenderRates:
    """Each sender's pace: its binding's, else its address kind's, the kinds the channels carry."""
    kinds = {
        (spec.name, channel): kind.name for spec in providers.CHANNELS for channel, kind in spec.address_kinds.items()
    }
    return SenderRates(config.numbers, kinds=kinds)


@dataclass
class Services:
    """Everything a chatflow process runs on, built once."""

    config: Config
    flows: list[type[Flow]]
    client: Client
    redis: Redis
    http: httpx.AsyncClient
    channels: dict[str, Channel]
    task_queue: str = TASK_QUEUE
    # Continue-as-new past this many history events (0: when Temporal suggests it); the bench
    # and tests lower it to exercise long conversations quickly.
    history_limit: int = 0
    sources: list[ConfiguredSource] = field(default_factory=list)  # [[sources]], with their mappings
    sinks: list[tuple[SinkBinding, Sink, SinkSpec]] = field(default_factory=list)  # [[sinks]]
    # The mail chatflow dev catches, shown on the landing page and to `chatflow chat`.
    mailbox: Mailbox | None = None
    registry: FlowRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = FlowRegistry(self.flows)
        for flow in self.flows:  # the process's flows: a starter reads what it can index at the start there
            registry.add(flow)

    @classmethod
    async def start(
        cls,
        config: Config,
        flows: Sequence[type[Flow]],
        *,
        client: Client | None = None,
        redis: Redis | None = None,
        http: httpx.AsyncClient | None = None,
        lazy: bool = False,
        task_queue: str = TASK_QUEUE,
        history_limit: int = 0,
    ) -> Services:
        """Connect (or take the given connections) and build the channels.

        `lazy`: the web app starts (and /readyz says 503) while Temporal is still coming up.
        """
        settings = config.settings
        if client is None:
            client = await connect(
                address=settings.temporal_address,
                namespace=settings.temporal_namespace,
                interceptors=temporal_interceptors(),
                lazy=lazy,
            )
        redis = redis if redis is not None else connect_redis(settings.redis_url)
        http = http or httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=200))
        channels = providers.build_channels(config, Resources(http=http, redis=redis))
        routes = [route.path for channel in channels.values() for route in channel.routes()]
        sources = load_sources(config, reserved_paths=routes)
        built = providers.build_sinks(config, http)
        sinks = [(binding, *built[binding.name]) for binding in config.sinks]
        return cls(config, list(flows), client, redis, http, channels, task_queue, history_limit, sources, sinks)

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()

    # -- the web app -------------------------------------------------------------------------------

    def web_app(self, *, console: ConsoleAccess = "open") -> Starlette:
        """Webhooks through the Redis edge: opt-out, help, keywords, dedupe, then the buffer,
        which a forwarder in the app's lifespan drains into Temporal in order per conversation.
        `console`: who the console channel is served to (`chatflow web` says "off" or "key")."""
        redis, client = self.redis, self.client
        dedupe = Dedupe(redis)
        # When Redis is away, messages go straight to Temporal and STOP / START are kept there.
        direct = direct_delivery(client, task_queue=self.task_queue, history_limit=self.history_limit)
        optouts = OptOuts(redis, Scopes(self.config.numbers))  # one per brand, or per number
        # With sinks, an opt-out kept in Temporal is announced to them as it reaches Redis.
        announce = functools.partial(emit, redis) if self.sinks else None
        pending = PendingOptOuts(client, redis, ledger=optouts, announce=announce)
        edge = InboundEdge(
            BufferedDelivery(redis, replica_acks=self.config.settings.redis_replica_acks),
            optouts,
            dedupe,
            client=client,
            direct=direct,
            pending=pending,
            windows=ServiceWindows(redis),
            beside=BesideConversations(redis),
        )
        reports = (
            DeliveryReports(client, redis, task_queue=self.task_queue) if self.config.settings.callback_url else None
        )
        fallback = ChannelFallback(redis, self.config, {}) if self._has_fallback() else None  # records statuses only
        journeys = Journeys(self.config, client, redis, self.registry, task_queue=self.task_queue)
        broadcasts = Broadcasts(journeys, RateLimiter(redis), sender_rates(self.config))
        # CHATFLOW_FORWARDER=worker: the worker's process forwards (`worker_loops`), not this one.
        forwarding = [supervised("forwarder", self.forwarder().run)] if self.config.settings.forwarder == "web" else []
        return create_app(
            config=self.config,
            client=client,
            redis=redis,
            channels=self.channels,
            receive=announcing_opt_outs(edge.receive, redis, pending) if self.sinks else edge.receive,
            # A status is routed by the message id the send ledger recorded, whatever it names.
            report=StatusRouter(client, reports, fallback, sent=SentMessages(redis)).report,
            journeys=journeys,
            broadcasts=broadcasts,
            loops=[
                *forwarding,
                # STOP and START kept in Temporal while Redis was away, written to it once it is back.
                supervised("pending opt-outs", pending.apply_forever),
                # Journeys queued behind a running conversation (when_busy = "queue") start as it ends.
                supervised("journey queue", moved_first(redis, journeys.drain_queue)),
                supervised("digests", journeys.flush_digests),
                # Lifecycle events to each sink, in order, retried, put aside when they keep failing.
                *(
                    supervised(f"sink {binding.name}", SinkRelay(redis, binding, sink, batch=spec.batch).run)
                    for binding, sink, spec in self.sinks
                ),
            ],
            middleware=asgi_middleware(),
            sources=self.sources,
            mailbox=self.mailbox,
            console=console,
        )

    def forwarder(self) -> Forwarder:
        """The loop that hands the inbound buffer's messages on to Temporal, in order per
        conversation; any number may run (web apps, workers): they share the partitions by lease."""
        return Forwarder(
            self.redis,
            self.client,
            task_queue=self.task_queue,
            history_limit=self.history_limit,
            on_dead_letter=record_dead_letter,
        )

    async def serve_web(
        self,
        sock: socket.socket,
        stop: asyncio.Event,
        *,
        console: ConsoleAccess = "open",
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        """Serve the web app on an already bound socket until `stop` is set.

        X-Forwarded-For and -Proto count only from `trusted_proxies` (uvicorn's default trusts
        loopback: anything on this machine could then claim to be https, or any client)."""
        app = AnswerWhileStopping(self.web_app(console=console), stop)  # long polls answered as it stops, not cancelled
        server = _Server(
            uvicorn.Config(
                app,
                log_config=None,
                lifespan="on",
                timeout_graceful_shutdown=3,
                proxy_headers=bool(trusted_proxies),
                forwarded_allow_ips=list(trusted_proxies),
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        stopping.cancel()
        await serving

    # -- the worker --------------------------------------------------------------------------------

    def worker(
        self,
        *,
        max_cached_workflows: int = 10_000,
        max_concurrent_workflow_tasks: int | None = None,
        http: httpx.AsyncClient | None = None,
        senders: Mapping[str, Sender] | None = None,
    ) -> tuple[Worker, ChannelFallback | None]:
        """The worker, and the channel fallback whose sweeper must run beside it (when configured).
        `http`: the client `Http` steps call through (a test's mock), instead of the guarded one.

        Every send passes the opt-out check and the sender's rate limit, shared by all workers,
        and the send ledger: a send Temporal runs again (its worker died before Temporal had the
        result) returns the recorded result instead of reaching the provider twice.
        """
        from chatflow.edge.ledger import SendLedger
        from chatflow.edge.send_guard import MAX_SWEEP_WAIT

        optouts, limiter = OptOuts(self.redis, Scopes(self.config.numbers)), RateLimiter(self.redis)
        rates = sender_rates(self.config)
        watchers: list[Watcher] = []
        fallback = None
        if self._has_fallback():
            # WhatsApp messages not delivered in time go again by SMS, paced and opt-out checked.
            fallback = ChannelFallback(
                self.redis,
                self.config,
                self.channels,
                optouts=optouts,
                guard=SendGuard(optouts, limiter, rates, max_wait=MAX_SWEEP_WAIT),
            )
            watchers.append(fallback.watch)
        settings = self.config.settings
        reporter = DeliveryReporter(settings.callback_url, settings.callback_secret) if settings.callback_url else None
        worker = build_worker(
            self.client,
            self.flows,
            self.channels,
            task_queue=self.task_queue,
            http=http,
            http_allow=settings.http_allow,  # `Http` steps get a client of their own, guarded
            fallbacks=self._sms_fallbacks(),  # WhatsApp refusals said by SMS, in the conversation
            guard=SendGuard(optouts, limiter, rates, watchers=watchers, windows=ServiceWindows(self.redis)),
            reporter=reporter,
            on_send=record_send,
            max_cached_workflows=max_cached_workflows,
            max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
            ledger=SendLedger(self.redis),
            barrier=BufferBarrier(self.redis),  # order kept across a Redis outage
            interceptors=[conversation_outcomes()],  # chatflow_conversations_ended_total
            # Our address on each channel, for notifications (`Notify`); a test's own when given.
            senders=senders if senders is not None else our_senders(self.config, self.channels),
            media_dir=settings.media_dir,  # where `convo.fetch_media` writes customers' media
        )
        return worker, fallback

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Run conversations and their activities until `stop` is set.

        Then the worker stops taking tasks and lets running activities (a send in flight) finish
        for up to WORKER_SHUTDOWN_GRACE before cancelling them, so a stop ends within that
        (activities end when cancelled); a second signal to the CLI exits at once.
        """
        self.warn_outside_window()
        worker, fallback = self.worker()
        # Lifecycle events Redis cannot take (away) are kept in Temporal until it is back.
        keeper = KeptInTemporal(self.client, asyncio.get_running_loop(), scope=self.task_queue)
        emitter = StreamEmitter(self.redis, keeper=keeper) if self.sinks else None
        lifecycle.emit_to(emitter)  # the conversations' lifecycle events, for the sinks' relays
        loops = [asyncio.create_task(loop()) for loop in self.worker_loops(fallback)]
        try:
            async with worker:
                await stop.wait()
        finally:
            if emitter is not None:
                lifecycle.emit_to(None)
                await asyncio.to_thread(emitter.close)  # its thread may need this loop for Temporal
            await stop_tasks(loops)

    def worker_loops(self, fallback: ChannelFallback | None) -> list[Loop]:
        """What runs beside the worker: the fallback's sweeper (when configured) and, under
        CHATFLOW_FORWARDER=worker, the forwarder (then the web process only answers webhooks:
        a signal-with-start costs the client about three times a webhook's CPU)."""
        loops: list[Loop] = []
        if fallback is not None:
            loops.append(supervised("fallback", fallback.sweep_forever))
        if self.config.settings.forwarder == "worker":
            loops.append(supervised("forwarder", self.forwarder().run))
        return loops

    def warn_outside_window(self) -> None:
        """`chatflow check` at worker start, as warnings, when a number is on WhatsApp: a step
        without a template that may run outside the 24-hour window fails there at run time."""
        if not any(b.channel == "whatsapp" for b in self.config.numbers):
            return
        for finding in window_findings(self.flows, self.config.numbers):
            log.warning("%s", finding)

    def _sms_fallbacks(self) -> dict[str, tuple[str, str]]:
        """Each WhatsApp number's fallback_number and the provider that number is bound to."""
        routes: dict[str, tuple[str, str]] = {}
        for binding in self.config.numbers:
            sms = self.config.binding(binding.fallback_number) if binding.fallback_number else None
            if binding.channel == "whatsapp" and sms is not None:
                routes[binding.number] = (sms.number, sms.provider)
        return routes

    def _has_fallback(self) -> bool:
        return any(b.fallback_number for b in self.config.numbers)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The CLI owns signals: it stops the web app, the worker and the servers in order.
        yield
