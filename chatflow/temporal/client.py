"""Handing messages and events to conversations: the one place that calls Temporal for them.

Inbound messages use signal-with-start, so the first message of a conversation starts its
workflow and later ones join it, in one round trip and without a race between the two.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from chatflow.temporal.records import ConversationInput, ConversationRef
from chatflow.domain.messages import BusinessEvent, DeliveryUpdate, InboundMessage
from chatflow.temporal.workflow import ConversationWorkflow
from chatflow.temporal.worker import TASK_QUEUE


# How the web tier hands an inbound message on: straight to Temporal by default; a buffered
# implementation (chatflow.edge.buffer) can replace it without the webhooks knowing.
Deliver = Callable[[InboundMessage, str], Awaitable[None]]


def ref_for(message: InboundMessage) -> ConversationRef:
    return ConversationRef(message.channel, message.provider, message.number, message.customer)


async def deliver(
    client: Client,
    message: InboundMessage,
    flow: str,
    *,
    task_queue: str = TASK_QUEUE,
    history_limit: int = 0,
) -> WorkflowHandle[Any, Any]:
    """Signal the customer's conversation with `message`, starting `flow` when none runs."""
    ref = ref_for(message)
    return await client.start_workflow(
        ConversationWorkflow.run,
        ConversationInput(
            flow=flow,
            conversation=ref,
            home_flow=flow,
            started_by="message",
            history_limit=history_limit,
        ),
        id=ref.id,
        task_queue=task_queue,
        memo={"flow": flow},  # for listing conversations by flow (chatflow.journeys)
        start_signal="inbound",
        start_signal_args=[message],
    )


async def start_journey(
    client: Client,
    ref: ConversationRef,
    flow: str,
    data: dict[str, Any],
    *,
    home_flow: str = "",
    task_queue: str = TASK_QUEUE,
    history_limit: int = 0,
) -> WorkflowHandle[Any, Any]:
    """Start `flow` for a customer on the business's initiative (an event in its backend)."""
    return await client.start_workflow(
        ConversationWorkflow.run,
        ConversationInput(
            flow=flow, conversation=ref, data=data, home_flow=home_flow, history_limit=history_limit
        ),
        id=ref.id,
        task_queue=task_queue,
        memo={"flow": flow},
    )


async def send_event(client: Client, conversation_id: str, event: BusinessEvent) -> None:
    await client.get_workflow_handle(conversation_id).signal(ConversationWorkflow.event, event)


async def send_delivery(client: Client, conversation_id: str, update: DeliveryUpdate) -> bool:
    """Pass a provider's delivery status to its conversation; False when it is no longer running."""
    try:
        await client.get_workflow_handle(conversation_id).signal(ConversationWorkflow.delivery, update)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
