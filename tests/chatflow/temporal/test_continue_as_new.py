"""A long conversation crosses continue-as-new with its state, queue and dedupe intact."""

from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from chatflow.testing import FlowTest, dev_server
from tests.flows import Counter

REPLIES = 2000


@pytest.fixture(scope="module")
async def small_history_env() -> AsyncIterator[WorkflowEnvironment]:
    # Temporal suggests continue-as-new at 4,096 events; suggest it at 100 so it happens often.
    async with dev_server(["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=100"]) as env:
        yield env


async def test_2000_replies_cross_continue_as_new_with_state_intact(small_history_env: WorkflowEnvironment) -> None:
    env = small_history_env
    async with FlowTest(env, Counter) as chat:
        await chat.start()
        for i in range(1, REPLIES + 1):
            await chat.deliver(str(i), id=f"SM{i}")
        await chat.deliver("1000", id="SM1000")  # a provider retry, long after the first
        await chat.replies()
        snapshot = await chat.settle()
        runs = [execution async for execution in env.client.list_workflows(f"WorkflowId = '{chat.ref.id}'")]

    assert snapshot.data == {"count": REPLIES, "gaps": 0, "last": REPLIES}
    assert chat.said == [f"{n} received" for n in range(100, REPLIES + 1, 100)]
    assert snapshot.signals == REPLIES + 1
    assert len(runs) > 10, "the conversation should have continued as new many times"
    assert sum(r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW for r in runs) == len(runs) - 1
