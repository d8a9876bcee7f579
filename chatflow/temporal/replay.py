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
from temporalio.converter import PayloadCodec
from temporalio.worker import Replayer

from chatflow.domain.errors import ChatflowError
from chatflow.flows.flow import Flow
from chatflow.flows.registry import registry
from chatflow.temporal.redact import Redactor, decode
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
    histories = [
        (path.name, WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))) for path in sorted(paths)
    ]
    return await replay_histories(histories, flows)


async def replay_histories(
    histories: Iterable[tuple[str, WorkflowHistory]], flows: Iterable[type[Flow]]
) -> list[ReplayFailure]:
    flows = list(flows)
    replayer = Replayer(workflows=[ConversationWorkflow], workflow_runner=sandbox_runner(flows))
    failures: list[ReplayFailure] = []
    with registry.replaying(), flows_deployed(flows):
        for name, history in histories:
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                failures.append(ReplayFailure(name, str(result.replay_failure)))
    return failures


async def prepared(
    history: WorkflowHistory,
    codec: PayloadCodec | None,
    *,
    redact: Redactor | None,
    flows: Iterable[type[Flow]] = (),
) -> WorkflowHistory:
    """`history` as a file for the replay check: decoded (no key needed to replay it) and, with a
    `redact`or, redacted (`chatflow.temporal.redact`), then checked to replay on `flows`
    still; ChatflowError when redacting changed a decision of the flow."""
    if codec is not None:
        await decode(history, codec)
    if redact is None:
        return history
    redacted = redact.history(history)
    flows = list(flows)
    if flows:
        failures = await replay_histories([(history.workflow_id, redacted)], flows)
        if failures:
            raise ChatflowError(
                f"a history of {redact.text(history.workflow_id)} does not replay once redacted (the flow decides on "
                "data that was redacted); record it with --no-redact after checking it holds nothing personal: "
                + failures[0].error[:300]
            )
    return redacted


async def record(
    handle: WorkflowHandle[Any, Any], path: Path, *, redact: bool = True, codec: PayloadCodec | None = None
) -> None:
    """Save a conversation's history (every run of it is one file) for the replay check, decoded
    with `codec` (the client's, when its payloads are encrypted) and, by default, redacted."""
    history = await prepared(await handle.fetch_history(), codec, redact=Redactor() if redact else None)
    path.write_text(history.to_json(), encoding="utf-8")
