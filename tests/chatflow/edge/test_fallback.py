from dataclasses import replace
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import DeliveryUpdate, Option, OutboundMessage, Reaction, SendResult
from chatflow.edge.fallback import ChannelFallback
from chatflow.edge.optout import OptOuts
from chatflow.edge.send_guard import SendGuard
from providers.console import ConsoleChannel, Outbox

WHATSAPP, SMS = "+15005550007", "+15005550006"
CUSTOMER = "+14155550100"
CONFIG = Config(
    numbers=[
        NumberBinding(
            Address("whatsapp", WHATSAPP),
            "whatsapp_cloud",
            "whatsapp",
            "demo",
            options={"phone_number_id": "123"},
            fallback_number=SMS,
        ),
        NumberBinding(Address("tel", SMS), "twilio", "sms", "demo"),
    ],
    flow_modules=[],
    settings=Settings(),
)


def whatsapp(text: str = "Pick one") -> OutboundMessage:
    return OutboundMessage(
        "whatsapp",
        "whatsapp_cloud",
        WHATSAPP,
        CUSTOMER,
        text,
        options=[Option("a", "Yes"), Option("b", "No")],
        conversation_id="chat:whatsapp:+15005550007:+14155550100",
    )


def setup(redis: Redis) -> tuple[ChannelFallback, Outbox, SendGuard]:
    """The fallback, the outbox of the SMS channel it falls back to, and the guard it watches."""
    sms = Outbox()
    fallback = ChannelFallback(
        redis, CONFIG, {"twilio": ConsoleChannel(sms)}, after=timedelta(minutes=5), guard=SendGuard(OptOuts(redis))
    )
    return fallback, sms, SendGuard(watchers=[fallback.watch])


async def test_a_whatsapp_message_not_delivered_in_time_goes_by_sms(redis: Redis) -> None:
    fallback, sms, guard = setup(redis)
    await guard.after_send(whatsapp(), SendResult("wamid.1"))
    now = datetime.now(UTC)
    assert await fallback.sweep(now) == []
    assert len(await fallback.sweep(now + timedelta(minutes=6))) == 1
    [sent] = sms.sent[CUSTOMER]
    assert (sent.channel, sent.provider, sent.number) == ("sms", "twilio", SMS)
    assert sent.text == "Pick one\n\n1. Yes\n2. No"
    assert await fallback.sweep(now + timedelta(minutes=60)) == []  # once


async def test_a_delivered_message_needs_no_fallback_and_a_failed_one_goes_at_once(redis: Redis) -> None:
    fallback, sms, guard = setup(redis)
    await guard.after_send(whatsapp("one"), SendResult("wamid.1"))
    await guard.after_send(whatsapp("two"), SendResult("wamid.2"))
    await fallback.on_status(DeliveryUpdate("wamid.1", "read"))
    await fallback.on_status(DeliveryUpdate("wamid.2", "failed"))
    await fallback.sweep(datetime.now(UTC))
    assert [m.text for m in sms.sent[CUSTOMER]] == ["two\n\n1. Yes\n2. No"]
    await fallback.sweep(datetime.now(UTC) + timedelta(hours=1))
    assert len(sms.sent[CUSTOMER]) == 1


async def test_no_fallback_to_a_customer_opted_out_of_the_sms_number(redis: Redis) -> None:
    fallback, sms, guard = setup(redis)
    await OptOuts(redis).opt_out(Address("tel", SMS), Address("tel", CUSTOMER))
    await guard.after_send(whatsapp(), SendResult("wamid.1"))
    await fallback.on_status(DeliveryUpdate("wamid.1", "undelivered"))
    assert await fallback.sweep(datetime.now(UTC)) == []
    assert sms.sent[CUSTOMER] == []


async def test_sms_sends_reactions_and_numbers_without_fallback_are_not_watched(redis: Redis) -> None:
    fallback, sms, guard = setup(redis)
    await guard.after_send(OutboundMessage("sms", "twilio", SMS, CUSTOMER, "hi"), SendResult("SM1"))
    # Meta reports a reaction `sent`, never delivered: it must not go by SMS after the deadline.
    await guard.after_send(
        replace(whatsapp("🙏"), options=[], reaction=Reaction("wamid.IN1", "🙏")), SendResult("wamid.2")
    )
    assert await fallback.sweep(datetime.now(UTC) + timedelta(hours=1)) == []


async def test_an_sms_fallback_inside_the_flows_quiet_hours_waits_for_them_to_end(redis: Redis) -> None:
    fallback, sms, guard = setup(redis)
    night = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # a Monday, 21:00 in London
    held = replace(whatsapp("Your invoice is ready"), quiet_hours="09:00-20:00@Europe/London")
    urgent = replace(whatsapp("Your code is 1234"), customer="+14155550101")
    await guard.after_send(held, SendResult("wamid.1"))
    await guard.after_send(urgent, SendResult("wamid.2"))
    await fallback.on_status(DeliveryUpdate("wamid.1", "failed"))
    await fallback.on_status(DeliveryUpdate("wamid.2", "failed"))

    at_night = await fallback.sweep(night)
    before_nine = await fallback.sweep(datetime(2026, 3, 3, 8, 59, tzinfo=UTC))
    held_until_nine = list(sms.sent.get(CUSTOMER, []))
    at_nine = await fallback.sweep(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))

    # A message sent without quiet hours (urgent, an answer) falls back at once.
    assert len(at_night) == 1
    assert [m.text for m in sms.sent["+14155550101"]] == ["Your code is 1234\n\n1. Yes\n2. No"]
    assert before_nine == [] and held_until_nine == []
    assert len(at_nine) == 1 and [m.text for m in sms.sent[CUSTOMER]] == ["Your invoice is ready\n\n1. Yes\n2. No"]
