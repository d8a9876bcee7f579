"""The replay check: do recorded conversations still replay on the current flow code?

A running conversation is replayed from its history whenever a worker picks it up after a
restart or a cache eviction. If a flow's code now makes different decisions at a point the
history already passed (a step inserted, removed or reordered before it), Temporal cannot
continue it. Replaying recorded histories against the new code in CI catches that before deploy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from chatflow.flows.flow import Flow
from chatflow.flows.registry import registry
from chatflow.temporal.worker import sandbox_runner
from chatflow.temporal.workflow import ConversationWorkflow


@dataclass
class ReplayFailure:
    history: str
    error: str


@contextmanager
def flows_deployed(flows: Iterable[type[Flow]]) -> Iterator[None]:
    """Make `flows` the ones the workflow finds, for the duration of a replay."""
    flows = list(flows)
    saved = {flow.key(): registry.get(flow.name, flow.version) for flow in flows if _has(flow)}
    for flow in flows:
        registry.add(flow)
    try:
        yield
    finally:
        for flow in saved.values():
            registry.add(flow)


def _has(flow: type[Flow]) -> bool:
    try:
        registry.get(flow.name, flow.version)
    except LookupError:
        return False
    return True


async def replay(paths: Iterable[Path], flows: Iterable[type[Flow]]) -> list[ReplayFailure]:
    """Replay every history file against `flows`; return the ones that no longer replay."""
    flows = list(flows)
    replayer = Replayer(workflows=[ConversationWorkflow], workflow_runner=sandbox_runner(flows))
    failures: list[ReplayFailure] = []
    with flows_deployed(flows):
        for path in sorted(paths):
            history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                failures.append(ReplayFailure(path.name, str(result.replay_failure)))
    return failures


async def record(handle: WorkflowHandle[Any, Any], path: Path) -> None:
    """Save a conversation's history (every run of it is one file) for the replay check."""
    history = await handle.fetch_history()
    path.write_text(history.to_json(), encoding="utf-8")
