"""The Fyno payments example (examples/payments) end to end, as `chatflow dev` runs it in its
folder: Stripe's events in their real shape, signed as Stripe signs them, at /webhooks/stripe;
the shop's API mocked at the HTTP layer (respx); SMS on the console channel; email through a
real SMTP server on loopback (aiosmtpd)."""

import asyncio
import base64
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from standardwebhooks import Webhook
from temporalio.testing import WorkflowEnvironment

from chatflow import hours
from chatflow.domain.config import Settings
from chatflow.journeys import service
from chatflow.journeys.business_keys import BusinessKeys
from chatflow.runtime.config import load_config
from chatflow.runtime.services import Services, load_flows
from chatflow.temporal.client import start_journey
from chatflow.testing import FlowTest
from providers.email.catcher import MailCatcher
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.stripe.events import payment_intent_event, post_signed

EXAMPLE = Path(__file__).parents[2] / "examples" / "payments"
SECRET = "whsec_example_payments"
SHOP = "https://shop.example.com/api"  # payment_flows' default SHOP_API_URL
SINK = "http://127.0.0.1:8081/chatflow-events"  # the shop's webhook, the [[sinks]] entry `shop`
SINK_SECRET = "whsec_" + base64.b64encode(b"the shop's sink secret, 32 bytes").decode()
SHOP_NUMBER = "+15005550006"
PAID = "Payment received, thank you! Order {} is confirmed."
CASH_ON_DELIVERY = (
    "Your card payment for order {} didn't go through, so we've switched it to "
    "cash on delivery. No action needed: your order is confirmed."
)


@pytest.fixture
async def catcher() -> AsyncIterator[MailCatcher]:
    async with MailCatcher() as server:
        yield server


@pytest.fixture
def shop() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__regex=rf"{SHOP}/customers/power-.*", name="power").respond(json={"tier": "power"})
        mock.get(url__regex=rf"{SHOP}/customers/.*").respond(json={"tier": "regular"})
        mock.put(url__regex=rf"{SHOP}/orders/.*", name="cod").respond(json={"payment_method": "cod"})
        mock.post(SINK, name="sink").respond(204)
        yield mock


@pytest.fixture
async def example(
    dev_env: WorkflowEnvironment, redis: Redis, catcher: MailCatcher, shop: respx.MockRouter
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    environment = {
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "CHATFLOW_SMTP_URL": catcher.url,
        "CHATFLOW_EMAIL_FROM": "Shop <orders@shop.example>",
        "CHATFLOW_API_KEY": "key",
        "SHOP_SINK_SECRET": SINK_SECRET,
    }
    config = load_config(EXAMPLE / "chatflow.toml", Settings.from_env(environment))
    flows = load_flows(config)
    async with started_services(config, flows, client=dev_env.client, redis=redis) as services:
        services.channels["console"] = RecordingChannel(services.channels["console"])
        async with running_worker(services), running_app(services) as web:
            yield web, services


def order(customer_id: str = "") -> dict[str, str]:
    order_id = f"A-{uuid.uuid4().hex[:6]}"
    return {
        "order_id": order_id,
        "customer_id": customer_id or f"c-{uuid.uuid4().hex[:6]}",
        "phone": new_customer(),
        "email": f"{order_id.lower()}@example.com",
        "payment_link": f"https://pay.example/{order_id}",
    }


async def post(
    web: httpx.AsyncClient, event: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None
) -> httpx.Response:
    return await post_signed(web, event, secret=secret, timestamp=timestamp)


async def sink_events(shop: respx.MockRouter, order_id: str, last: str) -> list[dict[str, Any]]:
    """The events the shop's webhook got for the order, each verified, once `last` is among them."""
    for _ in range(400):
        events: list[dict[str, Any]] = []
        for call in shop.routes["sink"].calls:
            message = Webhook(SINK_SECRET).verify(call.request.content, dict(call.request.headers))
            if message["data"]["data"].get("order_id") == order_id:
                events.append(message["data"])
        if any(event["type"] == last for event in events):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {last} for order {order_id} at the shop's webhook")


def steps(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Each event's type, with the step it reached or the outcome it ended with."""
    return [(event["type"], event["detail"].get("step", event["detail"].get("outcome"))) for event in events]


def sms(services: Services) -> RecordingChannel:
    channel = services.channels["console"]
    assert isinstance(channel, RecordingChannel)
    return channel


async def test_a_power_user_s_failed_payment_is_switched_to_cash_on_delivery(
    example: tuple[httpx.AsyncClient, Services], catcher: MailCatcher, shop: respx.MockRouter
) -> None:
    web, services = example
    metadata = order(customer_id=f"power-{uuid.uuid4().hex[:6]}")
    answer = await post(web, payment_intent_event("payment_intent.payment_failed", metadata))
    assert answer.status_code == 200, answer.text
    text = CASH_ON_DELIVERY.format(metadata["order_id"])
    assert await sms(services).wait_for(metadata["phone"], 1) == [text]
    (email,) = await catcher.wait_for(metadata["email"])
    assert email.subject == f"Order {metadata['order_id']}: cash on delivery" and email.text == text
    assert [call.request.url.path for call in shop.routes["cod"].calls] == [f"/api/orders/{metadata['order_id']}"]
    # The shop's webhook hears each step of that conversation, signed, in order.
    assert steps(await sink_events(shop, metadata["order_id"], "conversation.ended")) == [
        ("conversation.started", None),
        ("step.reached", "look_up_customer"),
        ("step.reached", "is_power_user"),
        ("step.reached", "switch_to_cash_on_delivery"),
        ("step.reached", "email_cash_on_delivery"),
        ("step.reached", "confirm_cash_on_delivery"),
        ("conversation.ended", "completed"),
    ]


async def test_a_regular_user_gets_the_link_and_paying_later_confirms_that_conversation(
    example: tuple[httpx.AsyncClient, Services], catcher: MailCatcher, shop: respx.MockRouter
) -> None:
    web, services = example
    metadata = order()
    failed = payment_intent_event("payment_intent.payment_failed", metadata)
    assert (await post(web, failed)).status_code == 200
    link = f"Your payment for order {metadata['order_id']} failed. You can pay again here: {metadata['payment_link']}"
    assert await sms(services).wait_for(metadata["phone"], 1) == [link]
    # Stripe delivers the failure again: it acts once.
    assert (await post(web, failed)).json()["events"][0]["results"] == ["duplicate"]

    succeeded = await post(web, payment_intent_event("payment_intent.succeeded", metadata))
    assert succeeded.json()["events"][0]["results"][0].startswith("delivered ")
    assert await sms(services).wait_for(metadata["phone"], 2) == [link, PAID.format(metadata["order_id"])]
    (email,) = await catcher.wait_for(metadata["email"])
    assert email.subject == f"Order {metadata['order_id']}: payment received"
    # The shop's webhook hears that one conversation's steps, signed, in order.
    assert steps(await sink_events(shop, metadata["order_id"], "conversation.ended")) == [
        ("conversation.started", None),
        ("step.reached", "look_up_customer"),
        ("step.reached", "is_power_user"),
        ("step.reached", "send_link"),
        ("step.reached", "wait_for_payment"),
        ("step.reached", "paid"),
        ("step.reached", "confirm_paid"),
        ("conversation.ended", "completed"),
    ]
    await asyncio.sleep(0.5)
    assert len(sms(services).to(metadata["phone"])) == 2


class HeldBack:
    """Holds the start of the first payment_recovery journey at one point until released."""

    def __init__(self, real: Callable[..., Awaitable[Any]]) -> None:
        self.real = real
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The flow: by name (start_journey) or as its class (BusinessKeys.started).
        flows = {
            arg if isinstance(arg, str) else getattr(arg, "name", "") for arg in args if isinstance(arg, str | type)
        }
        if "payment_recovery" in flows and not self.reached.is_set():
            self.reached.set()
            await self.release.wait()
        return await self.real(*args, **kwargs)


@pytest.mark.parametrize("held", ["before its workflow starts", "before it is indexed by order"])
async def test_a_payment_that_succeeds_while_the_recovery_is_starting_confirms_it_once(
    example: tuple[httpx.AsyncClient, Services],
    catcher: MailCatcher,
    shop: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    held: str,
) -> None:
    """Stripe's payment_intent.succeeded arrives while the failure's recovery journey is starting:
    it reaches that conversation, once; no confirmation journey of its own starts beside it."""
    web, services = example
    if held == "before its workflow starts":
        hold = HeldBack(start_journey)  # the function the journeys service calls, by that name
        monkeypatch.setattr(service, "start_journey", hold)
    else:
        hold = HeldBack(BusinessKeys.started)
        monkeypatch.setattr(BusinessKeys, "started", lambda self, *args: hold(self, *args))
    metadata = order()
    failed = asyncio.create_task(post(web, payment_intent_event("payment_intent.payment_failed", metadata)))
    await asyncio.wait_for(hold.reached.wait(), 30)
    succeeded = await post(web, payment_intent_event("payment_intent.succeeded", metadata))
    assert succeeded.status_code == 200, succeeded.text
    hold.release.set()
    assert (await failed).status_code == 200

    link = f"Your payment for order {metadata['order_id']} failed. You can pay again here: {metadata['payment_link']}"
    paid = PAID.format(metadata["order_id"])
    assert await sms(services).wait_for(metadata["phone"], 2) == [link, paid]
    (email,) = await catcher.wait_for(metadata["email"])
    assert email.subject == f"Order {metadata['order_id']}: payment received"
    heard = await sink_events(shop, metadata["order_id"], "conversation.ended")
    assert {event["flow"] for event in heard} == {"payment_recovery"}  # no payment_confirmed beside it
    assert [event["detail"]["outcome"] for event in heard if event["type"] == "conversation.ended"] == ["completed"]
    await asyncio.sleep(0.5)
    assert sms(services).to(metadata["phone"]) == [link, paid] and len(catcher.to(metadata["email"])) == 1


async def test_a_payment_that_succeeds_at_once_is_confirmed_by_sms_and_email(
    example: tuple[httpx.AsyncClient, Services], catcher: MailCatcher, shop: respx.MockRouter
) -> None:
    web, services = example
    metadata = order()
    succeeded = payment_intent_event("payment_intent.succeeded", metadata)
    answer = await post(web, succeeded)
    assert answer.json()["events"][0]["results"][0].startswith("started ")
    # Stripe delivers it again: it acts once.
    assert (await post(web, succeeded)).json()["events"][0]["results"] == ["duplicate"]
    assert await sms(services).wait_for(metadata["phone"], 1) == [PAID.format(metadata["order_id"])]
    (email,) = await catcher.wait_for(metadata["email"])
    assert email.text == PAID.format(metadata["order_id"])
    assert steps(await sink_events(shop, metadata["order_id"], "conversation.ended")) == [
        ("conversation.started", None),
        ("step.reached", "email_confirmation"),
        ("step.reached", "confirm"),
        ("conversation.ended", "completed"),
    ]
    await asyncio.sleep(0.5)
    assert len(sms(services).to(metadata["phone"])) == 1 and len(catcher.to(metadata["email"])) == 1


async def test_a_bad_signature_or_a_stale_timestamp_gets_403_and_sends_nothing(
    example: tuple[httpx.AsyncClient, Services], catcher: MailCatcher, shop: respx.MockRouter
) -> None:
    web, services = example
    metadata = order()
    event = payment_intent_event("payment_intent.succeeded", metadata)
    assert (await post(web, event, secret="whsec_forged")).status_code == 403
    assert (await post(web, event, timestamp=int(time.time()) - 301)).status_code == 403
    await asyncio.sleep(1)
    assert sms(services).to(metadata["phone"]) == [] and catcher.to(metadata["email"]) == []
    assert not [call for call in shop.routes["sink"].calls if metadata["order_id"].encode() in call.request.content]
    # Nothing claimed either: the same event, signed right, is acted on.
    assert (await post(web, event)).json()["events"][0]["results"][0].startswith("started ")


async def test_without_payment_the_link_is_reminded_then_the_order_expires(
    skipping_env: WorkflowEnvironment, shop: respx.MockRouter
) -> None:
    if str(EXAMPLE) not in sys.path:  # beside the example's chatflow.toml, as chatflow dev finds it
        sys.path.insert(0, str(EXAMPLE))
    import payment_flows

    metadata = order()
    async with FlowTest(skipping_env, payment_flows.PaymentRecovery) as chat:
        await chat.start(metadata)
        assert await chat.skip(hours(24.1)) == [
            f"Reminder: order {metadata['order_id']} is waiting for payment. Pay here: {metadata['payment_link']}"
        ]
        assert await chat.skip(hours(48.1)) == [
            f"We didn't receive payment, so order {metadata['order_id']} has been cancelled."
        ]
        assert (await chat.result()).outcome == "expired"


def test_the_user_s_own_code_stays_under_120_lines() -> None:
    lines = sum(len((EXAMPLE / name).read_text().splitlines()) for name in ("payment_flows.py", "stripe_mapping.py"))
    assert lines < 120
