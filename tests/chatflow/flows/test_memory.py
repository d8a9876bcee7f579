"""`MemoryFlowTest` and its port: a virtual clock, recorded sends, the test's answers; and what
it says when the flow or the test goes wrong."""

import inspect
import sys
import types
from datetime import UTC, datetime, timedelta

import pytest

from chatflow import Ask, Convo, End, Flow, Say, anything
from chatflow.domain.messages import MediaRequest, StoredMedia
from chatflow.testing import MemoryFlowTest
from tests.test_docs import snippet

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


class Wait(Flow):
    ask = Ask("Anything?", branches={anything: "done"}, timeout=timedelta(hours=1), on_timeout="late")
    done = End("completed", "Thanks.")
    late = End("expired", "Too late.")


async def test_the_clock_moves_only_when_the_test_skips_and_timers_fire_at_their_time() -> None:
    class Stamp(Flow):
        async def stamp(self, convo: Convo) -> None:
            await convo.say(f"now {convo.now():%H:%M}")

        ask = Ask("Anything?", branches={anything: "stamp"}, timeout=timedelta(hours=1), on_timeout="stamp")

    async with MemoryFlowTest(Stamp, now=NOON) as chat:
        assert await chat.start() == ["now 12:00", "Anything?"]
        # One skip past two deadlines: each fires at its own time, not at the skip's end.
        assert await chat.skip(timedelta(hours=2, minutes=30)) == ["now 13:00", "Anything?", "now 14:00", "Anything?"]
        assert chat.now() == NOON + timedelta(hours=2, minutes=30)


async def test_each_test_has_a_customer_of_its_own_unless_it_names_one() -> None:
    async with MemoryFlowTest(Wait) as one, MemoryFlowTest(Wait) as other:
        await one.start()
        await other.start()
        assert one.ref.customer != other.ref.customer
        assert [m.customer for m in one.messages] == [one.ref.customer]
    async with MemoryFlowTest(Wait, customer="+34911234567", channel="whatsapp") as chat:
        await chat.start()
        assert (chat.messages[0].customer, chat.messages[0].channel) == ("+34911234567", "whatsapp")


async def test_a_reaction_goes_on_the_customers_last_message() -> None:
    class Thumbs(Flow):
        async def react(self, convo: Convo) -> None:
            await convo.react("👍")

        ask = Ask("Tell us", branches={anything: "react"})

    async with MemoryFlowTest(Thumbs) as chat:
        await chat.start()
        assert chat.trace[-2:] == ["no message of the customer's to react 👍 to: nothing sent", "step ask (Ask)"]
        await chat.send("great service", id="SM-1")
        reacted = [m for m in chat.messages if m.reaction is not None]
        assert [(m.reaction.message_id, m.reaction.emoji) for m in reacted if m.reaction] == [("SM-1", "👍")]


async def test_media_come_from_the_tests_media_function_else_are_unavailable() -> None:
    class Photo(Flow):
        async def keep(self, convo: Convo) -> None:
            stored = await convo.fetch_media(convo.data["photo"])
            convo.data["size"] = stored["size"]

        done = End("completed", "Got {size} bytes.")
        on_failure = "sorry"
        sorry = End("failed", "No photo.")

    def fetch(request: MediaRequest) -> StoredMedia:
        return StoredMedia(path=f"/media/{request.media_id}", content_type="image/jpeg", sha256="0" * 64, size=42)

    async with MemoryFlowTest(Photo, media=fetch) as chat:
        assert await chat.start({"photo": "MID-1"}) == ["Got 42 bytes."]
    async with MemoryFlowTest(Photo) as chat:
        assert await chat.start({"photo": "MID-1"}) == ["No photo."]
        assert "no `media` function given to fetch MID-1" in (await chat.result()).reason


async def test_a_flow_waiting_for_nothing_but_a_reply_cannot_be_run_to_its_end() -> None:
    class Forever(Flow):
        expires_after = timedelta(days=1)
        say = Say("Hello")
        ask = Ask(None, branches={anything: "done"})
        done = End("completed")

    async with MemoryFlowTest(Forever, now=NOON) as chat:
        await chat.start()
        result = await chat.result()  # every flow expires: the clock goes to its expiry
        assert (result.outcome, chat.now()) == ("expired", NOON + timedelta(days=1))
    async with MemoryFlowTest(Forever) as chat:
        with pytest.raises(RuntimeError, match="has not started"):
            await chat.result()


async def test_the_documented_memory_test_of_the_readmes_first_flow_passes() -> None:
    reminders = types.ModuleType("reminders")
    sys.modules["reminders"] = reminders
    try:
        exec(snippet("first-flow"), reminders.__dict__)
        tests = types.ModuleType("test_reminders_in_memory")
        exec(snippet("memory-test"), tests.__dict__)
        found = [f for name, f in vars(tests).items() if name.startswith("test_") and inspect.iscoroutinefunction(f)]
        assert found
        for test in found:
            await test()
    finally:
        del sys.modules["reminders"]
