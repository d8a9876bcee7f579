"""The journey cost probe runs payment recovery to its end on both paths and counts it."""

from __future__ import annotations

from bench.journey_cost import run


async def test_both_paths_run_the_paid_journey_and_are_counted() -> None:
    result = await run()
    for counted in result.values():
        kinds = counted["actions_by_kind"]
        # started, waited (a timer), told of the payment (a signal), and closed
        assert kinds["workflow started"] == 1 and kinds["signal"] == 1 and kinds["timer started"] >= 1
        assert counted["events_by_type"]["WORKFLOW_EXECUTION_COMPLETED"] == 1
