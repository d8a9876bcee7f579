"""How the edge hands a message on to its conversation, once it has decided a flow should see it.

Three ways, all ending in the conversation workflow's `inbound` signal (whose seen-set drops a
message id it already has):

- `direct_delivery`: signal-with-start, acknowledged once Temporal has the message. The web tier
  uses it when Redis is away, so intake never depends on Redis alone.
- the Redis buffer (`chatflow.edge.buffer`), the usual path, whose forwarder signal-with-starts.
- `deliver_again`: for a message an earlier attempt may already have handed on (its forwarder died
  or lost its answer). Signal-with-start would start a *new* conversation with it if the one that
  received it has ended since; this looks in the runs that ended first and hands it on only if
  none of them received it.

One size limit end to end (`MAX_MESSAGE_BYTES`): the edge refuses a bigger message before
acknowledging it, and the forwarder dead-letters one it finds in the buffer, so no message ever
waits on something Temporal will refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from redis import exceptions as redis_errors
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.codec import dumps
from chatflow.domain.errors import TooLarge
from chatflow.domain.messages import InboundMessage
from chatflow.temporal.client import deliver
from chatflow.temporal.constants import TASK_QUEUE
from chatflow.temporal.records import ConversationInput

log = logging.getLogger(__name__)

# Hand `message` to its conversation, starting `flow` when none runs. Implementations dedupe
# themselves: `deduped(direct_delivery(...))`, or the Redis buffer, which claims ids atomically.
Deliver = Callable[[InboundMessage, str], Awaitable[None]]

# The largest message (as chatflow encodes it) the edge takes. Temporal refuses a payload over
# 2 MB (and warns over 512 KB); a signal-with-start carries the message and the conversation's
# input, and a conversation carries recent messages on when it continues as new: a quarter of
# the warning limit per message leaves room for all of that.
MAX_MESSAGE_BYTES = 256 * 1024


class NotReplicated(Exception):
    """Redis took the message, but fewer of its master's replicas than required
    (CHATFLOW_REDIS_REPLICA_ACKS) confirmed having it in time: a failover now would lose it."""


# Redis errors that mean "Redis is away" (down, restarting, failing over, pool exhausted), not a
# bug in the command: the edge then hands messages straight to Temporal.
REDIS_AWAY: tuple[type[Exception], ...] = (
    NotReplicated,  # as good as away for this message: Temporal has it once the direct path returns
    redis_errors.ConnectionError,  # refused, reset, "No connection available", still loading its data
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica being promoted
    # A cluster: a master down or failing over, its slots unserved, or the client out of retries.
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
)

# The conversation workflow's signal for inbound messages (`ConversationWorkflow.inbound`).
INBOUND_SIGNAL = "inbound"

# Runs that ended up to this long before a message was buffered are searched too (clock skew
# between Redis, which dates buffer entries, and Temporal, which dates runs).
CLOCK_SKEW = timedelta(minutes=5)
RUNS_SEARCHED = 20  # the most recent ended runs searched for a message


def encoded_size(message: InboundMessage) -> int:
    # surrogatepass: a lone surrogate (a provider's broken text) is measured, not an error; the
    # buffer and Temporal's converter write it escaped.
    return len(dumps(message).encode("utf-8", "surrogatepass"))


def check_size(message: InboundMessage) -> None:
    """TooLarge (413) when `message` is over the one size limit."""
    size = encoded_size(message)
    if size > MAX_MESSAGE_BYTES:
        raise TooLarge(
            f"message {message.id} is {size} bytes encoded, over the {MAX_MESSAGE_BYTES}-byte limit of a conversation"
        )


def direct_delivery(client: Client, *, task_queue: str = TASK_QUEUE, history_limit: int = 0) -> Deliver:
    """Straight to Temporal: signal-with-start, acknowledged once Temporal has the message."""

    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow, task_queue=task_queue, history_limit=history_limit)

    return _deliver


class Race(Exception):
    """The conversation kept ending and starting while a message was handed on again: try later."""


async def deliver_again(
    client: Client,
    message: InboundMessage,
    flow: str,
    *,
    since: datetime,
    task_queue: str = TASK_QUEUE,
    history_limit: int = 0,
) -> bool:
    """Hand on a message an earlier attempt may already have handed on; False (and nothing done)
    when a run of its conversation that has ended received it. `since`: when the message was
    first buffered (no run that ended before can have received it).

    A running conversation is signalled (never started): if it received the message before, its
    seen-set drops the repeat. With none running, the message starts one only if no ended run has it.
    """
    conversation = message.conversation.id
    for _ in range(5):
        latest = await _latest_run(client, conversation)
        if await _received_by_ended_run(client, conversation, message.id, since - CLOCK_SKEW, latest):
            log.info("not handing %s on again: a run of %s that has ended received it", message.id, conversation)
            return False
        if latest is not None and latest[1] == WorkflowExecutionStatus.RUNNING:
            try:
                await client.get_workflow_handle(conversation, run_id=latest[0]).signal(INBOUND_SIGNAL, message)
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    continue  # it ended just now: look again
                raise
            return True
        # None running, and no ended run has the message: it never reached Temporal.
        await deliver(client, message, flow, task_queue=task_queue, history_limit=history_limit)
        return True
    raise Race(f"{conversation} kept ending and starting while {message.id} was handed on again")


async def _latest_run(client: Client, conversation: str) -> tuple[str, WorkflowExecutionStatus | None] | None:
    """The latest run's id and status (read from the history service: current, unlike visibility)."""
    try:
        description = await client.get_workflow_handle(conversation).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.run_id, description.status


async def _received_by_ended_run(
    client: Client,
    conversation: str,
    message_id: str,
    since: datetime,
    latest: tuple[str, WorkflowExecutionStatus | None] | None,
) -> bool:
    runs: list[str] = []
    if latest is not None and latest[1] != WorkflowExecutionStatus.RUNNING:
        runs.append(latest[0])  # visibility may not show it yet
    if "'" not in conversation and "\\" not in conversation:  # conversation ids are numbers: never, in practice
        query = f"WorkflowId = '{conversation}' AND ExecutionStatus != 'Running'"
        async for run in client.list_workflows(query, limit=RUNS_SEARCHED):
            if run.close_time is not None and run.close_time >= since and run.run_id not in runs:
                runs.append(run.run_id)
    for run_id in runs:
        if await _run_received(client, conversation, run_id, message_id):
            return True
    return False


async def _run_received(client: Client, conversation: str, run_id: str, message_id: str) -> bool:
    """Whether this run was signalled the message, or started with it (continued as new with it
    in its inbox or among the ids it had seen)."""
    converter = client.data_converter
    async for event in client.get_workflow_handle(conversation, run_id=run_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signalled = event.workflow_execution_signaled_event_attributes
            if signalled.signal_name != INBOUND_SIGNAL:
                continue
            found: list[Any] = await converter.decode(signalled.input.payloads, [InboundMessage])
            if found and isinstance(found[0], InboundMessage) and found[0].id == message_id:
                return True
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            if not payloads:
                continue
            try:
                params = (await converter.decode(payloads, [ConversationInput]))[0]
            except Exception:  # noqa: BLE001 - a run of another shape: only its signals can tell
                continue
            if isinstance(params, ConversationInput) and (
                message_id in params.seen
                or any(item.message is not None and item.message.id == message_id for item in params.inbox)
            ):
                return True
    return False
