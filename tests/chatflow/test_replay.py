"""The replay check catches flow changes that would break running conversations."""

from pathlib import Path

from chatflow import Ask, Choice, Delay, End, Flow, Say, anything, hours, keyword, minutes
from chatflow.replay import replay
from conversations.demo import Demo
from conversations.payment_recovery import PaymentRecovery

HISTORIES = Path(__file__).parents[1] / "histories"


def demo_like(greeting: str, *, pause_after_greeting: bool) -> type[Flow]:
    """The demo flow as a developer might edit it (same name and version)."""

    class EditedDemo(Flow):
        name = "demo"
        greet = Say(greeting)
        if pause_after_greeting:
            pause = Delay(minutes(1))
        menu = Ask(
            "What can I do for you?",
            choices=[
                Choice("Opening hours", "opening_hours"),
                Choice("Track my order", "ask_order"),
                Choice("Talk to a person", "handoff"),
            ],
            branches={keyword("bye", "quit", whole=True): "goodbye"},
            reprompt="Sorry, I didn't get that. Reply with 1, 2 or 3.",
            on_no_match="goodbye",
            timeout=hours(24),
            on_timeout="goodbye",
        )
        opening_hours = Say("We're open 9:00-18:00, Monday to Saturday.", then="menu")
        ask_order = Ask(
            "What's your order number?",
            branches={anything: "order_status"},
            save_as="order",
            timeout=hours(24),
            on_timeout="goodbye",
        )
        order_status = Say("Order {order} is on its way and arrives tomorrow.", then="menu")
        handoff = End("completed", "A person will text you back shortly. Bye for now!")
        goodbye = End("completed", "Bye! Text us any time.")

    return EditedDemo


async def test_recorded_conversations_replay_on_the_current_flows():
    histories = list(HISTORIES.glob("*.json"))
    assert {p.stem for p in histories} >= {"demo-v1", "payment_recovery-v1"}
    assert await replay(histories, [Demo, PaymentRecovery]) == []


async def test_a_reworded_message_is_a_safe_change():
    edited = demo_like("Hello! This is the chatflow demo bot.", pause_after_greeting=False)
    assert await replay([HISTORIES / "demo-v1.json"], [edited]) == []


async def test_a_step_inserted_before_running_conversations_is_caught():
    edited = demo_like("Hi! I'm the chatflow demo bot.", pause_after_greeting=True)
    failures = await replay([HISTORIES / "demo-v1.json"], [edited])
    assert [f.history for f in failures] == ["demo-v1.json"]
    assert "nondetermin" in failures[0].error.lower()
