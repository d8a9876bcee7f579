"""A flow's quiet hours hold back non-urgent messages, never answers to a customer who just wrote."""

from datetime import time, timedelta

from chatflow import Ask, End, Flow, Say, SendWindow, yes
from chatflow.testing import FlowTest


async def window_opening_soon(env) -> SendWindow:
    """A two-hour window opening between one and two hours from the server's now (UTC)."""
    now = await env.get_current_time()
    start = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    return SendWindow(time(start.hour), time((start.hour + 2) % 24))


async def test_non_urgent_messages_wait_for_the_window(skipping_env):
    window = await window_opening_soon(skipping_env)

    class Promo(Flow):
        quiet_hours = window
        notice = Say("Your order shipped.", urgent=True)
        promo = Say("Our sale starts now!")
        offer = Ask("Want a 10% coupon?", branches={yes: "coupon"})
        coupon = End("completed", "Use SAVE10 at checkout.")

    async with FlowTest(skipping_env, Promo) as chat:
        assert await chat.start({"timezone": "UTC"}) == ["Your order shipped."]
        assert await chat.skip(timedelta(minutes=55)) == []
        assert await chat.skip(timedelta(hours=1, minutes=10)) == [
            "Our sale starts now!",
            "Want a 10% coupon?",
        ]
        assert await chat.send("yes") == ["Use SAVE10 at checkout."]


async def test_an_answer_to_a_customer_is_not_held_back(skipping_env):
    window = await window_opening_soon(skipping_env)

    class Helpdesk(Flow):
        quiet_hours = window
        menu = Ask("How can we help? Reply YES for a callback.", branches={yes: "callback"})
        callback = End("completed", "We'll call you.")

    async with FlowTest(skipping_env, Helpdesk) as chat:
        assert await chat.send("hi") == ["How can we help? Reply YES for a callback."]
        assert await chat.send("yes") == ["We'll call you."]
