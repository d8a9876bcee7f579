"""A person takes a conversation over: the bot goes quiet (no answers, no reminders), the
person's replies reach the customer through the bot's own send path, and handing back resumes
the flow where it was, with the time its timers had left."""

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Handover, Say, hours
from chatflow.domain.errors import Conflict, NotFound
from chatflow.temporal.search_attributes import OPERATOR
from chatflow.testing import FlowTest
from tests.flows import Confirm
from tests.helpers import started_snapshot

PROMPT = "Confirm your appointment tomorrow? Reply YES or NO."
REMINDER = "Reminder: please confirm your appointment with YES or NO."


class Helpdesk(Flow):
    """Straight to a person; an apology when nobody comes within the hour."""

    wait_for_agent = Handover("Connecting you with a person...", timeout=hours(1), then="bye", on_timeout="sorry")
    bye = End("completed", "Glad we could help!")
    sorry = Say("Sorry, nobody is free right now. We will call you back.")
    gave_up = End("expired")


async def test_the_bot_stays_quiet_while_a_person_has_the_conversation(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        assert await chat.send("hi") == [PROMPT]
        await chat.take_over("ana")
        assert (await started_snapshot(chat)).operator == "ana"
        assert (await chat.handle.describe()).typed_search_attributes.get(OPERATOR) == "ana"
        assert await chat.send("yes, but can I come at 5?") == []  # the bot does not answer for ana
        await chat.operator_says("5 is fine, see you then", operator="ana")
        assert await chat.skip(hours(30)) == ["5 is fine, see you then"]  # no reminder meanwhile
        assert (await started_snapshot(chat)).step == "ask"
        assert await chat.hand_back("ana") == []
        assert (await chat.handle.describe()).typed_search_attributes.get(OPERATOR) is None
        assert await chat.send("yes") == ["Great, see you tomorrow!"]
        transcript = (await started_snapshot(chat)).transcript
        assert [(t.direction, t.by, t.text) for t in transcript if t.by] == [("out", "ana", "5 is fine, see you then")]


async def test_timers_go_on_with_the_time_they_had_left(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.send("hi")
        await chat.skip(hours(1))
        await chat.take_over()
        await chat.skip(hours(48))
        await chat.hand_back()
        assert await chat.skip(hours(22.5)) == []  # 23 h were left of the 24 h timeout
        assert await chat.skip(hours(1)) == [REMINDER]


async def test_only_the_person_who_has_it_replies_or_hands_back(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.send("hi")
        with pytest.raises(Conflict, match="take the conversation over first"):
            await chat.operator_says("hello", operator="ana")
        await chat.take_over("ana")
        with pytest.raises(Conflict, match="ana has this conversation already"):
            await chat.take_over("bo")
        with pytest.raises(Conflict, match="ana has it"):
            await chat.operator_says("hello", operator="bo")
        with pytest.raises(Conflict, match="ana has this conversation"):
            await chat.hand_back("bo")
        await chat.take_over("ana")  # again: still hers, nothing changes
        assert await chat.hand_back("ana") == []


async def test_a_handover_step_waits_for_a_person_and_goes_on_when_handed_back(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, Helpdesk) as chat:
        assert await chat.send("my order never came") == ["Connecting you with a person..."]
        assert await chat.send("hello?") == []  # kept in the transcript for the person
        await chat.take_over("ana")
        assert await chat.skip(hours(2)) == []  # being helped: the hour does not run out
        await chat.operator_says("Sorry! A new one is on its way.", operator="ana")
        assert await chat.hand_back("ana") == ["Sorry! A new one is on its way.", "Glad we could help!"]
        assert (await chat.result()).outcome == "completed"


async def test_a_handover_nobody_takes_takes_its_timeout_branch(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Helpdesk) as chat:
        await chat.send("help")
        assert await chat.skip(hours(1.1)) == ["Sorry, nobody is free right now. We will call you back."]
        assert (await chat.result()).outcome == "expired"


async def test_an_ended_conversation_cannot_be_taken_over(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.send("hi")
        await chat.send("no")
        await chat.result()
        with pytest.raises(NotFound, match="not running"):
            await chat.take_over("ana")
