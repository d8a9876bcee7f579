"""`chatflow check`'s analysis: steps that may send free text outside WhatsApp's 24-hour window."""

from __future__ import annotations

from chatflow import Ask, Delay, End, Flow, Say, Template, Wait, anything, days, hours, minutes
from chatflow.domain.addresses import Address
from chatflow.domain.config import NumberBinding
from chatflow.flows.window_check import check_flow, window_findings
from conversations.demo import Demo
from conversations.payment_recovery import PaymentRecovery
from conversations.purchase_followup import PurchaseFollowup


class Reminder(Flow):
    """A journey: a notice with its template, a question without one, then a day's wait."""

    name = "window_reminder"

    notice = Say("Your appointment is tomorrow at {time}.", template=Template("appointment", body=["{time}"]))
    confirm = Ask("Reply YES to confirm.", branches={anything: "thanks"}, timeout=hours(30), on_timeout="nudge")
    thanks = Say("Thanks!")
    quick_wait = Delay(minutes(5))
    after_reply = Say("See you then.", then="done")
    nudge = Say("Still there?")
    long_wait = Wait(events={"cancelled": "done"}, timeout=days(2), on_timeout="done")
    done = End("completed")


def paths(flow: type[Flow], **kwargs: bool) -> dict[str, str]:
    return {finding.step: " ".join(finding.path) for finding in check_flow(flow, **kwargs)}


def test_a_journeys_free_text_before_any_reply_and_after_a_long_wait_is_listed_with_its_path() -> None:
    found = paths(Reminder)
    assert found == {
        "confirm": "notice -(next)-> confirm",
        "nudge": "notice -(next)-> confirm -(timeout)-> nudge",
    }


def test_after_a_reply_and_a_short_wait_free_text_is_allowed() -> None:
    assert "thanks" not in paths(Reminder) and "after_reply" not in paths(Reminder)


def test_a_flow_customers_start_is_flagged_only_after_a_wait_that_outlasts_the_window() -> None:
    assert paths(Reminder, business_started=False) == {"nudge": "notice -(next)-> confirm -(timeout)-> nudge"}


def test_the_message_names_the_flow_step_and_path() -> None:
    [first, _] = check_flow(Reminder)
    assert str(first).startswith("window_reminder.confirm (Ask) may send free text outside WhatsApp's 24-hour window")
    assert str(first).endswith("notice -(next)-> confirm")


def test_the_shipped_flows_have_a_template_wherever_the_window_may_be_closed() -> None:
    bindings = [NumberBinding(Address("tel", "+15005550006"), "console", "console", "demo")]
    assert window_findings([Demo, PaymentRecovery, PurchaseFollowup], bindings) == []
