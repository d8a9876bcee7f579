"""The flows page's figures against real Temporal visibility: an experiment's outcomes per branch."""

from __future__ import annotations

import asyncio
import re
import uuid
from html import unescape

from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, Split, yes
from chatflow.flows.registry import FlowRegistry
from chatflow.flows.split import choose_branch
from chatflow.journeys.service import Journeys
from chatflow.testing import FlowTest
from chatflow.web.dashboard import views
from chatflow.web.dashboard.flow_stats import FlowFigures, FlowStats


class Reminder(Flow):
    # Its own name on the shared server: the counts are of every run of the flow there.
    name = f"reminder_{uuid.uuid4().hex[:8]}"
    wording = Split(weights={"short": 50, "long": 50})
    short = Ask("Pay?", branches={yes: "paid"}, on_no_match="cancelled", attempts=1)
    long = Ask("Your order waits for you. Pay?", branches={yes: "paid"}, on_no_match="cancelled", attempts=1)
    paid = End()


async def figures_once_counted(stats: FlowStats, ended: int) -> FlowFigures:
    for _ in range(100):  # visibility follows a moment behind
        [figures] = await stats.figures("24h")
        counted = sum(n for branch in figures.branches.get("wording", {}).values() for n in branch.values())
        if counted >= ended:
            return figures
        await asyncio.sleep(0.1)
    return figures


async def test_the_flows_page_counts_each_branch_of_a_split_by_outcome(dev_env: WorkflowEnvironment) -> None:
    weights = Reminder.steps["wording"].weights  # type: ignore[attr-defined]
    customers = [f"+1415556{i:04d}" for i in range(40)]
    short = [c for c in customers if choose_branch(weights, Reminder.name, "wording", c) == "short"][:2]
    long = [c for c in customers if choose_branch(weights, Reminder.name, "wording", c) == "long"][:1]
    # Two short ones pay, the long one says no (cancelled).
    for customer, answer in [(short[0], "yes"), (short[1], "yes"), (long[0], "no")]:
        async with FlowTest(dev_env, Reminder, customer=customer) as chat:
            await chat.start()
            await chat.send(answer)
            await chat.result()
    journeys = Journeys(chat.config, dev_env.client, None, FlowRegistry([Reminder]))  # type: ignore[arg-type]
    figures = await figures_once_counted(FlowStats(journeys), 3)

    assert figures.branches == {
        "wording": {
            "short": {"completed": 2, "cancelled": 0, "expired": 0, "failed": 0, "terminated": 0},
            "long": {"completed": 0, "cancelled": 1, "expired": 0, "failed": 0, "terminated": 0},
        }
    }
    card = views.FlowCard(figures.name, figures.versions, {}, {}, {}, {}, diagram="", branches=figures.branches)
    html = views.flows_page([card], views.Chrome(), period="24h", periods=["24h"])
    table = re.search(rf'<table class="counts split" id="split-{Reminder.name}-wording">.*?</table>', html)
    assert table is not None
    assert "Split wording: ended in the last 24h, by branch" in table.group()
    assert re.search(r"<td>short</td><td class=\"count\"><a [^>]*>2</a>", table.group())
    links = [unescape(href) for href in re.findall(r'href="([^"]+)"', table.group())]
    assert any("data=split%3Awording%3Dlong" in href and "outcome=cancelled" in href for href in links), links
