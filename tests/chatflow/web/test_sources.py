"""Sources end to end: Stripe events signed as Stripe signs them, posted to `/webhooks/stripe` of
the web app as `chatflow web` serves it, acted on by the mapping below through a real Temporal and
Valkey; events by business key through the journeys API."""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Report, Say, SourceEvent, SourceMapping, Start, Wait, hours
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.source import SourceBinding
from chatflow.runtime.services import Services
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.stripe.events import payment_intent_event, post_signed

NUMBER = "+15005550006"
# The dashboard sets its session cookie without Secure only for plain http to a loopback address.
LOOPBACK = "http://127.0.0.1"
SECRET = "whsec_sources_test"
KEY = "api-key"


class OrderPayment(Flow):
    keys = ("order_id",)

    tell = Say("Payment for order {order_id} failed.")
    wait = Wait(events={"payment_succeeded": "paid"}, timeout=hours(1), on_timeout="expired")
    expired = End("expired", "Order {order_id} expired.")
    paid = End("completed", "Order {order_id} is paid, thanks.")


class OrderPaid(Flow):
    confirm = End("completed", "Order {order_id} confirmed.")


stripe_events = SourceMapping()


@stripe_events.on("payment_intent.payment_failed")
def payment_failed(event: SourceEvent) -> Start:
    metadata = event.object["metadata"]
    return Start("order_payment", to=metadata["phone"], data={"order_id": metadata["order_id"]})


@stripe_events.on("payment_intent.succeeded")
def payment_succeeded(event: SourceEvent) -> Report:
    metadata = event.object["metadata"]
    confirm = Start("order_paid", to=metadata["phone"], data={"order_id": metadata["order_id"]})
    return Report("payment_succeeded", order_id=metadata["order_id"], otherwise=confirm)


def config() -> Config:
    return Config(
        numbers=[NumberBinding(Address("tel", NUMBER), "console", "sms", "order_paid")],
        flow_modules=[],
        settings=Settings(api_key=KEY, environment={"STRIPE_WEBHOOK_SECRET": SECRET}),
        sources=[SourceBinding("stripe", "stripe", f"{__name__}:stripe_events", from_=NUMBER)],
    )


@pytest.fixture
async def services(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[Services]:
    async with started_services(config(), [OrderPayment, OrderPaid], client=dev_env.client, redis=redis) as services:
        services.channels["console"] = RecordingChannel(services.channels["console"])
        yield services


@pytest.fixture
async def web(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with running_worker(services), running_app(services, base_url=LOOPBACK) as http:
        http.headers["Authorization"] = f"Bearer {KEY}"
        yield http


def stripe_event(kind: str, order: str, phone: str) -> dict[str, Any]:
    return payment_intent_event(kind, {"order_id": order, "phone": phone})


async def post(
    web: httpx.AsyncClient, event: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None
) -> httpx.Response:
    return await post_signed(web, event, secret=secret, timestamp=timestamp)


def sent(services: Services) -> RecordingChannel:
    channel = services.channels["console"]
    assert isinstance(channel, RecordingChannel)
    return channel


def order() -> str:
    return f"A-{uuid.uuid4().hex[:8]}"


async def test_a_failed_payment_starts_a_journey_and_its_success_reaches_that_conversation(
    web: httpx.AsyncClient, services: Services
) -> None:
    customer, order_id = new_customer(), order()
    failed = stripe_event("payment_intent.payment_failed", order_id, customer)
    answer = await post(web, failed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"][0]["results"] == [f"started {ConversationRef('sms', NUMBER, customer).id}"]
    assert await sent(services).wait_for(customer, 1) == [f"Payment for order {order_id} failed."]

    # Stripe delivers the same event again: acknowledged, nothing done twice.
    again = await post(web, failed)
    assert again.status_code == 200 and again.json()["events"][0]["results"] == ["duplicate"]

    answer = await post(web, stripe_event("payment_intent.succeeded", order_id, customer))
    assert answer.json()["events"][0]["results"][0].startswith("delivered chat:sms:")
    assert await sent(services).wait_for(customer, 2) == [
        f"Payment for order {order_id} failed.",
        f"Order {order_id} is paid, thanks.",
    ]


async def test_a_success_with_no_conversation_for_its_order_starts_the_otherwise_journey(
    web: httpx.AsyncClient, services: Services
) -> None:
    customer, order_id = new_customer(), order()
    answer = await post(web, stripe_event("payment_intent.succeeded", order_id, customer))
    assert answer.json()["events"][0]["results"][0].startswith("started chat:sms:")
    assert await sent(services).wait_for(customer, 1) == [f"Order {order_id} confirmed."]


async def test_a_bad_signature_or_a_stale_timestamp_is_refused_and_changes_nothing(
    web: httpx.AsyncClient, services: Services, redis: Redis
) -> None:
    customer = new_customer()
    event = stripe_event("payment_intent.payment_failed", order(), customer)
    forged = await post(web, event, secret="whsec_guessed")
    stale = await post(web, event, timestamp=int(time.time()) - 600)
    assert (forged.status_code, stale.status_code) == (403, 403)
    assert "Stripe-Signature" in forged.json()["error"]
    unsigned = await web.post("/webhooks/stripe", json=event)
    assert unsigned.status_code == 403
    # Now signed: it acts, so the refused ones had not claimed its id either.
    assert (await post(web, event)).json()["events"][0]["results"][0].startswith("started")
    await sent(services).wait_for(customer, 1)
    await asyncio.sleep(0.5)
    assert len(sent(services).to(customer)) == 1
    counts = await redis.hgetall("chatflow:source:stripe:counts")
    assert int(counts["refused"]) >= 3
    # Operators see the same on the dashboard's operations page.
    await web.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})
    page = (await web.get("/dashboard/operations")).text
    row = re.search(r'<table id="sources">.*?<tr><td>stripe</td><td>(.*?)</td><td>(\d+)</td>', page, re.S)
    assert row is not None and "payment_intent.payment_failed" in row.group(1)
    assert int(row.group(2)) == int(counts["refused"])


async def test_an_unmapped_type_is_acknowledged_and_counted(web: httpx.AsyncClient, redis: Redis) -> None:
    answer = await post(web, stripe_event("charge.refunded", order(), new_customer()))
    assert answer.status_code == 200 and answer.json()["events"][0]["results"] == ["ignored"]
    assert int((await redis.hgetall("chatflow:source:stripe:counts"))["received:charge.refunded"]) >= 1


async def test_an_event_by_key_before_its_conversation_waits_for_it_and_is_applied_once(
    web: httpx.AsyncClient, services: Services
) -> None:
    customer, order_id = new_customer(), order()
    event = {"name": "payment_succeeded", "key": {"order_id": order_id}, "id": "pay-1"}
    kept = await web.post("/api/events", json=event)
    assert kept.status_code == 202 and kept.json()["status"] == "kept"
    twice = await web.post("/api/events", json=event)
    assert twice.json()["status"] == "kept"

    started = await web.post(
        "/api/conversations",
        json={"flow": "order_payment", "to": customer, "from": NUMBER, "data": {"order_id": order_id}},
    )
    assert started.status_code == 202, started.text
    assert await sent(services).wait_for(customer, 2) == [
        f"Payment for order {order_id} failed.",
        f"Order {order_id} is paid, thanks.",
    ]
    # Once the conversation is open, an event by its key goes straight to it.
    other, other_order = new_customer(), order()
    await web.post(
        "/api/conversations",
        json={"flow": "order_payment", "to": other, "from": NUMBER, "data": {"order_id": other_order}},
    )
    await sent(services).wait_for(other, 1)
    answer = await web.post("/api/events", json={"name": "payment_succeeded", "key": {"order_id": other_order}})
    assert answer.json() == {
        "status": "delivered",
        "conversations": [ConversationRef("sms", NUMBER, other).id],
        "event": "payment_succeeded",
    }
    await sent(services).wait_for(other, 2)


async def test_an_event_by_key_must_name_one_key(web: httpx.AsyncClient) -> None:
    answer = await web.post("/api/events", json={"name": "x", "key": {"a": "1", "b": "2"}})
    assert answer.status_code == 422 and "one business key" in answer.json()["error"]
