"""The engine on an in-memory port: a flow's logic tested in milliseconds, with no server.

    async with MemoryFlowTest(AppointmentReminder) as chat:
        assert await chat.start({"name": "Ana"}) == ["Hi Ana, see you at 10:00? YES or NO"]
        assert await chat.skip(hours(24)) == ["Reminder: ..."]      # a virtual clock: instant
        assert await chat.send("yes") == ["See you tomorrow!"]
        assert (await chat.result()).outcome == "completed"

`MemoryPort` is the `Port` the Temporal workflow implements, kept in memory: what the flow sends
is recorded, time is a virtual clock the test moves on (`skip`), the customer's replies and the
business's events are what the test feeds it. The steps, matching, timeouts, reprompts, quiet
hours, events, code steps and `Http` steps (answered by the test's `http` function) run exactly
as in production, since they are the same engine.

What only the worker does is not here: no send guard (opt-out, rate limits), no provider, no
dedupe of message ids, no continue-as-new, takeover or delivery statuses. Test those with
`chatflow.testing.FlowTest`, which runs the flow on a real Temporal server as `chatflow worker` does.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.durations import in_words
from chatflow.domain.errors import HttpCallFailed, MediaUnavailable, PermanentSendError
from chatflow.domain.messages import (
    REPLY_WINDOW,
    BusinessEvent,
    HttpRequest,
    HttpResponse,
    InboundMessage,
    Location,
    Media,
    MediaRequest,
    Notification,
    Option,
    OutboundMessage,
    Reaction,
    StoredMedia,
    TemplateMessage,
    numbered_menu,
)
from chatflow.flows.engine import FlowRunner, FlowState
from chatflow.flows.flow import Flow
from chatflow.flows.quiet_hours import SendWindow, next_allowed_send

SETTLE_TIMEOUT = 10.0  # real seconds a test waits for the flow to reach a wait: only a flow's own bug takes long
_message_ids = itertools.count(1)
_customers = itertools.count(random.randrange(10_000))

HttpHandler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
MediaHandler = Callable[[MediaRequest], StoredMedia | Awaitable[StoredMedia]]


async def _answer(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


class MemoryPort:
    """The engine's `Port` in memory (see the module's docstring); `MemoryFlowTest` drives it."""

    control_flow: tuple[type[BaseException], ...] = ()

    def __init__(
        self,
        *,
        customer: str,
        number: str,
        channel: str,
        now: datetime,
        http: HttpHandler | None = None,
        media: MediaHandler | None = None,
    ) -> None:
        self.customer, self.number, self.channel = customer, number, channel
        self.clock = now
        self.sent: list[OutboundMessage] = []  # everything sent, notifications included, in order
        self.trace: list[str] = []  # the decision trace, as the dashboard shows it
        self.bugs: list[BaseException] = []  # exceptions of the flow's own code, with tracebacks
        self.inbox: deque[InboundMessage | BusinessEvent] = deque()
        self.cancel_reason = ""
        self.refusal: PermanentSendError | None = None  # every send to the customer raises it
        self.last_inbound_at: datetime | None = None
        self.last_message_id = ""
        self._http = http
        self._media = media
        # While the engine waits: until when (None: only for input), and the future that wakes it.
        self.waiting_until: datetime | None = None
        self.idle = asyncio.Event()
        self._wake: asyncio.Future[None] | None = None

    # -- what the driver does ---------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (a message, an event, the clock, a cancel): the engine looks again."""
        self.idle.clear()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def receive(self, item: InboundMessage | BusinessEvent) -> None:
        if isinstance(item, InboundMessage):
            self.last_inbound_at = self.clock
            if item.reaction is None:
                self.last_message_id = item.id
        self.inbox.append(item)
        self.wake()

    async def _until(self, ready: Callable[[], bool], deadline: datetime | None) -> None:
        """Wait until `ready()`, a cancel, or the virtual clock reaching `deadline`."""
        while not (ready() or self.cancel_reason or (deadline is not None and self.clock >= deadline)):
            self.waiting_until = deadline
            self._wake = asyncio.get_running_loop().create_future()
            self.idle.set()
            await self._wake
        self.waiting_until = None

    # -- the Port ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock

    def log(self, message: str, *args: object, bug: BaseException | None = None) -> None:
        args = tuple(in_words(arg) if isinstance(arg, timedelta) else arg for arg in args)
        self.trace.append(message % args if args else message)
        if bug is not None:
            self.bugs.append(bug)

    def cancelled(self) -> str:
        return self.cancel_reason

    async def checkpoint(self) -> None:
        pass  # nothing to continue as new: the whole conversation is this one run

    async def send(
        self,
        text: str,
        options: list[Option],
        media: list[Media],
        template: TemplateMessage | None,
        location: Location | None = None,
    ) -> None:
        if self.refusal is not None:
            self.log("send refused%s: %s", f" ({self.refusal.code})" if self.refusal.code else "", self.refusal)
            raise self.refusal
        self.sent.append(self._outbound(text, options, media, template, location))

    def _outbound(
        self,
        text: str,
        options: list[Option],
        media: list[Media],
        template: TemplateMessage | None,
        location: Location | None = None,
    ) -> OutboundMessage:
        return OutboundMessage(
            channel=self.channel,
            provider="memory",
            number=self.number,
            customer=self.customer,
            text=text,
            options=options,
            media=media,
            template=template.label if template is not None else "",
            template_message=template,
            location=location,
        )

    async def send_by_sms(self, text: str, media: list[Media], number: str, provider: str) -> None:
        self.sent.append(OutboundMessage("sms", provider, number, self.customer, text, media=media))

    async def react(self, emoji: str) -> None:
        if not self.last_message_id:
            self.log("no message of the customer's to react %s to: nothing sent", emoji)
            return
        message = self._outbound(emoji, [], [], None)
        message.reaction = Reaction(self.last_message_id, emoji)
        self.sent.append(message)

    async def fetch_media(self, request: MediaRequest) -> StoredMedia:
        if self._media is None:
            raise MediaUnavailable(f"no `media` function given to fetch {request.media_id}")
        stored: StoredMedia = await _answer(self._media(request))
        return stored

    async def http(self, request: HttpRequest, retries: int) -> HttpResponse:
        if self._http is None:
            raise HttpCallFailed(f"no `http` function given to answer {request.method} {request.url}")
        response: HttpResponse = await _answer(self._http(request))
        if not 200 <= response.status < 300:
            raise HttpCallFailed(f"{request.method} {request.url} answered {response.status}", response.status)
        self.log("HTTP %s %s answered %d", request.method, request.url, response.status)
        return response

    async def next_input(self, deadline: datetime | None) -> InboundMessage | BusinessEvent | None:
        await self._until(lambda: bool(self.inbox), deadline)
        if not self.inbox or self.cancel_reason:
            return None
        return self.inbox.popleft()

    async def sleep_until(self, when: datetime) -> None:
        await self._until(lambda: False, when)

    async def quiet_until(self, window: SendWindow, timezone: str | None) -> datetime | None:
        if self.last_inbound_at is not None and self.clock - self.last_inbound_at <= REPLY_WINDOW:
            return None  # an answer to someone who just wrote is never held back
        return next_allowed_send(self.customer, window, self.clock, timezone)

    def quiet_hours_hold_every_send(self) -> bool:
        return True

    async def notify(self, notification: Notification) -> None:
        self.sent.append(
            OutboundMessage(
                notification.channel, "memory", "", notification.to, notification.text, subject=notification.subject
            )
        )
        self.log("notified %s by %s", notification.to, notification.channel)

    async def quiet_until_for(self, window: SendWindow, timezone: str | None, recipient: str) -> datetime | None:
        return next_allowed_send(recipient, window, self.clock, timezone)


@dataclass
class MemoryResult:
    """How the conversation ended, as `FlowTest.result()` says it."""

    outcome: str
    reason: str
    data: dict[str, Any]


class MemoryFlowTest:
    """One conversation of one customer with a flow, on a `MemoryPort`: `FlowTest`'s way of
    driving a conversation (start, send, event, skip, result), in memory."""

    def __init__(
        self,
        flow: type[Flow],
        *,
        customer: str | None = None,
        number: str = "+15005550006",
        channel: str = "sms",
        now: datetime | None = None,
        http: HttpHandler | None = None,
        media: MediaHandler | None = None,
    ) -> None:
        """`now`: where the virtual clock starts (the real time by default, as on the
        time-skipping server); `http`: answers the flow's `Http` steps and `convo.http` calls
        (an HttpResponse, or raise HttpCallFailed); `media`: answers `convo.fetch_media`."""
        self.flow = flow
        # A fresh customer per test, as FlowTest's: a test's conversation is its own.
        self.ref = ConversationRef(channel, number, customer or f"+1415555{next(_customers) % 10_000:04d}", "memory")
        self.port = MemoryPort(
            customer=self.ref.customer,
            number=number,
            channel=channel,
            now=now or datetime.now(UTC),
            http=http,
            media=media,
        )
        self.state: FlowState | None = None
        self._task: asyncio.Task[FlowState] | None = None
        self._read = 0

    async def __aenter__(self) -> MemoryFlowTest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass  # ours: the test is over

    # -- what the customer and the business do ------------------------------------------------

    def _run(self, data: dict[str, Any], trigger: InboundMessage | None) -> None:
        state = FlowRunner.initial_state(self.flow, data, self.port.clock)
        if trigger is not None:
            state.reply = trigger.text or trigger.payload
        port = self.port
        runner = FlowRunner(self.flow(), state, port, customer=port.customer, number=port.number, channel=port.channel)
        self.state = state
        self._task = asyncio.create_task(runner.run())

    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, data: dict[str, Any] | None = None) -> list[str]:
        """Start the flow as a journey (the business's initiative); return what the bot said."""
        if self._running():
            raise RuntimeError("the conversation is running already")
        self.port.cancel_reason = ""
        self._run(data or {}, None)
        return await self.replies()

    async def send(self, text: str = "", *, payload: str = "", id: str | None = None) -> list[str]:
        """The customer sends a message; return what the bot said in answer. The first one (or
        one after the conversation ended) starts the flow, as its trigger, as a webhook does."""
        port = self.port
        message = InboundMessage(
            id=id or f"SM{next(_message_ids):032d}",
            channel=port.channel,
            provider="memory",
            customer=port.customer,
            number=port.number,
            text=text,
            payload=payload,
            received_at=port.clock.isoformat(),
        )
        if self._running():
            port.receive(message)
        else:
            port.last_inbound_at, port.last_message_id, port.cancel_reason = port.clock, message.id, ""
            self._run({}, message)
        return await self.replies()

    async def event(self, name: str, data: dict[str, Any] | None = None) -> list[str]:
        """The business reports an event into the conversation; return what the bot said."""
        self.port.receive(BusinessEvent(name, data or {}))
        return await self.replies()

    async def skip(self, duration: timedelta) -> list[str]:
        """Move the virtual clock on by `duration`, each timer on the way firing at its time;
        return what the bot said meanwhile."""
        port = self.port
        target = port.clock + duration
        await self.settle()
        while self._running() and port.waiting_until is not None and port.waiting_until <= target:
            port.clock = max(port.clock, port.waiting_until)
            port.wake()
            await self.settle()
        port.clock = target
        return await self.replies()

    async def end(self, reason: str = "") -> list[str]:
        """The business ends the conversation (`chatflow.temporal.client.end`)."""
        self.port.cancel_reason = reason or "ended by the business"
        self.port.wake()
        return await self.replies()

    def refuse(self, error: PermanentSendError | None) -> None:
        """From now on every send to the customer raises `error` (a provider's permanent refusal,
        an opt-out); None: sends go again."""
        self.port.refusal = error

    # -- what a test looks at -------------------------------------------------------------------

    async def settle(self) -> None:
        """Wait until the flow waits (for a reply, an event or the clock) or has ended. A bug in
        the engine itself (not the flow's: that takes the failure branch) is raised here."""
        task = self._task
        if task is None:
            return
        idle = asyncio.ensure_future(self.port.idle.wait())
        try:
            done, _ = await asyncio.wait({task, idle}, timeout=SETTLE_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
        if not done:
            raise TimeoutError(
                f"the flow did not reach a wait in {SETTLE_TIMEOUT} s (step {self.state and self.state.step})"
            )
        if task.done():
            task.result()

    async def replies(self) -> list[str]:
        """Wait until the flow waits or ended; return what the bot said since the last call."""
        await self.settle()
        said = self.said
        new, self._read = said[self._read :], len(said)
        return new

    @property
    def messages(self) -> list[OutboundMessage]:
        """Everything the bot sent this customer, in order."""
        return [m for m in self.port.sent if m.customer == self.port.customer]

    def sent_to(self, address: str) -> list[OutboundMessage]:
        """What the flow sent `address` on any channel: notifications (`Notify`) to them."""
        return [m for m in self.port.sent if m.customer == address]

    @property
    def said(self) -> list[str]:
        """Everything the bot sent, as the customer's phone shows it (choices as a numbered menu)."""
        return [numbered_menu(m.text, m.options) for m in self.messages]

    @property
    def trace(self) -> list[str]:
        return list(self.port.trace)

    def now(self) -> datetime:
        return self.port.clock

    async def step(self) -> str:
        await self.settle()
        return self.state.step if self.state is not None else ""

    async def data(self) -> dict[str, Any]:
        await self.settle()
        return self.state.data if self.state is not None else {}

    async def result(self) -> MemoryResult:
        """Wait for the conversation to end, moving the clock on to each timer as the
        time-skipping server does, and return how it ended."""
        if self._task is None:
            raise RuntimeError("the conversation has not started")
        port = self.port
        await self.settle()
        while self._running():
            if port.waiting_until is None:
                raise RuntimeError(f"the flow waits at step {self.state and self.state.step} with no deadline")
            port.clock = max(port.clock, port.waiting_until)
            port.wake()
            await self.settle()
        state = await self._task
        return MemoryResult(state.outcome, state.reason, state.data)
