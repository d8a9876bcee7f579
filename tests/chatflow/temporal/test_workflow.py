"""ConversationWorkflow on a real Temporal server: waits, order, dedupe, failures, queries."""

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from chatflow import hours
from chatflow.domain.errors import RetryableSendError
from chatflow.domain.messages import DeliveryUpdate, OutboundMessage, SendResult
from chatflow.temporal.workflow import ConversationWorkflow
from chatflow.testing import FlowTest
from providers.console import ConsoleChannel
from tests.flows import Confirm, Echo, Later, Loops, Menu, Notify, PaymentLink, ShortLived


async def test_yes_in_another_language_takes_the_yes_branch(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        assert await chat.send("hi") == ["Confirm your appointment tomorrow? Reply YES or NO."]
        assert await chat.send(" Sí! ") == ["Great, see you tomorrow!"]
        assert (await chat.result()).outcome == "completed"


async def test_24_hour_timeout_reminds_then_expires(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.start()
        assert await chat.skip(hours(23.9)) == []
        assert await chat.skip(hours(0.2)) == ["Reminder: please confirm your appointment with YES or NO."]
        assert await chat.step() == "wait_again"
        await chat.skip(hours(24.1))
        assert (await chat.result()).outcome == "expired"


async def test_reprompt_limit_takes_its_own_branch(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.start()
        assert await chat.send("maybe") == ["Please reply YES or NO."]
        assert await chat.send("what?") == ["Please reply YES or NO."]
        assert await chat.send("dunno") == ["Sorry, I couldn't understand. We'll call you instead."]
        assert (await chat.result()).outcome == "failed"


async def test_timeout_counts_from_when_the_prompt_was_actually_sent(skipping_env: WorkflowEnvironment) -> None:
    class SlowChannel(ConsoleChannel):
        """The provider is overloaded for half an hour before it accepts the prompt."""

        calls = 0

        async def send(self, message: OutboundMessage) -> SendResult:
            SlowChannel.calls += 1
            if SlowChannel.calls == 1:
                raise RetryableSendError("busy", "429", retry_after=30 * 60)
            return await super().send(message)

    async with FlowTest(skipping_env, Confirm, provider=SlowChannel()) as chat:
        await chat.start()
        assert chat.said == []
        assert await chat.skip(hours(0.6)) == ["Confirm your appointment tomorrow? Reply YES or NO."]
        # The reminder is due 24 h after the prompt went out (t = 24.5 h), not 24 h after the
        # flow reached the step (t = 24 h).
        assert await chat.skip(hours(23.8)) == []
        assert await chat.skip(hours(0.2)) == ["Reminder: please confirm your appointment with YES or NO."]


async def test_the_same_inbound_id_twice_is_handled_once(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Echo) as chat:
        await chat.start()
        await chat.deliver("hello", id="SM-dup")
        await chat.deliver("hello", id="SM-dup")
        assert await chat.replies() == ["echo: hello"]
        snapshot = await chat.settle()
        assert [t.text for t in snapshot.transcript if t.direction == "in"] == ["hello"]


async def test_three_quick_messages_are_handled_in_order(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Echo) as chat:
        await chat.start()
        for text in ("one", "two", "three"):
            await chat.deliver(text)
        assert await chat.replies() == ["echo: one", "echo: two", "echo: three"]


async def test_a_reply_arriving_as_the_flow_ends_is_not_lost(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Echo) as chat:
        # "after" is queued behind "bye": the Echo run ends on "bye" with it unread, and the
        # number's flow (Echo again) takes it over in the same conversation, as its trigger.
        await chat.start()
        await chat.deliver("bye")
        await chat.deliver("after")
        assert await chat.replies() == ["bye"]
        snapshot = await chat.settle()
        assert snapshot.step == "listen" and snapshot.outcome == ""
        assert [t.text for t in snapshot.transcript if t.direction == "in"] == ["bye", "after"]
        assert await chat.send("still here") == ["echo: still here"]


async def test_a_message_to_an_ended_conversation_starts_a_new_one(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Echo) as chat:
        await chat.start()
        assert await chat.send("bye") == ["bye"]
        assert (await chat.result()).outcome == "completed"
        assert await chat.send("again") == []  # the trigger of a new run
        assert await chat.send("and again") == ["echo: and again"]


async def test_permanent_send_error_takes_the_failure_branch(skipping_env: WorkflowEnvironment) -> None:
    provider = ConsoleChannel()
    async with FlowTest(skipping_env, Notify, provider=provider) as chat:
        provider.blocked.add(chat.ref.customer)
        await chat.start()
        result = await chat.result()
        snapshot = await chat.settle()
    assert result.outcome == "failed"
    assert "cannot receive messages" in result.reason
    assert [(t.text, t.status, t.error_code) for t in snapshot.transcript] == [
        ("Your parcel arrives today.", "failed", "blocked")
    ]


async def test_retryable_send_error_is_retried_and_sent_once(skipping_env: WorkflowEnvironment) -> None:
    class FlakyChannel(ConsoleChannel):
        failures = 2

        async def send(self, message: OutboundMessage) -> SendResult:
            if FlakyChannel.failures:
                FlakyChannel.failures -= 1
                raise RetryableSendError("503 from provider", "503")
            return await super().send(message)

    async with FlowTest(skipping_env, Notify, provider=FlakyChannel()) as chat:
        await chat.start()
        await chat.skip(timedelta(seconds=10))
        assert (await chat.result()).outcome == "completed"
        assert chat.said == ["Your parcel arrives today."]


async def test_loop_guard_stops_a_flow_that_keeps_sending_the_same_text(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Loops) as chat:
        await chat.start()
        result = await chat.result()
    assert result.outcome == "failed"
    assert "loop guard" in result.reason
    assert chat.said == ["ping"] * Loops.loop_limit


async def test_choices_answered_by_number_text_or_button(skipping_env: WorkflowEnvironment) -> None:
    for reply, payload, expected in (("2", "", "Person"), ("track my order", "", "Tracking"), ("", "HUMAN", "Person")):
        async with FlowTest(skipping_env, Menu) as chat:
            said = await chat.start()
            assert said == ["Pick one\n\n1. Track my order\n2. Talk to a person"]
            assert [o.id for o in chat.messages[0].options] == ["1", "HUMAN"]
            assert await chat.send(reply, payload=payload) == [expected]


async def test_delay_and_wait_until_survive_as_durable_timers(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Later) as chat:
        call_at = await skipping_env.get_current_time() + timedelta(days=3)
        await chat.start({"call_at": call_at.isoformat()})
        assert await chat.skip(timedelta(minutes=59)) == []
        assert await chat.skip(timedelta(minutes=2)) == ["one hour later"]
        assert await chat.skip(timedelta(days=2, hours=22)) == []
        assert await chat.skip(timedelta(hours=2)) == ["at the agreed time"]


async def test_every_flow_expires_so_no_conversation_stays_stuck(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, ShortLived) as chat:
        await chat.start()
        await chat.skip(hours(2.1))
        result = await chat.result()
    assert result.outcome == "expired"


async def test_business_event_or_reply_while_waiting(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PaymentLink) as chat:
        await chat.start()
        assert await chat.send("how do I pay?") == ["Open the link to pay.", "Pay here: https://pay.example/1"]
        assert await chat.event("payment_succeeded", {"amount": 10}) == ["Paid, thanks!"]


async def test_ending_a_conversation_from_the_business_side(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PaymentLink) as chat:
        await chat.start()
        await chat.end("customer called in")
        result = await chat.result()
    assert result.outcome == "cancelled"


async def test_delivery_statuses_only_move_forward(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PaymentLink) as chat:
        await chat.start()
        sent = (await chat.settle()).transcript[0]
        handle = chat.handle
        for status in ("read", "delivered", "sent"):
            await handle.signal(ConversationWorkflow.delivery, DeliveryUpdate(sent.message_id, status))
        snapshot = await chat.settle()
    assert snapshot.transcript[0].status == "read"


async def test_snapshot_exposes_state_data_and_transcript(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Echo) as chat:
        await chat.start()
        await chat.send("hello")
        snapshot = await chat.settle()
    assert snapshot.flow == "echo" and snapshot.step == "listen"
    assert snapshot.data == {"last": "hello"}
    assert [(t.direction, t.text) for t in snapshot.transcript] == [("in", "hello"), ("out", "echo: hello")]
    assert all(t.at for t in snapshot.transcript)
    assert snapshot.transcript[1].status == "delivered"
