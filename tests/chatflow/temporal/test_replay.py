"""The replay check catches flow changes that would break running conversations."""

from pathlib import Path

from chatflow import Delay, Flow, Say, minutes
from chatflow.temporal.replay import replay
from conversations.demo import Demo
from conversations.payment_recovery import PaymentRecovery, PaymentRecoveryV1

HISTORIES = Path(__file__).parents[2] / "histories"


def demo_like(greeting: str, *, pause_after_greeting: bool) -> type[Flow]:
    """The demo flow as a developer might edit it (same name and version)."""

    class EditedDemo(Demo):
        name = "demo"
        greet = Say(greeting, then="pause" if pause_after_greeting else "menu")
        pause = Delay(minutes(1), then="menu")

    return EditedDemo


async def test_recorded_conversations_replay_on_the_current_flows() -> None:
    histories = list(HISTORIES.glob("*.json"))
    # Before local sends; the code just before revisions (local sends, a marker per change, the
    # commit timer, a takeover); and the current revision.
    assert {p.stem for p in histories} >= {
        "demo-v1", "payment_recovery-v1", "payment_recovery-v2",
        "demo-v1-revision0", "payment_recovery-v2-revision0", "demo-v1-revision1", "payment_recovery-v2-revision1",
    }  # fmt: skip
    assert await replay(histories, [Demo, PaymentRecovery, PaymentRecoveryV1]) == []


async def test_a_reworded_message_is_a_safe_change() -> None:
    edited = demo_like("Hello! This is the chatflow demo bot.", pause_after_greeting=False)
    assert await replay([HISTORIES / "demo-v1.json"], [edited]) == []


async def test_a_step_inserted_before_running_conversations_is_caught() -> None:
    edited = demo_like("Hi! I'm the chatflow demo bot.", pause_after_greeting=True)
    failures = await replay([HISTORIES / "demo-v1.json"], [edited])
    assert [f.history for f in failures] == ["demo-v1.json"]
    assert "nondetermin" in failures[0].error.lower()
