"""The order hold: a conversation that receives a message straight from the web tier (Redis was
away, or its replicas did not confirm the message) waits until the buffer has handed on the
customer's older messages, then takes them all in the order they were received."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import BufferBarrier, encode, partition_of
from chatflow.temporal import constants
from chatflow.temporal.client import deliver
from chatflow.temporal.worker import build_worker
from providers.console import ConsoleChannel, Outbox
from tests.flows import FLOWS

NUMBER = "+15005550006"
CUSTOMER = "+15557770001"
START = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT = 60.0


def message(n: int, *, unbuffered: bool = False) -> InboundMessage:
    """The customer's n-th message, received n seconds after START."""
    return InboundMessage(
        id=f"SM{uuid.uuid4().hex}",
        channel="sms",
        provider="console",
        customer=CUSTOMER,
        number=NUMBER,
        text=f"m{n}",
        received_at=(START + timedelta(seconds=n)).isoformat(),
        unbuffered=unbuffered,
    )


async def until(done: Callable[[], bool], failure: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not done():
        assert loop.time() < deadline, failure
        await asyncio.sleep(0.05)


async def holds(handle: WorkflowHandle[Any, Any]) -> int:
    """How many times the conversation has begun to wait for the buffer (an order hold)."""
    scheduled = [
        event
        async for event in handle.fetch_history_events()
        if event.activity_task_scheduled_event_attributes.activity_type.name == constants.AWAIT_BUFFER
    ]
    return len(scheduled)


async def waiting(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether a worker is running the conversation's wait for the buffer."""
    description = await handle.describe()
    return any(
        activity.activity_type.name == constants.AWAIT_BUFFER
        and activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for activity in description.raw_description.pending_activities
    )


async def test_a_message_handed_straight_on_during_a_hold_waits_for_one_the_buffer_took_meanwhile(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    client = dev_env.client
    task_queue = f"order-hold-{uuid.uuid4().hex}"
    outbox = Outbox()
    first = message(1)
    stream = keys.inbox(partition_of(first.conversation.id))
    barrier = BufferBarrier(redis)
    async with build_worker(client, FLOWS, {"console": ConsoleChannel(outbox)}, task_queue=task_queue, barrier=barrier):

        def said() -> list[str]:
            return [sent.text for sent in outbox.sent[CUSTOMER]]

        handle = await deliver(client, first, "parrot", task_queue=task_queue)
        await until(lambda: said() == ["got m1"], "the conversation did not answer m1")

        # Someone's message the buffer has not handed on yet: the hold that m2 starts waits for it.
        older = await redis.xadd(stream, {"m": encode(message(0), "parrot")})
        await deliver(client, message(2, unbuffered=True), "parrot", task_queue=task_queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while not await waiting(handle):
            assert loop.time() < deadline, "the conversation did not hold"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # past the moment the wait began, by Redis's clock

        # Meanwhile the buffer takes m3 (Redis back), then m4 goes straight on (Redis away again).
        third = message(3)
        buffered = await redis.xadd(stream, {"m": encode(third, "parrot")})
        await deliver(client, message(4, unbuffered=True), "parrot", task_queue=task_queue)
        await redis.xdel(stream, older)  # the hold's wait is over: m2 is answered
        await until(lambda: said()[:2] == ["got m1", "got m2"], "m2 was not answered")

        # Hand m3 on as the forwarder does, once the conversation either answered m4 (it
        # overtook m3) or holds again for m3.
        while "got m4" not in said() and await holds(handle) < 2:
            assert loop.time() < deadline + TIMEOUT, "neither m4 answered nor a second hold"
            await asyncio.sleep(0.05)
        await deliver(client, third, "parrot", task_queue=task_queue)
        await redis.xdel(stream, buffered)
        await until(lambda: len(said()) == 4, "not every message was answered")
        assert said() == ["got m1", "got m2", "got m3", "got m4"]
