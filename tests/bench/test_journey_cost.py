"""The journey cost probe runs payment recovery to its end on both paths and counts it."""

from __future__ import annotations

from bench.journey_cost import run

# chatflow's payment recovery in actions, each marker one / a task's markers one (docs/benchmarks.md).
CEILING, CEILING_GROUPED = 9, 9


async def test_both_paths_run_the_paid_journey_and_are_counted() -> None:
    result = await run()
    for counted in result.values():
        kinds = counted["actions_by_kind"]
        # started, waited (a timer), told of the payment (a signal), and closed
        assert kinds["workflow started"] == 1 and kinds["signal"] == 1 and kinds["timer started"] >= 1
        assert counted["events_by_type"]["WORKFLOW_EXECUTION_COMPLETED"] == 1
    ours = result["ours"]
    # The shop's stand-in answered the first call: no retries counted as the journey's cost.
    assert ours["actions_by_kind"]["activity started or retried"] == 1
    assert ours["actions"] <= CEILING and ours["actions_grouped"] <= CEILING_GROUPED, ours["actions_by_kind"]
