"""Every process killed in turn under load, provider storms and redelivery: nothing acknowledged
is lost, processed twice or reordered, and no webhook is refused.

Duplicate sends are counted, not forbidden: a worker killed during the provider's HTTP call, or a
call that outlasts its attempt on a loaded machine, cannot know whether the message went out, and
neither Twilio nor Meta takes an idempotency key, so the retry sends it again (README, "Sent
once"). What the design promises is that each is counted
(`chatflow_sends_total{status="possible_duplicate"}`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.faults.conftest import TALLIES
from tests.faults.scenarios import FAILOVERS, LOAD, SCENARIOS, Scenario, run
from tests.faults.stack import FaultStack, fault_stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    async with fault_stack(Path(tmp_path_factory.mktemp("faults"))) as stack:
        yield stack


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_nothing_lost_twice_or_reordered(stack: FaultStack, scenario: Scenario) -> None:
    tally = await run(stack, scenario)
    TALLIES.append(tally)
    assert (tally.lost, tally.twice, tally.refused) == (0, 0, 0), (tally, stack.folder)
    assert tally.acknowledged == LOAD.customers * LOAD.messages, tally
    # Every send made twice was one the worker could not rule out, and counted.
    assert tally.duplicate_sends <= tally.possible_duplicates, tally
    assert tally.reordered == 0, (tally, stack.folder)


# On a Valkey Cluster of 3 masters and a replica of each, webhooks acknowledged once a replica has
# them (CHATFLOW_REDIS_REPLICA_ACKS=1): a master killed (its slots, and with full coverage required
# the whole cluster, away until it is back; its replica kept from taking over), the web tier
# killed, redelivery; and masters killed for good, their replicas promoted, one of them behind.
ON_CLUSTER = [
    replace(s, name=f"{s.name.replace('Valkey', 'a Valkey master')} on a cluster")
    for s in SCENARIOS
    if s.name in {"Valkey SIGKILL", "web SIGKILL (each in turn)", "redelivery (3 copies, both webs)"}
] + FAILOVERS
REPLICA_ACKS = {"CHATFLOW_REDIS_REPLICA_ACKS": "1"}


@pytest.fixture(scope="module")
async def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    folder = Path(tmp_path_factory.mktemp("faults-cluster"))
    async with fault_stack(folder, cluster=True, replicas=True, env=REPLICA_ACKS) as stack:
        yield stack


@pytest.mark.parametrize("scenario", ON_CLUSTER, ids=[s.name for s in ON_CLUSTER])
async def test_nothing_lost_twice_or_reordered_on_a_valkey_cluster(
    cluster_stack: FaultStack, scenario: Scenario
) -> None:
    await test_nothing_lost_twice_or_reordered(cluster_stack, scenario)
