from chatflow import hours
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


async def test_talk_to_a_person_hands_the_conversation_to_an_operator_and_back(skipping_env):
    async with FlowTest(skipping_env, Demo) as chat:
        menu = (await chat.send("hi"))[1]
        assert await chat.send("3") == ["Connecting you with a person..."]
        await chat.take_over("ana")
        await chat.operator_says("Hi, Ana here. How can I help?", operator="ana")
        assert await chat.hand_back("ana") == ["Hi, Ana here. How can I help?", "You're back with the demo bot.", menu]
        assert await chat.send("bye") == ["Bye! Text us any time."]
        assert (await chat.result()).outcome == "completed"


async def test_when_nobody_takes_over_within_an_hour_the_customer_is_told(skipping_env):
    async with FlowTest(skipping_env, Demo) as chat:
        await chat.send("hi")
        assert await chat.send("3") == ["Connecting you with a person..."]
        await chat.skip(hours(1))
        assert chat.said[-1] == "Sorry, nobody is free right now. A person will text you back shortly."
        assert (await chat.result()).outcome == "completed"
