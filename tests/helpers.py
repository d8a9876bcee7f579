"""What tests share: chatflow's one wiring (`Services`) run in-process as `chatflow web` and
`chatflow worker` run it, a channel that records what it is asked to send, and fresh customers.

    async with started_services(config, FLOWS, client=dev_env.client, redis=redis) as services:
        services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services), running_app(services) as web:
            await web.post("/webhooks/twilio", ...)     # the Redis edge, the forwarder, Temporal
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

import httpx
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT
from starlette.applications import Starlette
from temporalio.client import Client, WorkflowHandle

from chatflow.domain.channel import Channel, Received, WebhookAnswer, WebhookRoute
from chatflow.domain.config import Config
from chatflow.domain.messages import InboundMessage, OutboundMessage, SendResult, numbered_menu
from chatflow.flows.flow import Flow
from chatflow.runtime.services import Services
from chatflow.runtime.testing import FlowTest
from chatflow.temporal.records import ConversationResult, ConversationSnapshot
from chatflow.temporal.workflow import ConversationWorkflow

BASE_URL = "http://test"
# A conversation's typed workflow handle. Written out where one is made: without it mypy infers
# get_workflow_handle_for's type variables (against a union of two protocols) only now and then.
ConversationHandle = WorkflowHandle[ConversationWorkflow, ConversationResult]
WAIT = 60.0  # seconds a test waits for what the worker sends

_customers = itertools.count(random.randrange(10_000))


async def stream_add(redis: Redis, stream: str, fields: Mapping[str, str]) -> str:
    """XADD; the entry's id as a str, as chatflow's client (decode_responses) reads it."""
    entry: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
    return cast(str, await redis.xadd(stream, entry))


async def stream_entries(redis: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """XRANGE over the whole stream, typed as chatflow's client (decode_responses) reads it."""
    return cast(list[tuple[str, dict[str, str]]], await redis.xrange(stream))


async def started_snapshot(chat: FlowTest) -> ConversationSnapshot:
    """The snapshot of a conversation the test has started (`chat.snapshot()` is None before)."""
    snapshot = await chat.snapshot()
    assert snapshot is not None, "the conversation has not started"
    return snapshot


def new_customer() -> str:
    """A customer no other test talks to, so tests sharing a Temporal server never share a
    conversation (its id is channel, number and customer)."""
    return f"+1628555{next(_customers) % 10_000:04d}"


@contextlib.asynccontextmanager
async def started_services(
    config: Config,
    flows: Sequence[type[Flow]],
    *,
    client: Client,
    redis: Redis,
    history_limit: int = 0,
) -> AsyncIterator[Services]:
    """`Services.start` on the test's Temporal and Redis, with a task queue of its own, so no
    other test's worker takes its conversations. Entries of `services.channels` may be replaced
    (a RecordingChannel) before the app or the worker is built."""
    async with httpx.AsyncClient() as http:
        yield await Services.start(
            config,
            flows,
            client=client,
            redis=redis,
            http=http,
            task_queue=f"test-{uuid.uuid4().hex}",
            history_limit=history_limit,
        )
    # Not `services.aclose()`: the Redis client is the test's fixture's, which closes it.


@contextlib.asynccontextmanager
async def web_client(app: Starlette, base_url: str = BASE_URL) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app in this process. httpx's ASGITransport does not run the app's
    lifespan: alone, this is a web tier whose forwarder has not started (nothing is forwarded)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http:
        yield http


@contextlib.asynccontextmanager
async def running_app(services: Services, base_url: str = BASE_URL) -> AsyncIterator[httpx.AsyncClient]:
    """`services.web_app()` as `chatflow web` serves it, lifespan included: the forwarder drains
    the Redis buffer into Temporal and the journey loops run, until the block ends."""
    app = services.web_app()
    async with app.router.lifespan_context(app), web_client(app, base_url) as http:
        yield http


@contextlib.asynccontextmanager
async def running_worker(services: Services) -> AsyncIterator[None]:
    """`services.run_worker` as `chatflow worker` runs it (with the fallback sweeper when the
    config has one), until the block ends."""
    stop = asyncio.Event()
    worker = asyncio.create_task(services.run_worker(stop))
    try:
        yield
    finally:
        stop.set()
        await worker


class RecordingChannel:
    """A channel that takes every message it is asked to send and remembers it.

    Around a real channel (`RecordingChannel(services.channels["twilio"])`) it keeps that
    channel's routes and answers, so webhooks work as configured while no provider is called.
    """

    def __init__(self, inner: Channel | None = None, *, name: str = "", ids: str = "") -> None:
        self.inner = inner
        self.name = name or (inner.name if inner is not None else "recording")
        self.sent: list[OutboundMessage] = []
        self._ids = ids or self.name
        self._count = itertools.count(1)
        self._changed = asyncio.Event()

    def routes(self) -> Sequence[WebhookRoute]:
        return self.inner.routes() if self.inner is not None else []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        self._changed.set()
        return SendResult(message_id=f"{self._ids}-{next(self._count)}", status="sent")

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        return await self.inner.answer(received, replies) if self.inner is not None else WebhookAnswer()

    def to(self, customer: str) -> list[str]:
        """What was sent to `customer`, in order, as a phone without buttons shows it."""
        return [numbered_menu(m.text, m.options) for m in self.sent if m.customer == customer]

    async def wait_for(self, customer: str, count: int, timeout: float = WAIT) -> list[str]:
        """`to(customer)` once it holds at least `count` messages (AssertionError if not in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            if len(self.to(customer)) >= count:
                return self.to(customer)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{count} messages to {customer} expected; got {self.to(customer)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
