"""A message reaches the customer once, though Temporal runs its send again: the send ledger, the
worker's graceful stop and the send's short timeout. And what remains: a send whose outcome is
unknown (the attempt ended during the provider call) is sent again, counted as a possible
duplicate."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from chatflow import End, Flow, Say
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.channel import Channel
from chatflow.domain.errors import RetryableSendError
from chatflow.domain.messages import OutboundMessage, SendResult
from chatflow.edge.ledger import SendLedger
from chatflow.edge.send_guard import MAX_INLINE_WAIT, SendGuard
from chatflow.runtime.services import Services
from chatflow.temporal import constants
from chatflow.temporal.activities import (
    ALREADY_SENT,
    DEADLINE_MARGIN,
    POSSIBLE_DUPLICATE,
    ChatflowActivities,
    send_key,
)
from chatflow.temporal.client import start_journey
from chatflow.testing import FlowTest
from providers.console import ConsoleChannel, Outbox
from tests.flows import Echo
from tests.helpers import RecordingChannel, new_customer, running_worker, started_services
from tests.providers.conftest import TWILIO_NUMBER, make_config

TEXT = "Your parcel arrives today."
MESSAGE = OutboundMessage("sms", "twilio", TWILIO_NUMBER, "+14155550100", TEXT)


class Provider(RecordingChannel):
    """A provider whose calls go as scripted, one step per call:

    "ok"      takes the message and answers;
    "refuse"  answers 429 without taking it;
    "lost"    takes it, but the answer never comes back (a read timeout);
    "slow"    takes it and answers after `slow` seconds;
    "hang"    takes it and never answers.
    """

    def __init__(self, inner: Channel | None = None, *steps: str, slow: float = 3.0) -> None:
        super().__init__(inner, name="twilio", ids="SM")
        self.steps = list(steps)
        self.slow = slow
        self.calls = 0
        self.answered = 0
        self.took = asyncio.Event()

    async def send(self, message: OutboundMessage) -> SendResult:
        self.calls += 1
        step = self.steps.pop(0) if self.steps else "ok"
        if step == "refuse":
            raise RetryableSendError("Twilio answered 429", code="20429")
        result = await super().send(message)  # the provider has it from here on
        self.took.set()
        if step == "lost":
            raise RetryableSendError("Twilio unreachable") from httpx.ReadTimeout("timed out")
        if step == "slow":
            await asyncio.sleep(self.slow)
        if step == "hang":
            await asyncio.Event().wait()
        self.answered += 1
        return result


class Statuses(list[tuple[str, str]]):
    def __call__(self, provider: str, status: str) -> None:
        self.append((provider, status))


def attempt(env: ActivityEnvironment, number: int) -> None:
    env.info = replace(env.info, attempt=number)


def environment(start_to_close: float = 10.0) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = replace(
        env.info,
        workflow_id="sms:+15005550006:+14155550100",
        workflow_run_id="run-1",
        activity_id="1",
        start_to_close_timeout=timedelta(seconds=start_to_close),
    )
    return env


# -- the activity and the ledger ---------------------------------------------------------------


async def test_a_retry_of_a_send_the_provider_took_returns_its_result_without_sending_again(redis: Redis) -> None:
    provider, statuses = Provider(), Statuses()

    def crash_once(name: str, status: str) -> None:  # the worker dies once the provider took it
        statuses(name, status)
        if activity.info().attempt == 1:
            raise ConnectionResetError("worker killed")

    activities = ChatflowActivities({"twilio": provider}, on_send=crash_once, ledger=SendLedger(redis))
    env = environment()
    with pytest.raises(ConnectionResetError):
        await env.run(activities.send_message, MESSAGE)
    attempt(env, 2)
    result = await env.run(activities.send_message, MESSAGE)

    assert result == SendResult("SM-1", "sent")
    assert provider.calls == 1 and provider.to(MESSAGE.customer) == [TEXT]
    assert statuses == [("twilio", "sent"), ("twilio", ALREADY_SENT)]


async def test_without_the_ledger_that_retry_sends_the_message_twice() -> None:
    """What the ledger prevents (the duplicates of a killed worker)."""
    provider = Provider()

    def crash_once(name: str, status: str) -> None:
        if activity.info().attempt == 1:
            raise ConnectionResetError("worker killed")

    activities = ChatflowActivities({"twilio": provider}, on_send=crash_once)
    env = environment()
    with pytest.raises(ConnectionResetError):
        await env.run(activities.send_message, MESSAGE)
    attempt(env, 2)
    await env.run(activities.send_message, MESSAGE)
    assert provider.to(MESSAGE.customer) == [TEXT, TEXT]


async def test_a_send_whose_outcome_is_unknown_is_sent_again_and_counted(redis: Redis) -> None:
    """What remains: the answer was lost, the provider may have the message; neither provider
    takes an idempotency key, so it is sent again rather than maybe lost, and counted."""
    provider, statuses = Provider(None, "lost"), Statuses()
    activities = ChatflowActivities({"twilio": provider}, on_send=statuses, ledger=SendLedger(redis))
    env = environment()
    with pytest.raises(ApplicationError) as lost:
        await env.run(activities.send_message, MESSAGE)
    assert lost.value.type == constants.RETRYABLE_SEND_ERROR and not lost.value.non_retryable
    attempt(env, 2)
    await env.run(activities.send_message, MESSAGE)

    assert provider.to(MESSAGE.customer) == [TEXT, TEXT]
    assert statuses == [("twilio", "retry"), ("twilio", POSSIBLE_DUPLICATE), ("twilio", "sent")]


@pytest.mark.parametrize(
    "refusal",
    [
        RetryableSendError("Twilio answered 503", code="503"),
        RetryableSendError("Twilio answered 429", code="20429", retry_after=1),
        RetryableSendError("Twilio unreachable"),
    ],
    ids=["5xx", "429", "connect error"],
)
async def test_a_send_the_provider_did_not_take_is_retried_as_a_plain_send(
    redis: Redis, refusal: RetryableSendError
) -> None:
    if refusal.code == "":
        refusal.__cause__ = httpx.ConnectError("connection refused")  # the request never left

    class Refusing(Provider):
        async def send(self, message: OutboundMessage) -> SendResult:
            if self.calls == 0:
                self.calls += 1
                raise refusal
            return await super().send(message)

    provider, statuses = Refusing(), Statuses()
    activities = ChatflowActivities({"twilio": provider}, on_send=statuses, ledger=SendLedger(redis))
    env = environment()
    with pytest.raises(ApplicationError):
        await env.run(activities.send_message, MESSAGE)
    attempt(env, 2)
    await env.run(activities.send_message, MESSAGE)
    assert provider.to(MESSAGE.customer) == [TEXT]
    assert statuses == [("twilio", "retry"), ("twilio", "sent")]  # no possible duplicate


async def test_a_send_held_back_by_the_rate_limit_is_retried_as_a_plain_send(redis: Redis) -> None:
    class Limited(SendGuard):
        async def before_send(self, message: OutboundMessage) -> None:
            if activity.info().attempt == 1:
                raise RetryableSendError("rate limited", code="rate_limited", retry_after=1)

    provider, statuses = Provider(), Statuses()
    activities = ChatflowActivities({"twilio": provider}, guard=Limited(), on_send=statuses, ledger=SendLedger(redis))
    env = environment()
    with pytest.raises(ApplicationError):
        await env.run(activities.send_message, MESSAGE)
    attempt(env, 2)
    await env.run(activities.send_message, MESSAGE)
    assert statuses == [("twilio", "retry"), ("twilio", "sent")]


async def test_an_attempt_gives_up_on_a_silent_provider_before_temporal_times_it_out(redis: Redis) -> None:
    """So two attempts of one send never run at once; the next one counts a possible duplicate."""
    provider, statuses = Provider(None, "hang"), Statuses()
    activities = ChatflowActivities({"twilio": provider}, on_send=statuses, ledger=SendLedger(redis))
    env = environment(start_to_close=2.0)
    started = time.monotonic()
    with pytest.raises(ApplicationError) as timed_out:
        await env.run(activities.send_message, MESSAGE)
    assert time.monotonic() - started < 2.0 - DEADLINE_MARGIN / 2
    assert timed_out.value.type == constants.RETRYABLE_SEND_ERROR
    assert "may have it" in timed_out.value.message
    attempt(env, 2)
    await env.run(activities.send_message, MESSAGE)
    assert statuses == [("twilio", "retry"), ("twilio", POSSIBLE_DUPLICATE), ("twilio", "sent")]


def test_every_send_has_a_key_of_its_own_and_keeps_it_across_attempts() -> None:
    info = environment().info
    key = send_key(info)
    assert send_key(replace(info, attempt=3)) == key
    assert send_key(replace(info, workflow_run_id="run-2")) != key  # the next conversation, or after continue-as-new
    assert send_key(replace(info, activity_id="2")) != key
    assert send_key(replace(info, is_local=True)) != key  # local activities share the id sequence
    # An id the workflow chose names the send however it is made (a local try, then an activity).
    chosen = replace(info, activity_id="send-5d41402a")
    assert send_key(replace(chosen, is_local=True)) == send_key(chosen)


def test_an_attempt_leaves_the_provider_most_of_its_time() -> None:
    """The rate limit's inline wait and the margin leave the provider call at least 6 s."""
    assert constants.SEND_TIMEOUT.total_seconds() - DEADLINE_MARGIN - MAX_INLINE_WAIT >= 6
    assert constants.WORKER_SHUTDOWN_GRACE > constants.SEND_TIMEOUT  # a whole attempt finishes on a stop


# -- through Temporal, as `chatflow worker` runs ---------------------------------------------------


class Notice(Flow):
    notify = Say(TEXT)
    done = End()


def sends(status: str) -> float:
    return REGISTRY.get_sample_value("chatflow_sends_total", {"provider": "twilio", "status": status}) or 0.0


@contextlib.asynccontextmanager
async def services_with(
    dev_env: WorkflowEnvironment, redis: Redis, *steps: str
) -> AsyncIterator[tuple[Services, Provider]]:
    async with started_services(make_config(), [Notice], client=dev_env.client, redis=redis) as services:
        provider = Provider(services.channels["twilio"], *steps)
        services.channels["twilio"] = provider
        yield services, provider


async def notify(dev_env: WorkflowEnvironment, services: Services, customer: str) -> WorkflowHandle[Any, Any]:
    ref = ConversationRef("sms", TWILIO_NUMBER, customer, "twilio")
    return await start_journey(dev_env.client, ref, "notice", {}, task_queue=services.task_queue)


@contextlib.contextmanager
def dying_after_the_provider_took_it(monkeypatch: pytest.MonkeyPatch, how: str) -> Iterator[asyncio.Event]:
    """The first send the provider takes dies before Temporal has its result: the attempt fails
    ("crash") or never ends ("hang", a worker that stopped answering) once the ledger recorded it."""
    release = asyncio.Event()
    died: list[SendResult] = []  # the result the first taken send had
    after_send = SendGuard.after_send

    async def dying(self: SendGuard, message: OutboundMessage, result: SendResult) -> None:
        if not died:
            died.append(result)
            if how == "crash":
                raise ConnectionResetError("worker killed")
            await release.wait()
        await after_send(self, message, result)

    monkeypatch.setattr(SendGuard, "after_send", dying)
    try:
        yield release
    finally:
        release.set()


# A send is tried first as a local activity, then (after a failure) as a regular activity that
# Temporal retries; each case below happens on either.
ATTEMPTS = pytest.mark.parametrize("steps", [(), ("refuse",)], ids=["first try", "retry"])


@ATTEMPTS
async def test_a_send_whose_result_never_reached_temporal_reaches_the_customer_once(
    dev_env: WorkflowEnvironment, redis: Redis, monkeypatch: pytest.MonkeyPatch, steps: tuple[str, ...]
) -> None:
    customer = new_customer()
    async with services_with(dev_env, redis, *steps) as (services, provider), running_worker(services):
        with dying_after_the_provider_took_it(monkeypatch, "crash"):
            already = sends(ALREADY_SENT)
            handle = await notify(dev_env, services, customer)
            await asyncio.wait_for(handle.result(), 30)
    assert provider.to(customer) == [TEXT]
    assert sends(ALREADY_SENT) == already + 1


@ATTEMPTS
async def test_a_send_stuck_on_a_dead_worker_is_tried_again_within_seconds_and_not_sent_twice(
    dev_env: WorkflowEnvironment, redis: Redis, monkeypatch: pytest.MonkeyPatch, steps: tuple[str, ...]
) -> None:
    customer = new_customer()
    async with services_with(dev_env, redis, *steps) as (services, provider), running_worker(services):
        with dying_after_the_provider_took_it(monkeypatch, "hang"):
            handle = await notify(dev_env, services, customer)
            started = time.monotonic()
            await asyncio.wait_for(handle.result(), 40)
            took = time.monotonic() - started
    assert provider.to(customer) == [TEXT]
    # Temporal tried again after SEND_TIMEOUT (10 s), not after the 30 s it used to wait.
    assert took < 25, took


@ATTEMPTS
async def test_a_stopping_worker_lets_a_send_in_flight_finish(
    dev_env: WorkflowEnvironment, redis: Redis, steps: tuple[str, ...]
) -> None:
    customer = new_customer()
    async with services_with(dev_env, redis, *steps, "slow") as (services, provider):
        duplicates = sends(POSSIBLE_DUPLICATE)
        stop = asyncio.Event()
        worker = asyncio.create_task(services.run_worker(stop))
        handle = await notify(dev_env, services, customer)
        await asyncio.wait_for(provider.took.wait(), 30)
        stop.set()  # SIGTERM, a deploy: the provider has the message, its answer is 3 s away
        await asyncio.wait_for(worker, constants.WORKER_SHUTDOWN_GRACE.total_seconds() + 10)
        assert provider.answered == 1  # not cancelled: Temporal has the result

        async with running_worker(services):  # the next worker carries the conversation on
            await asyncio.wait_for(handle.result(), 30)
    assert provider.to(customer) == [TEXT]
    assert sends(POSSIBLE_DUPLICATE) == duplicates


@ATTEMPTS
async def test_a_stopping_worker_ends_in_bounded_time_though_a_send_never_answers(
    dev_env: WorkflowEnvironment, redis: Redis, steps: tuple[str, ...]
) -> None:
    """A send gives up at its deadline, before the grace period ends (other activities are
    cancelled at its end). What remains: the provider may have taken it; the next worker sends
    it again, counted as a possible duplicate."""
    customer = new_customer()
    async with services_with(dev_env, redis, *steps, "hang") as (services, provider):
        duplicates = sends(POSSIBLE_DUPLICATE)
        stop = asyncio.Event()
        worker = asyncio.create_task(services.run_worker(stop))
        handle = await notify(dev_env, services, customer)
        await asyncio.wait_for(provider.took.wait(), 30)
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(worker, constants.WORKER_SHUTDOWN_GRACE.total_seconds() + 10)
        assert time.monotonic() - started < constants.WORKER_SHUTDOWN_GRACE.total_seconds() + 5

        async with running_worker(services):
            await asyncio.wait_for(handle.result(), 40)
    assert provider.to(customer) == [TEXT, TEXT]
    assert sends(POSSIBLE_DUPLICATE) == duplicates + 1


# -- a run that ends while a message arrives ------------------------------------------------------


class HoldsTheGoodbye(ConsoleChannel):
    """The console, holding the send of "bye" (the text that ends Echo) until released."""

    def __init__(self) -> None:
        self.memory = Outbox()
        super().__init__(self.memory)
        self.holding, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.text == "bye":
            self.holding.set()
            await self.release.wait()
        return await super().send(message)


async def test_a_message_arriving_while_the_run_ends_does_not_send_its_last_message_twice(
    dev_env: WorkflowEnvironment,
) -> None:
    # "after" arrives while the workflow task that sends "bye" and ends the run is running: the
    # server refuses that task (a signal came meanwhile), so its local send runs again, and finds
    # its first run in the send ledger (revision 1 has no commit timer to keep it out of that task).
    console = HoldsTheGoodbye()
    already = REGISTRY.get_sample_value("chatflow_sends_total", {"provider": "console", "status": ALREADY_SENT}) or 0.0
    async with FlowTest(dev_env, Echo, provider=console) as chat:
        await chat.start()
        await chat.deliver("bye")
        await asyncio.wait_for(console.holding.wait(), 30)
        await chat.deliver("after")
        console.release.set()
        snapshot = await chat.settle()
        assert [m.text for m in console.memory.sent[chat.ref.customer]] == ["bye"]
        assert snapshot.step == "listen" and snapshot.outcome == ""  # "after" started Echo again, as its trigger
    again = REGISTRY.get_sample_value("chatflow_sends_total", {"provider": "console", "status": ALREADY_SENT})
    assert again == already + 1  # the refused task's send ran again and was not sent
