from collections.abc import Iterator
from datetime import timedelta

import pytest
import respx
from temporalio.testing import WorkflowEnvironment

from chatflow import hours
from chatflow.testing import FlowTest
from conversations.payment_recovery import SHOP_API, PaymentRecovery

EMAIL = "ana@example.com"
JOURNEY = {"customer_id": "c-42", "order_id": "A-1001", "payment_link": "https://pay.example/A-1001", "email": EMAIL}


def emails(chat: FlowTest) -> list[tuple[str, str]]:
    """The (subject, text) of every email the flow sent the customer."""
    return [(m.subject, m.text) for m in chat.sent_to(EMAIL) if m.channel == "email"]


@pytest.fixture
def shop() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=SHOP_API, assert_all_called=False) as mock:
        yield mock


async def test_power_user_is_switched_to_cash_on_delivery(
    skipping_env: WorkflowEnvironment, shop: respx.MockRouter
) -> None:
    shop.get("/customers/c-42").respond(json={"id": "c-42", "tier": "power"})
    switch = shop.put("/orders/A-1001").respond(json={"id": "A-1001", "payment_method": "cod"})
    async with FlowTest(skipping_env, PaymentRecovery) as chat:
        said = await chat.start(JOURNEY)
        assert said == [
            "Your card payment for order A-1001 didn't go through, so we've switched it to "
            "cash on delivery. No action needed: your order is confirmed."
        ]
        result = await chat.result()
        assert emails(chat) == [
            (
                "Order A-1001: switched to cash on delivery",
                "Your card payment for order A-1001 didn't go through, so we've switched it to "
                "cash on delivery. No action needed: your order is confirmed.",
            )
        ]
    assert result.outcome == "completed"
    assert switch.calls.last.request.content == b'{"payment_method":"cod"}'


async def test_other_customers_get_link_reminder_then_expiry(
    skipping_env: WorkflowEnvironment, shop: respx.MockRouter
) -> None:
    shop.get("/customers/c-42").respond(json={"id": "c-42", "tier": "regular"})
    async with FlowTest(skipping_env, PaymentRecovery) as chat:
        assert await chat.start(JOURNEY) == [
            "Your payment for order A-1001 failed. You can pay again here: https://pay.example/A-1001"
        ]
        assert await chat.skip(hours(23)) == []
        assert await chat.skip(hours(1.1)) == [
            "Reminder: order A-1001 is waiting for payment. Pay here: https://pay.example/A-1001"
        ]
        assert await chat.skip(hours(47)) == []
        assert await chat.skip(hours(1.1)) == ["We didn't receive payment, so order A-1001 has been cancelled."]
        assert (await chat.result()).outcome == "expired"
        assert emails(chat) == []  # nothing was confirmed


async def test_payment_succeeded_event_ends_the_flow_early(
    skipping_env: WorkflowEnvironment, shop: respx.MockRouter
) -> None:
    shop.get("/customers/c-42").respond(json={"id": "c-42", "tier": "regular"})
    async with FlowTest(skipping_env, PaymentRecovery) as chat:
        await chat.start(JOURNEY)
        await chat.skip(hours(25))  # past the reminder
        assert await chat.event("payment_succeeded", {"amount": 42}) == [
            "Payment received, thank you! Order A-1001 is confirmed."
        ]
        result = await chat.result()
        assert emails(chat) == [
            ("Order A-1001: payment received", "Payment received, thank you! Order A-1001 is confirmed.")
        ]
    assert result.outcome == "completed"
    assert result.data["events"]["payment_succeeded"] == {"amount": 42}


async def test_without_an_email_the_confirmation_goes_by_sms_alone(
    skipping_env: WorkflowEnvironment, shop: respx.MockRouter
) -> None:
    shop.get("/customers/c-42").respond(json={"id": "c-42", "tier": "regular"})
    journey = {key: value for key, value in JOURNEY.items() if key != "email"}
    async with FlowTest(skipping_env, PaymentRecovery) as chat:
        await chat.start(journey)
        assert await chat.event("payment_succeeded", {}) == ["Payment received, thank you! Order A-1001 is confirmed."]
        assert (await chat.result()).outcome == "completed"
        assert emails(chat) == []


async def test_shop_api_down_falls_back_to_the_link(skipping_env: WorkflowEnvironment, shop: respx.MockRouter) -> None:
    lookup = shop.get("/customers/c-42").respond(503)
    async with FlowTest(skipping_env, PaymentRecovery) as chat:
        assert await chat.start(JOURNEY) == []  # the lookup is being retried
        assert await chat.skip(timedelta(minutes=1)) == [
            "Your payment for order A-1001 failed. You can pay again here: https://pay.example/A-1001"
        ]
        assert (await chat.data())["customer"]["status"] == 503
    assert lookup.call_count == 4  # the first try and three retries
