"""The engine's logic on the in-memory port (chatflow.flows.memory): matching, reprompts,
timeouts, durable waits, events, the loop guard, failures. No server: each test takes
milliseconds. What only the worker does (dedupe, order, sends retried, statuses) is tested on
Temporal in tests/chatflow/temporal/test_workflow.py."""

from datetime import UTC, datetime, timedelta

from chatflow import Ask, Convo, End, Flow, Http, Say, anything, hours
from chatflow.domain.errors import HttpCallFailed, PermanentSendError
from chatflow.domain.messages import HttpRequest, HttpResponse
from chatflow.testing import MemoryFlowTest
from tests.flows import Confirm, Echo, Later, Loops, Menu, Notify, PaymentLink, ShortLived

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


async def test_yes_in_another_language_takes_the_yes_branch() -> None:
    async with MemoryFlowTest(Confirm) as chat:
        assert await chat.send("hi") == ["Confirm your appointment tomorrow? Reply YES or NO."]
        assert await chat.send(" Sí! ") == ["Great, see you tomorrow!"]
        assert (await chat.result()).outcome == "completed"


async def test_24_hour_timeout_reminds_then_expires() -> None:
    async with MemoryFlowTest(Confirm) as chat:
        await chat.start()
        assert await chat.skip(hours(23.9)) == []
        assert await chat.skip(hours(0.2)) == ["Reminder: please confirm your appointment with YES or NO."]
        assert await chat.step() == "wait_again"
        await chat.skip(hours(24.1))
        assert (await chat.result()).outcome == "expired"


async def test_reprompt_limit_takes_its_own_branch() -> None:
    async with MemoryFlowTest(Confirm) as chat:
        await chat.start()
        assert await chat.send("maybe") == ["Please reply YES or NO."]
        assert await chat.send("what?") == ["Please reply YES or NO."]
        assert await chat.send("dunno") == ["Sorry, I couldn't understand. We'll call you instead."]
        assert (await chat.result()).outcome == "failed"


async def test_the_trigger_message_is_no_answer_and_a_message_to_an_ended_conversation_starts_again() -> None:
    async with MemoryFlowTest(Echo) as chat:
        assert await chat.send("hello") == []  # the trigger: `listen` waits for the next one
        assert await chat.send("there") == ["echo: there"]
        assert await chat.send("bye") == ["bye"]
        assert (await chat.result()).outcome == "completed"
        assert await chat.send("again") == []
        assert await chat.send("and again") == ["echo: and again"]
        assert await chat.data() == {"last": "and again"}


async def test_a_refused_send_takes_the_failure_branch_with_the_reason() -> None:
    async with MemoryFlowTest(Notify) as chat:
        chat.refuse(PermanentSendError("the customer cannot receive messages", "blocked"))
        assert await chat.start() == []
        result = await chat.result()
    assert result.outcome == "failed"
    assert result.reason == "send failed: the customer cannot receive messages"
    assert "send refused (blocked): the customer cannot receive messages" in chat.trace


async def test_loop_guard_stops_a_flow_that_keeps_sending_the_same_text() -> None:
    async with MemoryFlowTest(Loops) as chat:
        await chat.start()
        result = await chat.result()
    assert result.outcome == "failed"
    assert "loop guard" in result.reason
    assert chat.said == ["ping"] * Loops.loop_limit


async def test_choices_answered_by_number_text_or_button() -> None:
    for reply, payload, expected in (("2", "", "Person"), ("track my order", "", "Tracking"), ("", "HUMAN", "Person")):
        async with MemoryFlowTest(Menu) as chat:
            assert await chat.start() == ["Pick one\n\n1. Track my order\n2. Talk to a person"]
            assert [o.id for o in chat.messages[0].options] == ["1", "HUMAN"]
            assert await chat.send(reply, payload=payload) == [expected]


async def test_delay_and_wait_until_fire_at_their_time() -> None:
    async with MemoryFlowTest(Later, now=NOON) as chat:
        await chat.start({"call_at": (NOON + timedelta(days=3)).isoformat()})
        assert await chat.skip(timedelta(minutes=59)) == []
        assert await chat.skip(timedelta(minutes=2)) == ["one hour later"]
        assert await chat.skip(timedelta(days=2, hours=22)) == []
        assert await chat.skip(timedelta(hours=2)) == ["at the agreed time"]
        assert (await chat.result()).outcome == "completed"


async def test_every_flow_expires_so_no_conversation_stays_stuck() -> None:
    async with MemoryFlowTest(ShortLived, now=NOON) as chat:
        await chat.start()
        result = await chat.result()
        assert chat.now() == NOON + hours(2)
    assert result.outcome == "expired"
    assert result.reason == "the conversation expired"


async def test_business_event_or_reply_while_waiting() -> None:
    async with MemoryFlowTest(PaymentLink) as chat:
        await chat.start()
        assert await chat.send("how do I pay?") == ["Open the link to pay.", "Pay here: https://pay.example/1"]
        assert await chat.event("payment_succeeded", {"amount": 10}) == ["Paid, thanks!"]
        result = await chat.result()
    assert result.data["events"] == {"payment_succeeded": {"amount": 10}}


async def test_an_event_before_the_step_that_waits_for_it_is_kept_for_it() -> None:
    class Checkout(Flow):
        ask = Ask("Ready to pay?", branches={anything: "link"})
        link = Ask("Pay here.", events={"paid": "thanks"}, branches={anything: "link"})
        thanks = End("completed", "Paid, thanks!")

    async with MemoryFlowTest(Checkout) as chat:
        await chat.start()
        assert await chat.event("paid") == []  # `ask` waits for a reply: the event waits for `link`
        assert await chat.send("yes") == ["Paid, thanks!"]


async def test_ending_a_conversation_from_the_business_side() -> None:
    async with MemoryFlowTest(PaymentLink) as chat:
        await chat.start()
        await chat.end("customer called in")
        result = await chat.result()
    assert (result.outcome, result.reason) == ("cancelled", "customer called in")


async def test_http_steps_and_code_steps_call_the_business_api_through_the_port() -> None:
    calls: list[HttpRequest] = []

    async def api(request: HttpRequest) -> HttpResponse:
        calls.append(request)
        if request.url.endswith("/orders/A-7"):
            return HttpResponse(200, {"status": "shipped"})
        return HttpResponse(503)

    class Tracking(Flow):
        lookup = Http("GET", "https://api.shop.example/orders/{order}", save_as="order_info")
        tell = Say("Your order is {order_info.status}.")

        async def ping(self, convo: Convo) -> End:
            try:
                await convo.http.post("https://api.shop.example/ping")
            except HttpCallFailed as error:  # the step decides what a failed call means
                return self.down if error.status == 503 else self.done
            return self.done

        down = End("completed", "Tracking is down.")
        done = End("completed")

    async with MemoryFlowTest(Tracking, http=api) as chat:
        assert await chat.start({"order": "A-7"}) == ["Your order is shipped.", "Tracking is down."]
    assert [(c.method, c.url) for c in calls] == [
        ("GET", "https://api.shop.example/orders/A-7"),
        ("POST", "https://api.shop.example/ping"),
    ]


async def test_a_failed_http_step_takes_its_error_branch_with_the_status() -> None:
    class Lookup(Flow):
        lookup = Http("GET", "https://api.shop.example/orders/1", save_as="found", on_error="sorry")
        done = End("completed", "Found it.")
        sorry = End("failed", "Sorry, we could not look it up.")

    async with MemoryFlowTest(Lookup, http=lambda request: HttpResponse(404)) as chat:
        assert await chat.start() == ["Sorry, we could not look it up."]
        result = await chat.result()
    assert result.outcome == "failed"
    assert result.data["found"]["status"] == 404


async def test_a_code_step_that_sleeps_waits_on_the_virtual_clock() -> None:
    class Nudge(Flow):
        async def wait_a_day(self, convo: Convo) -> None:
            await convo.sleep(timedelta(days=1))
            await convo.say(f"A day later: {convo.now():%Y-%m-%d}")

        done = End("completed")

    async with MemoryFlowTest(Nudge, now=NOON) as chat:
        assert await chat.start() == []
        assert await chat.skip(timedelta(hours=23)) == []
        assert await chat.skip(timedelta(hours=1)) == ["A day later: 2026-03-05"]


async def test_a_code_steps_named_target_is_followed() -> None:
    class Route(Flow):
        async def pick(self, convo: Convo) -> Say:
            return self.vip if convo.data.get("tier") == "gold" else self.regular

        vip = Say("Welcome back, VIP.", then="done")
        regular = Say("Welcome.", then="done")
        done = End("completed")

    async with MemoryFlowTest(Route) as chat:
        assert await chat.start({"tier": "gold"}) == ["Welcome back, VIP."]
    async with MemoryFlowTest(Route) as chat:
        assert await chat.start({}) == ["Welcome."]
