"""8. Cost: history events, workflow tasks and billable Temporal Cloud actions, per customer message
and per typical conversation, read from the workflows' histories (`bench.history`).

- A typical conversation of the demo flow: "hi" (greeting and menu), then "bye" (one reply, and
  the conversation ends): counted over its whole history once it has closed. Not "3": the demo's
  "Talk to a person" is a Handover that waits for an operator, an hour when nobody takes it.
- A customer message: in a conversation waiting at the menu, "1" (opening hours and the menu
  again) many times over; what the history grew by, divided by the messages. It includes the
  continue-as-new that chatflow does every HISTORY_LIMIT events when the conversation is long
  enough to reach it (full runs; the count of runs says so).
- A conversation's first message ("hi", from nothing to waiting at the menu), for reference.

Then what 1,000 typical conversations cost at Temporal Cloud's action prices (PRICES).
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from bench.history import fetch_runs, minus, tally
from bench.sizes import Sizes
from bench.stack import PATHS, Stack

TIMEOUT = 60.0
# Dollars per million actions, and where each figure comes from.
PRICES = {
    "brief": (
        25.0,
        "$25 per million actions: the rate the tracker issue names for the Essentials plan in 2025 "
        "(Temporal's pre-2025 base rate, https://docs.temporal.io/cloud/pricing)",
    ),
    "payg_first_tier": (
        50.0,
        "$50 per million actions: Pay-As-You-Go's first 5M actions a month beyond the plan's "
        "included 1M (Essentials), https://docs.temporal.io/cloud/pricing, 2025 plans",
    ),
}
BUSY = {"WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED"}


async def settled(stack: Stack, workflow_id: str) -> dict[str, Any]:
    """The tally of a workflow once its history has stopped growing (no task in flight)."""
    previous = -1
    for _ in range(int(TIMEOUT / 0.1)):
        runs = await fetch_runs(stack.client, workflow_id)
        counted = tally(runs)
        last = EventType.Name(runs[-1][-1].event_type).removeprefix("EVENT_TYPE_") if runs[-1] else ""
        if counted["events"] == previous and last not in BUSY:
            return counted
        previous = counted["events"]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id}: history still growing after {TIMEOUT:.0f} s")


async def closed(stack: Stack, workflow_id: str) -> None:
    handle = stack.client.get_workflow_handle(workflow_id)
    for _ in range(int(TIMEOUT / 0.1)):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id} still running after {TIMEOUT:.0f} s")


# The customer answers once the conversation waits for them (as a person, seconds later, would):
# a reply that arrives while the workflow is still busy with the last one finds it not yet waiting,
# and the baseline's wait then needs no timer, which a real conversation would have had.


async def typical(stack: Stack, path: str) -> dict[str, Any]:
    customer = stack.new_customer()
    deliver = stack.deliver(path)
    workflow_id = stack.workflow_id(path, customer)
    await deliver(customer, "hi")
    await stack.fake.nth_send(customer, 2, TIMEOUT)
    await settled(stack, workflow_id)
    await deliver(customer, "bye")
    await stack.fake.nth_send(customer, 3, TIMEOUT)
    await closed(stack, workflow_id)
    return tally(await fetch_runs(stack.client, workflow_id))


async def per_message(stack: Stack, path: str, messages: int) -> dict[str, Any]:
    customer = stack.new_customer()
    deliver = stack.deliver(path)
    workflow_id = stack.workflow_id(path, customer)
    await deliver(customer, "hi")
    await stack.fake.nth_send(customer, 2, TIMEOUT)
    first = after = await settled(stack, workflow_id)
    for n in range(messages):
        await deliver(customer, "1")
        await stack.fake.nth_send(customer, 2 * n + 4, TIMEOUT)
        after = await settled(stack, workflow_id)
    return {
        "first_message": first,
        "per_message": minus(after, first, messages) | {"runs": after["runs"]},
        "messages": messages,
    }


async def run(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    print(
        f"\n== 8. cost: {sizes.cost_conversations} typical conversations and {sizes.cost_messages} messages per path ==",
        flush=True,
    )
    result: dict[str, Any] = {"prices": {name: {"per_million": p, "source": s} for name, (p, s) in PRICES.items()}}
    typical_counts: dict[str, list[dict[str, Any]]] = {}
    for path in PATHS:
        conversations = typical_counts[path] = [await typical(stack, path) for _ in range(sizes.cost_conversations)]
        measured = await per_message(stack, path, sizes.cost_messages)
        actions = [c["actions"] for c in conversations]
        one = conversations[0]
        result[path] = {
            "conversation": one,
            "conversation_actions_each": actions,
            "conversation_actions_median": statistics.median(actions),
            **measured,
            "per_1000_conversations": {
                name: round(statistics.median(actions) * 1000 * price / 1e6, 4) for name, (price, _) in PRICES.items()
            },
            "per_1000_conversations_grouped": {
                name: round(statistics.median(c["actions_grouped"] for c in conversations) * 1000 * price / 1e6, 4)
                for name, (price, _) in PRICES.items()
            },
        }
        m = measured["per_message"]
        print(
            f"  {path:>8} conversation: {one['events']} events, {one['workflow_tasks']} workflow tasks, "
            f"{one['actions']} actions ({one['actions_grouped']} grouped); per message: {m['events']} events, "
            f"{m['workflow_tasks']} tasks, {m['actions']} actions ({m['actions_grouped']} grouped)",
            flush=True,
        )
    base, ours = result["baseline"]["per_message"]["actions"], result["ours"]["per_message"]["actions"]
    result["per_message_actions_ratio"] = round(ours / base, 3) if base else None
    base_c, ours_c = result["baseline"]["conversation_actions_median"], result["ours"]["conversation_actions_median"]
    result["conversation_actions_ratio"] = round(ours_c / base_c, 3) if base_c else None
    # As Temporal Cloud bills them: a workflow task's markers one action (issue 22's measure).
    grouped = {path: statistics.median(c["actions_grouped"] for c in typical_counts[path]) for path in PATHS}
    result["conversation_actions_grouped_median"] = grouped
    result["conversation_actions_grouped_ratio"] = (
        round(grouped["ours"] / grouped["baseline"], 3) if grouped["baseline"] else None
    )
    first = {path: result[path]["first_message"]["actions_grouped"] for path in PATHS}
    result["first_message_actions_grouped_ratio"] = (
        round(first["ours"] / first["baseline"], 3) if first["baseline"] else None
    )
    return result
