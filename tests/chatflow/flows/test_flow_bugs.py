"""A bug in a flow ends that conversation with a reason and its failure branch; it never wedges it."""

from chatflow import Ask, End, Flow, Say, anything
from chatflow.testing import MemoryFlowTest


class MissingKey(Flow):
    """The README's first-flow mistake: a template naming data the conversation does not have."""

    ask = Ask("Hi {name}, confirm?", branches={anything: "done"})
    done = End("completed")


class BrokenCode(Flow):
    async def lookup(self, convo):  # type: ignore[no-untyped-def]
        return self.thanks if convo.data["tier"] == "gold" else self.thanks

    thanks = Say("Thanks!")


class SaysSorry(Flow):
    greet = Say("Hello {name}.", on_error="sorry")
    after = End("completed")
    sorry = End("failed", "Sorry, something went wrong on our side.")


async def test_a_missing_template_key_ends_the_conversation_failed_with_the_key() -> None:
    async with MemoryFlowTest(MissingKey) as chat:
        said = await chat.send("hello")
        result = await chat.result()
    assert said == []
    assert result.outcome == "failed"
    assert "'name'" in result.reason


async def test_an_exception_in_a_code_step_ends_the_conversation_failed() -> None:
    async with MemoryFlowTest(BrokenCode) as chat:
        await chat.start()
        result = await chat.result()
    assert result.outcome == "failed"
    assert "KeyError" in result.reason and "lookup" in result.reason


async def test_the_step_s_own_error_branch_runs_first() -> None:
    async with MemoryFlowTest(SaysSorry) as chat:
        said = await chat.start()
        result = await chat.result()
    assert said == ["Sorry, something went wrong on our side."]
    assert result.outcome == "failed" and "'name'" in result.reason
