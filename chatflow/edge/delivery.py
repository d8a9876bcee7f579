"""How the edge hands a message on to its conversation, once it has decided a flow should see it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio.client import Client

from chatflow.domain.messages import InboundMessage
from chatflow.temporal.client import deliver
from chatflow.temporal.constants import TASK_QUEUE

# Hand `message` to its conversation, starting `flow` when none runs. Implementations dedupe
# themselves: `deduped(direct_delivery(...))`, or the Redis buffer, which claims ids atomically.
Deliver = Callable[[InboundMessage, str], Awaitable[None]]


def direct_delivery(client: Client, *, task_queue: str = TASK_QUEUE, history_limit: int = 0) -> Deliver:
    """Straight to Temporal: signal-with-start, acknowledged once Temporal has the message."""

    async def _deliver(message: InboundMessage, flow: str) -> None:
        await deliver(client, message, flow, task_queue=task_queue, history_limit=history_limit)

    return _deliver
