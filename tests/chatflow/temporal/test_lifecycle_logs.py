"""A conversation's life in the logs: started, each step, each reply matched or not, ended."""

import logging

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow.testing import FlowTest
from conversations.demo import Demo


async def test_a_conversation_logs_its_life_one_line_each(skipping_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture):
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
