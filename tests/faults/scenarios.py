"""The faults, each injected while the load runs, and the mode that sizes them.

`CHATFLOW_FAULTS=full` runs more customers and messages and kills each process several times;
the default is the short form the test run can afford.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.load import Driver, Load, Tally
from tests.faults.stack import FaultStack

FULL = os.environ.get("CHATFLOW_FAULTS", "") == "full"
LOAD = Load(customers=40, messages=30, gap=0.2) if FULL else Load(customers=12, messages=8, gap=0.5)
KILLS = 3 if FULL else 1
DOWN = 4.0 if FULL else 2.0  # seconds a killed process stays dead, and a storm lasts
SETTLE = 300.0 if FULL else 120.0

Inject = Callable[[FaultStack, int], Awaitable[int]]  # the i-th fault; the sends counted by what it killed


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Inject | None
    kills: int = KILLS
    copies: int = 1


async def kill_worker(stack: FaultStack, _: int) -> int:
    counted = await stack.possible_duplicates()  # this worker's own count dies with it
    stack.kill_worker()
    await asyncio.sleep(DOWN)
    await stack.start_worker()
    return counted


async def stop_worker(stack: FaultStack, _: int) -> int:
    """A deploy: SIGTERM, the worker lets its sends in flight finish, a new one starts."""
    counted = await stack.possible_duplicates()
    await stack.stop_worker()
    await asyncio.sleep(DOWN)
    await stack.start_worker()
    return counted


async def stop_web(stack: FaultStack, i: int) -> int:
    """A deploy of the web tier, one process at a time: its leases are handed over as it stops."""
    await stack.stop_web(i % 2)
    await asyncio.sleep(DOWN)
    await stack.start_web(i % 2)
    return 0


async def kill_temporal(stack: FaultStack, _: int) -> int:
    stack.kill_temporal()
    await asyncio.sleep(DOWN)
    await stack.start_temporal()
    return 0


async def kill_valkey(stack: FaultStack, _: int) -> int:
    await stack.kill_valkey()
    await asyncio.sleep(DOWN)
    await stack.start_valkey()
    return 0


async def kill_web(stack: FaultStack, i: int) -> int:
    stack.kill_web(i % 2)
    await asyncio.sleep(DOWN)
    await stack.start_web(i % 2)
    return 0


def fail_over(behind: float = 0.0) -> Inject:
    """A cluster's master SIGKILLed for good, its replica promoted (`FaultStack.fail_over`)."""

    async def inject(stack: FaultStack, _: int) -> int:
        await stack.fail_over(behind)
        return 0

    return inject


def storm(status: int) -> Inject:
    async def inject(stack: FaultStack, _: int) -> int:
        stack.fake.storm = status
        try:
            await asyncio.sleep(DOWN)
        finally:
            stack.fake.storm = None
        return 0

    return inject


SCENARIOS = [
    Scenario("worker SIGKILL", kill_worker),
    Scenario("worker SIGTERM (a deploy)", stop_worker),
    Scenario("Temporal SIGKILL", kill_temporal),
    Scenario("Valkey SIGKILL", kill_valkey),
    Scenario("web SIGKILL (each in turn)", kill_web, kills=max(2, KILLS)),
    Scenario("web SIGTERM (each in turn)", stop_web, kills=max(2, KILLS)),
    Scenario("provider 429 storm", storm(429)),
    Scenario("provider 500 storm", storm(500)),
    Scenario("redelivery (3 copies, both webs)", None, kills=0, copies=3),
]

BEHIND = 1.0  # seconds of a master's writes its replica has not received when the master dies
# On a Valkey Cluster with replicas.
FAILOVERS = [
    Scenario("a Valkey master SIGKILL, replica promoted", fail_over()),
    Scenario(f"a Valkey master SIGKILL, replica promoted {BEHIND:.0f} s behind", fail_over(BEHIND)),
]


async def run(stack: FaultStack, scenario: Scenario) -> Tally:
    driver = Driver(stack, LOAD, copies=scenario.copies)
    counted_before = await stack.possible_duplicates()
    load = asyncio.create_task(driver.run())
    counted_by_killed = 0
    try:
        for i in range(scenario.kills if scenario.inject else 0):
            await driver.acknowledged((i + 1) / (scenario.kills + 1))
            assert scenario.inject is not None
            counted_by_killed += await scenario.inject(stack, i)
    finally:
        await load
    await driver.settled(SETTLE)
    counted = await stack.possible_duplicates() + counted_by_killed - counted_before
    return driver.tally(scenario.name, scenario.kills, counted)


def table(tallies: list[Tally]) -> str:
    head = (
        "scenario",
        "kills",
        "webhooks",
        "acked",
        "lost",
        "twice",
        "reordered",
        "refused",
        "dup sends",
        "per crash",
        "counted",
        "rerouted",
    )
    rows = [head] + [
        (
            t.scenario,
            str(t.kills),
            str(t.webhooks),
            str(t.acknowledged),
            str(t.lost),
            str(t.twice),
            str(t.reordered),
            str(t.refused),
            str(t.duplicate_sends),
            f"{t.per_crash:.1f}",
            str(t.possible_duplicates),
            str(t.rerouted),
        )
        for t in tallies
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)
