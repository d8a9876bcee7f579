import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.errors import UnknownFlow
from chatflow.flows.registry import FlowRegistry
from chatflow.testing import FlowTest
from tests.flows import SurveyV1, SurveyV2


def test_latest_version_by_default_and_a_clear_error_for_missing_ones() -> None:
    flows = FlowRegistry([SurveyV1, SurveyV2])
    assert flows.get("survey") is SurveyV2
    assert flows.get("survey", 1) is SurveyV1
    with pytest.raises(UnknownFlow, match="version 3 is not deployed"):
        flows.get("survey", 3)
    with pytest.raises(UnknownFlow, match="unknown flow 'nps'"):
        flows.get("nps")


async def test_running_conversations_stay_on_their_version(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, SurveyV1) as old:
        assert await old.start() == ["Rate us 1-5"]
        # Version 2 is deployed while the first conversation waits for its answer.
        async with FlowTest(skipping_env, SurveyV2, also=[SurveyV1]) as new:
            assert await new.start() == ["May we ask one question? YES/NO"]
            assert await old.send("4") == ["Thanks!"]  # still version 1's flow
            assert (await old.settle()).version == 1
            assert (await new.settle()).version == 2
