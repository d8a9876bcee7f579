"""A conversation's life in the logs: started, each step, each reply matched or not, ended."""

import logging
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, Http, anything
from chatflow.testing import FlowTest
from conversations.demo import Demo
from tests.helpers import started_snapshot


async def test_a_conversation_logs_its_life_one_line_each(
    skipping_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="temporalio.workflow")
    async with FlowTest(skipping_env, Demo) as chat:
        await chat.send("hi")
        await chat.send("what?")
        await chat.send("bye")
        await chat.result()
    lines = [r.getMessage() for r in caplog.records if r.name == "temporalio.workflow"]
    mine = [line for line in lines if chat.ref.id in line]
    assert any("started: flow demo v1, by a message" in line for line in mine)
    assert any("step menu (Ask)" in line for line in mine)
    assert any("reply to menu matched nothing (attempt 1 of 3)" in line for line in mine)
    assert any("reply to menu matched reply:bye" in line for line in mine)
    assert any("ended: completed" in line for line in mine)
    assert len([line for line in mine if "started:" in line]) == 1  # once, not again on replay


async def test_the_decision_trace_keeps_the_same_lines_and_names_http_calls(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Demo) as chat:
        await chat.send("hi")
        await chat.send("what?")
        lines = (await started_snapshot(chat)).trace
    trace = [line.text for line in lines]
    assert trace[0] == "started: flow demo v1, by a message"
    assert "step menu (Ask)" in trace
    assert trace[-1] == "reply to menu matched nothing (attempt 1 of 3)"
    assert all(line.at for line in lines)


async def test_the_trace_says_how_an_http_call_went_without_its_query_string(skipping_env: WorkflowEnvironment) -> None:
    class Lookup(Flow):
        fetch = Http("GET", "http://127.0.0.1:9/orders?key=secret", retries=1, on_error="sorry")
        sorry = Ask("Sorry, our systems are down. Anything else?", branches={anything: "done"})
        done = End()

    async with FlowTest(skipping_env, Lookup, http_allow=["127.0.0.1:9"]) as chat:  # nothing listens there
        await chat.start()
        assert await chat.skip(timedelta(minutes=5)) == ["Sorry, our systems are down. Anything else?"]
        trace = [line.text for line in (await started_snapshot(chat)).trace]
    [call] = [line for line in trace if line.startswith("HTTP GET")]
    assert call.startswith("HTTP GET http://127.0.0.1:9/orders failed after ")
    assert "secret" not in " ".join(trace)
