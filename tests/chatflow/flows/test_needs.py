"""The keys a journey's data must hold, read from the flow before it starts."""

from chatflow import Ask, Convo, Delay, End, Flow, Http, If, Say, WaitUntil, anything, hours, minutes
from chatflow.flows.needs import missing_keys, needed_keys
from conversations.demo import Demo


class Reminder(Flow):
    ask = Ask("Hi {name}, confirm {appointment.time}?", branches={anything: "check"}, save_as="answer")
    check = If(lambda data: data["tier"] == "gold" and bool(data.get("coupon")), then="gold", otherwise="fetch")
    gold = Say("Thanks {name}, gold member: {answer}.", then="done")
    fetch = Http("GET", "{api}/slots/{slot_id}", save_as="slots")
    later = WaitUntil("due_at")
    pause = Delay(minutes(1))
    shown = Say("Slots: {slots.count}")
    done = End("completed", "Bye {name}.")
    never = Say("Unreachable {secret_thing}")

    defaults = {"api": "https://api.example.com"}


class WithOptional(Flow):
    optional = frozenset({"coupon"})
    ask = Ask("Your coupon: {coupon}", branches={anything: "done"}, timeout=hours(1), on_timeout="expired")
    done = End("completed")


async def code_flow_step(self: Flow, convo: Convo) -> None:
    convo.data["name"] = "set by code"


class WithCode(Flow):
    greet = Say("Hello {first}")
    compute = code_flow_step
    bye = Say("Bye {name}")


def test_reachable_templates_and_conditions_name_what_a_journey_must_bring() -> None:
    # save_as keys (answer, slots) and defaults (api) are the flow's own; `never` is unreachable.
    assert needed_keys(Reminder) == ["name", "appointment.time", "tier", "slot_id", "due_at"]
    assert missing_keys(Reminder, {"name": "Ana", "appointment": {}, "tier": "gold", "slot_id": 1}) == [
        "appointment.time",
        "due_at",
    ]
    full = {"name": "Ana", "appointment": {"time": "10:00"}, "tier": "x", "slot_id": 1, "due_at": "2030-01-01"}
    assert missing_keys(Reminder, full) == []


def test_optional_keys_and_code_steps_ask_nothing_of_the_journey() -> None:
    assert needed_keys(WithOptional) == []
    assert needed_keys(WithCode) == ["first"]  # what follows the code step may be set by it


def test_the_demo_needs_nothing() -> None:
    assert needed_keys(Demo) == []


def test_a_steps_template_parameters_are_needed_too() -> None:
    from chatflow import Template

    class Notice(Flow):
        name = "needs_template_notice"
        notice = Say(
            "Order failed.", template=Template("payment_failed", body=["{order_id}"], variables={"1": "{link}"})
        )
        done = End("completed")

    assert needed_keys(Notice) == ["order_id", "link"]


def test_a_field_inside_a_format_spec_is_needed_too() -> None:
    class Invoice(Flow):
        remind = Say("Pay {amount:currency:{currency}} by {due:date:long}.")

    assert needed_keys(Invoice) == ["amount", "currency", "due"]
