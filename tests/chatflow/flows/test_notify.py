"""`Notify`: a flow sends to someone on another channel (the customer by email, a staff member)
and goes on where it was; quiet hours count on the recipient's clock."""

from datetime import UTC, datetime, time, timedelta

from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, Convo, End, Flow, Notify, Say, SendWindow, anything, yes
from chatflow.testing import FlowTest, MemoryFlowTest

STAFF = "ops@shop.example"


class Refund(Flow):
    ask = Ask("Do you want a refund for order {order}? Reply YES.", branches={yes: "tell_staff"})
    tell_staff = Notify(
        "Refund wanted for order {order} by {customer_name}.", to=STAFF, channel="email", subject="Refund: {order}"
    )
    tell_customer = Notify("We are refunding order {order}.", to="{email}", channel="email")
    done = End("completed", "Done: your refund is on its way.")


async def test_notifications_go_to_their_recipients_and_the_conversation_stays(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, Refund) as chat:
        await chat.start({"order": "A-1", "customer_name": "Ana", "email": "ana@example.com"})
        assert await chat.send("yes") == ["Done: your refund is on its way."]
        [staff] = chat.sent_to(STAFF)
        assert (staff.channel, staff.subject, staff.text) == (
            "email",
            "Refund: A-1",
            "Refund wanted for order A-1 by Ana.",
        )
        assert [(m.channel, m.text) for m in chat.sent_to("ana@example.com")] == [
            ("email", "We are refunding order A-1.")
        ]
        assert chat.said == ["Do you want a refund for order A-1? Reply YES.", "Done: your refund is on its way."]
        snapshot = await chat.settle()
    notified = [(t.to, t.channel, t.status) for t in snapshot.transcript if t.to]
    assert notified == [(STAFF, "email", "delivered"), ("ana@example.com", "email", "delivered")]
    assert f"notified {STAFF} by email" in [line.text for line in snapshot.trace]


async def test_without_the_recipients_address_the_flow_takes_its_error_branch(
    skipping_env: WorkflowEnvironment,
) -> None:
    class Confirm(Flow):
        email_it = Notify("Confirmed.", to="{email}", channel="email", on_error="by_sms_only")
        done = End("completed", "Confirmed, and emailed.")
        by_sms_only = End("completed", "Confirmed.")

    async with FlowTest(skipping_env, Confirm) as chat:
        assert await chat.start({}) == ["Confirmed."]


async def test_a_channel_with_no_address_of_ours_fails_with_the_reason(skipping_env: WorkflowEnvironment) -> None:
    class Fax(Flow):
        fax = Notify("Hello", to="+14155550100", channel="fax")
        done = End()

    async with FlowTest(skipping_env, Fax) as chat:
        await chat.start()
        result = await chat.result()
    assert result.outcome == "failed"
    assert "no address of ours is bound to channel 'fax'" in result.reason


async def test_quiet_hours_hold_a_notification_on_the_recipients_clock() -> None:
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    start = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)

    class Callback(Flow):
        quiet_hours = SendWindow(time(start.hour), time((start.hour + 2) % 24))
        ask = Ask("Reply with a time for a call back.", urgent=True, branches={anything: "answer"})
        answer = Say("We'll call you back.")
        book = Notify("Call {customer} back.", to=STAFF, channel="email", timezone="UTC")
        done = End("completed")

    async with MemoryFlowTest(Callback, now=now) as chat:
        await chat.start({"customer": "Ana"})
        # The customer just wrote: their answer goes now. The staff member's email waits for the window.
        assert await chat.send("at 10") == ["We'll call you back."]
        assert chat.sent_to(STAFF) == []
        await chat.skip(timedelta(minutes=55))
        assert chat.sent_to(STAFF) == []
        await chat.skip(timedelta(hours=1, minutes=10))
        assert [m.text for m in chat.sent_to(STAFF)] == ["Call Ana back."]
        assert (await chat.result()).outcome == "completed"


async def test_a_code_step_notifies_too() -> None:
    class Escalate(Flow):
        async def escalate(self, convo: Convo) -> None:
            await convo.notify(STAFF, f"{convo.customer} needs help", channel="email", subject="Escalation")

        done = End("completed", "A person will call you.")

    async with MemoryFlowTest(Escalate) as chat:
        assert await chat.start() == ["A person will call you."]
        [sent] = chat.sent_to(STAFF)
        assert (sent.subject, sent.text) == ("Escalation", f"{chat.ref.customer} needs help")
