"""A flow's `restart_keyword`: the customer's way out of a conversation they are stuck in."""

import pytest

from chatflow import Ask, End, Flow, FlowDefinitionError, anything, yes
from chatflow.testing import MemoryFlowTest


class Booking(Flow):
    restart_keyword = "restart"
    day = Ask("Which day?", branches={anything: "confirm"}, save_as="day")
    confirm = Ask("Book {day}? Reply YES.", branches={yes: "booked"}, reprompt="Reply YES to book {day}.")
    booked = End("completed", "Booked for {day}.")


async def test_the_restart_keyword_starts_the_conversation_again_from_its_first_step() -> None:
    async with MemoryFlowTest(Booking) as chat:
        assert await chat.send("hi") == ["Which day?"]
        assert await chat.send("Monday") == ["Book Monday? Reply YES."]
        assert await chat.send("Restart!") == ["Which day?"]
        assert await chat.step() == "day"
        assert await chat.send("Tuesday") == ["Book Tuesday? Reply YES."]
        assert await chat.send("yes") == ["Booked for Tuesday."]
    assert "restarted by the customer (Restart!): back to step day" in chat.trace


async def test_without_a_restart_keyword_the_word_is_an_ordinary_reply() -> None:
    class Plain(Flow):
        day = Ask("Which day?", branches={anything: "confirm"}, save_as="day")
        confirm = Ask("Book {day}? Reply YES.", branches={yes: "booked"}, reprompt="Reply YES to book {day}.")
        booked = End("completed", "Booked for {day}.")

    async with MemoryFlowTest(Plain) as chat:
        await chat.send("hi")
        assert await chat.send("restart") == ["Book restart? Reply YES."]


def test_a_restart_keyword_every_number_answers_itself_is_refused() -> None:
    with pytest.raises(FlowDefinitionError, match="restart_keyword='stop' is a word every number answers"):

        class Broken(Flow):
            restart_keyword = "stop"
            day = Ask("Which day?", branches={anything: "done"})
            done = End()


async def test_a_finished_conversation_of_the_numbers_flow_starts_again_on_any_message() -> None:
    async with MemoryFlowTest(Booking) as chat:
        await chat.send("hi")
        await chat.send("Monday")
        assert await chat.send("yes") == ["Booked for Monday."]
        assert await chat.send("restart") == ["Which day?"]
