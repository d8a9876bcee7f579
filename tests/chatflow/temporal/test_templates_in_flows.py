"""A step's template travels with its message, its parameters filled in from the journey's data."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Location, Say, Template, Wait, days
from chatflow.domain.messages import TemplateMessage, TemplateParameter
from chatflow.testing import FlowTest


class PaymentNotice(Flow):
    name = "payment_notice"

    notice = Say(
        "Your payment for order {order_id} failed: {payment_link}",
        template=Template("payment_failed", language="en", body=["{order_id}", "{payment_link}"], content_sid="HX1"),
    )
    wait = Wait(events={"paid": "paid"}, timeout=days(2), on_timeout="done")
    paid = End("completed", "Paid, thanks!", template=Template("payment_received", body={"order": "{order_id}"}))
    done = End("completed")


async def test_the_template_goes_with_its_parameters_from_the_journeys_data(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PaymentNotice, channel="whatsapp") as chat:
        await chat.start({"order_id": "A-1", "payment_link": "https://pay.example.com/A-1"})
        await chat.event("paid")
        first, last = chat.messages
        assert first.text == "Your payment for order A-1 failed: https://pay.example.com/A-1"
        assert first.template == "payment_failed:en"
        assert first.template_message == TemplateMessage(
            "payment_failed",
            "en",
            body=[TemplateParameter("A-1"), TemplateParameter("https://pay.example.com/A-1")],
            content_sid="HX1",
            content_variables={"1": "A-1", "2": "https://pay.example.com/A-1"},
        )
        assert last.template_message is not None
        assert last.template_message.body == [TemplateParameter("A-1", "order")]


async def test_a_template_naming_a_key_the_data_lacks_takes_the_failure_branch(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, PaymentNotice, channel="whatsapp") as chat:
        await chat.start({"order_id": "A-1"})  # no payment_link: neither the text nor the template can be made
        result = await chat.result()
        assert result.outcome == "failed" and "payment_link" in result.reason
        assert chat.messages == []


class ShopLocation(Flow):
    name = "shop_location"

    where = Say("Our shop:", location=Location(48.85, 2.35, "Shop", "1 Rue X"))
    done = End("completed")


async def test_a_say_sends_its_location(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, ShopLocation, channel="whatsapp") as chat:
        await chat.start()
        [message] = chat.messages
        assert message.location == Location(48.85, 2.35, "Shop", "1 Rue X")
