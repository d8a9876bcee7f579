from chatflow.testing import FlowTest
from conversations.demo import Demo


async def test_any_first_message_gets_greeting_and_menu(skipping_env):
    async with FlowTest(skipping_env, Demo) as chat:
        replies = await chat.send("hello")
        assert len(replies) == 2  # the first message starts the flow; it answers nothing
        assert replies[0] == "Hi! I'm the chatflow demo bot."
        assert replies[1].splitlines() == [
            "What can I do for you?",
            "",
            "1. Opening hours",
            "2. Track my order",
            "3. Talk to a person",
        ]
        assert await chat.send("1") == [
            "We're open 9:00-18:00, Monday to Saturday.",
            replies[1],
        ]
        assert await chat.send("track my order") == ["What's your order number?"]
        assert (await chat.send("A-1234"))[0] == "Order A-1234 is on its way and arrives tomorrow."
        assert await chat.send("bye") == ["Bye! Text us any time."]
        result = await chat.result()
        assert result.outcome == "completed"
        assert result.data["order"] == "A-1234"
