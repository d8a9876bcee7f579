"""What a conversation cost Temporal, read from its workflow's history: events, workflow tasks
and billable Temporal Cloud actions.

The counting rule (docs/benchmarks.md, "Cost"; after https://docs.temporal.io/cloud/actions):

- WorkflowExecutionStarted: 1 (a client start or a continue-as-new);
- WorkflowExecutionSignaled: 1; but a signal-with-start that started the run is one action in
  all ("one total action occurs for any Signal-With-Start"): its signal (event 2, before the first
  workflow task) is not counted again;
- TimerStarted: 1 (including the timer behind a wait with a timeout);
- ActivityTaskStarted: 1 per attempt (the attempt number: retries are actions), an activity
  scheduled and never started 1;
- MarkerRecorded: two rules, both reported. `actions` (the one the targets use) counts every
  marker, a local activity's or a patch's, as one action: an upper bound. `actions_grouped`
  counts the markers of one workflow task as one action, as the pricing page words it today
  ("All Local Activities associated with one Workflow Task count as a single Action");
- UpsertWorkflowSearchAttributes: 1, unless it sets only TemporalChangeVersion (exempt);
- SignalExternalWorkflowExecutionInitiated 1, StartChildWorkflowExecutionInitiated 2,
  WorkflowExecutionUpdateAccepted 1, WorkflowPropertiesModified/OptionsUpdated 1.

Not in a history, so not counted: queries, activity heartbeats, rejected updates, workflow task
heartbeats of local activities running past 80% of the task timeout.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

LOCAL_ACTIVITY_MARKER = "core_local_activity"
CHANGE_VERSION = "TemporalChangeVersion"
ONE_ACTION = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED": "workflow started",
    "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED": "signal",
    "EVENT_TYPE_TIMER_STARTED": "timer started",
    "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED": "signal sent",
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED": "update",
    "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED": "properties modified",
    "EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED": "options updated",
}


async def fetch_runs(client: Client, workflow_id: str) -> list[list[HistoryEvent]]:
    """Every run of a workflow, oldest first: the latest run, then each run it continued from."""
    runs: list[list[HistoryEvent]] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        runs.append(events)
        previous = events[0].workflow_execution_started_event_attributes.continued_execution_run_id if events else ""
        if not previous:
            return runs[::-1]
        run_id = previous


def _name(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type)


def tally(runs: list[list[HistoryEvent]]) -> dict[str, Any]:
    """Events by type, workflow tasks and billable actions (both marker rules) over `runs`."""
    by_type: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    marker_tasks: set[tuple[int, int]] = set()
    for index, events in enumerate(runs):
        scheduled: set[int] = set()
        started: set[int] = set()
        for event in events:
            name = _name(event)
            by_type[name.removeprefix("EVENT_TYPE_")] += 1
            if name in ONE_ACTION:
                actions[ONE_ACTION[name]] += 1
            if (
                name == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"
                and event.event_id == 2
                and not (events[0].workflow_execution_started_event_attributes.continued_execution_run_id)
            ):
                actions["signal"] -= 1  # the signal of the signal-with-start that started the run
            elif name == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED":
                scheduled.add(event.event_id)
            elif name == "EVENT_TYPE_ACTIVITY_TASK_STARTED":
                activity = event.activity_task_started_event_attributes
                started.add(activity.scheduled_event_id)
                actions["activity started or retried"] += max(1, activity.attempt)
            elif name == "EVENT_TYPE_MARKER_RECORDED":
                marker = event.marker_recorded_event_attributes
                kind = "local activity" if marker.marker_name == LOCAL_ACTIVITY_MARKER else "other marker (patch)"
                actions[kind] += 1
                marker_tasks.add((index, marker.workflow_task_completed_event_id))
            elif name == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
                fields = set(event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
                if fields - {CHANGE_VERSION}:
                    actions["search attributes upserted"] += 1
            elif name == "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED":
                actions["child workflow"] += 2
        actions["activity started or retried"] += len(scheduled - started)
    markers = actions["local activity"] + actions["other marker (patch)"]
    total = sum(actions.values())
    return {
        "runs": len(runs),
        "events": sum(by_type.values()),
        "workflow_tasks": by_type["WORKFLOW_TASK_STARTED"],
        "actions": total,
        "actions_grouped": total - markers + len(marker_tasks),
        "actions_by_kind": {kind: n for kind, n in sorted(actions.items()) if n},
        "events_by_type": dict(sorted(by_type.items())),
    }


def minus(after: dict[str, Any], before: dict[str, Any], per: int) -> dict[str, Any]:
    """What happened between two tallies of one conversation, per message (`per` of them)."""

    def each(a: float, b: float) -> float:
        return round((a - b) / per, 2)

    kinds = set(after["actions_by_kind"]) | set(before["actions_by_kind"])
    types = set(after["events_by_type"]) | set(before["events_by_type"])
    return {
        "events": each(after["events"], before["events"]),
        "workflow_tasks": each(after["workflow_tasks"], before["workflow_tasks"]),
        "actions": each(after["actions"], before["actions"]),
        "actions_grouped": each(after["actions_grouped"], before["actions_grouped"]),
        "actions_by_kind": {
            k: v
            for k in sorted(kinds)
            if (v := each(after["actions_by_kind"].get(k, 0), before["actions_by_kind"].get(k, 0)))
        },
        "events_by_type": {
            t: v
            for t in sorted(types)
            if (v := each(after["events_by_type"].get(t, 0), before["events_by_type"].get(t, 0)))
        },
    }
