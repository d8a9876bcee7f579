"""The flows page's figures: where each flow's customers wait now, and how its conversations
ended over a period, counted by Temporal visibility on the search attributes the workflow keeps
current (one count per figure, however many conversations there are)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatflow.domain.errors import Invalid
from chatflow.flows.flow import Flow
from chatflow.flows.split import DATA_PREFIX, Split
from chatflow.flows.steps import End
from chatflow.journeys.service import OUTCOMES, Journeys
from chatflow.temporal.constants import CONVERSATION_WORKFLOW
from chatflow.temporal.search_attributes import DATA, FLOW, STEP, VERSION
from chatflow.web.dashboard.listing import equals, outcome_clause

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
COUNTS_AT_ONCE = 8  # visibility calls in flight for one page


@dataclass
class FlowFigures:
    name: str
    versions: list[int]  # deployed on this app, newest first
    running: dict[int, int] = field(default_factory=dict)  # version -> running conversations
    waiting: dict[str, int] = field(default_factory=dict)  # step -> running conversations there
    outcomes: dict[str, int] = field(default_factory=dict)  # outcome -> ended within the period
    endings: dict[str, int] = field(default_factory=dict)  # End step -> ended there within the period
    # Split step -> branch -> outcome -> ended within the period, of the customers sent down it.
    branches: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


class FlowStats:
    def __init__(self, journeys: Journeys) -> None:
        self.journeys = journeys

    async def figures(self, period: str, now: datetime | None = None) -> list[FlowFigures]:
        if period not in PERIODS:
            raise Invalid(f"period must be one of {', '.join(PERIODS)}")
        since = (now or datetime.now(UTC)) - PERIODS[period]
        counts = asyncio.Semaphore(COUNTS_AT_ONCE)

        async def count(*clauses: str) -> int:
            query = " AND ".join([f"WorkflowType = '{CONVERSATION_WORKFLOW}'", *clauses])
            async with counts:
                return (await self.journeys.client.count_workflows(query)).count

        registry = self.journeys.flows
        every: list[FlowFigures] = []
        # Each figure: where it goes, under which key, and the count that gives it.
        pending: list[tuple[dict[Any, int], Any, Awaitable[int]]] = []

        for name in registry.names():
            figures = FlowFigures(name, registry.versions(name))
            every.append(figures)
            flow = equals(FLOW, name)
            running = "ExecutionStatus = 'Running'"
            ended = f"CloseTime > '{since.isoformat()}'"
            steps = {step for version in figures.versions for step in registry.get(name, version).steps}
            endings = {
                step.name
                for version in figures.versions
                for step in registry.get(name, version).steps.values()
                if isinstance(step, End)
            }
            for version in figures.versions:
                pending.append((figures.running, version, count(flow, running, equals(VERSION, str(version)))))
            for step_name in sorted(steps - endings):
                pending.append((figures.waiting, step_name, count(flow, running, equals(STEP, step_name))))
            for outcome in OUTCOMES:
                pending.append((figures.outcomes, outcome, count(flow, ended, outcome_clause(outcome))))
            for step_name in sorted(endings):
                pending.append((figures.endings, step_name, count(flow, ended, equals(STEP, step_name))))
            for split, branch in _branches(registry.get(name, version) for version in figures.versions):
                chosen = equals(DATA, f"{DATA_PREFIX}{split}={branch}")  # the workflow indexes the branch
                per_outcome = figures.branches.setdefault(split, {}).setdefault(branch, {})
                for outcome in OUTCOMES:
                    pending.append((per_outcome, outcome, count(flow, ended, outcome_clause(outcome), chosen)))
        values = await asyncio.gather(*(counting for _, _, counting in pending))
        for (target, key, _), value in zip(pending, values, strict=True):
            target[key] = value
        return every


def _branches(flows: Iterable[type[Flow]]) -> list[tuple[str, str]]:
    """(Split step, branch) of the deployed versions, in the order they declare them."""
    found: dict[tuple[str, str], None] = {}
    for flow in flows:
        for step in flow.steps.values():
            if isinstance(step, Split):
                found.update(dict.fromkeys((step.name, branch) for branch in step.weights))
    return list(found)
