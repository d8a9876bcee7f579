"""A flow's quiet hours hold back non-urgent messages, never answers to a customer who just wrote."""

from datetime import UTC, datetime, time, timedelta

from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, Convo, End, Flow, Say, SendWindow, yes
from chatflow.testing import FlowTest, MemoryFlowTest

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def window_opening_soon(now: datetime) -> SendWindow:
    """A two-hour window opening between one and two hours from `now` (UTC)."""
    start = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    return SendWindow(time(start.hour), time((start.hour + 2) % 24))


async def test_non_urgent_messages_wait_for_the_window(skipping_env: WorkflowEnvironment) -> None:
    window = window_opening_soon(await skipping_env.get_current_time())

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
        # Every non-urgent message carries the window, for a later send of it (the SMS fallback
        # waits for it unless, as for the last one, the customer has just written).
        held = f"{window.start.isoformat('minutes')}-{window.end.isoformat('minutes')}@UTC"
        assert [m.quiet_hours for m in chat.messages] == ["", held, held, held]
        assert chat.messages[-1].last_inbound_at


async def test_an_answer_to_a_customer_is_not_held_back() -> None:
    window = window_opening_soon(NOON)

    class Helpdesk(Flow):
        quiet_hours = window
        menu = Ask("How can we help? Reply YES for a callback.", branches={yes: "callback"})
        callback = End("completed", "We'll call you.")

    async with MemoryFlowTest(Helpdesk, now=NOON) as chat:
        assert await chat.send("hi") == ["How can we help? Reply YES for a callback."]
        assert await chat.send("yes") == ["We'll call you."]


async def test_an_end_text_after_a_night_time_timeout_waits_for_the_window() -> None:
    window = window_opening_soon(NOON)

    class Reminder(Flow):
        quiet_hours = window
        ask = Ask("Still want your order?", branches={yes: "kept"}, timeout=timedelta(hours=3), on_timeout="gave_up")
        kept = End("completed", "Great.")
        gave_up = End("expired", "We cancelled your order.")

    async with MemoryFlowTest(Reminder, now=NOON) as chat:
        assert await chat.start({"timezone": "UTC"}) == []  # held until the window opens
        assert await chat.skip(timedelta(hours=2, minutes=5)) == ["Still want your order?"]
        # The timeout fires after the window has closed: the last word waits for the next one.
        assert await chat.skip(timedelta(hours=3, minutes=5)) == []
        assert await chat.skip(timedelta(hours=21)) == ["We cancelled your order."]


async def test_a_code_steps_say_waits_for_the_window_unless_urgent() -> None:
    window = window_opening_soon(NOON)

    class FromCode(Flow):
        quiet_hours = window

        async def hello(self, convo: Convo) -> None:
            await convo.say("Your parcel is at the door.", urgent=True)
            await convo.say(f"Rate us, {convo.data['name']}!")

        done = End("completed")

    async with MemoryFlowTest(FromCode, now=NOON) as chat:
        assert await chat.start({"timezone": "UTC", "name": "Ana"}) == ["Your parcel is at the door."]
        assert await chat.skip(timedelta(minutes=55)) == []
        assert await chat.skip(timedelta(hours=1, minutes=10)) == ["Rate us, Ana!"]


async def test_an_operator_reply_inside_quiet_hours_goes_and_the_trace_says_so(
    skipping_env: WorkflowEnvironment,
) -> None:
    window = window_opening_soon(await skipping_env.get_current_time())

    class Support(Flow):
        quiet_hours = window
        notice = Say("Your order is delayed.", urgent=True)
        ask = Ask("Reply OK to confirm.", branches={yes: "done"})
        done = End("completed")

    async with FlowTest(skipping_env, Support) as chat:
        assert await chat.start({"timezone": "UTC"}) == ["Your order is delayed."]
        await chat.take_over("ana")
        await chat.operator_says("Sorry, Ana here: it ships tomorrow.", operator="ana")
        assert chat.said[-1] == "Sorry, Ana here: it ships tomorrow."
        snapshot = await chat.handle.query("snapshot")
        lines = [line["text"] if isinstance(line, dict) else line.text for line in snapshot["trace"]]
        assert any("ana replied inside the flow's quiet hours" in line for line in lines), lines
