"""The client side: connecting to Temporal, and handing messages and events to conversations.

Inbound messages use signal-with-start, so the first message of a conversation starts its
workflow and later ones join it, in one round trip and without a race between the two.
The connection is configured the way every Temporal tool is: a profile in Temporal's config file
and the `TEMPORAL_*` environment variables (address, namespace, TLS, API key), so a Temporal
Cloud namespace works as it does for the `temporal` CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    Interceptor,
    WorkflowExecution,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import ConversationRef, id_key, is_hashed_id
from chatflow.domain.errors import Conflict, NotFound, StartupError, UnknownFlow
from chatflow.domain.messages import BusinessEvent, DeliveryUpdate, InboundMessage
from chatflow.flows.registry import registry
from chatflow.temporal import search_attributes
from chatflow.temporal.constants import TASK_QUEUE
from chatflow.temporal.converter import data_converter
from chatflow.temporal.records import ConversationInput, OperatorReply, ReplyFit
from chatflow.temporal.search_attributes import FLOW
from chatflow.temporal.which import NOT_AN_ANSWER, WhichConversation, WhichInput, which_id
from chatflow.temporal.workflow import ConversationWorkflow

DEFAULT_ADDRESS = "localhost:7233"
HAND_ON_WAIT = timedelta(seconds=10)  # for the reply held by a question which conversation to be handed on
T = TypeVar("T")


async def connect(
    *,
    address: str = "",
    namespace: str = "",
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    interceptors: Sequence[Interceptor] = (),
    lazy: bool = False,
) -> Client:
    """A client configured by Temporal's own config (profile file, TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*...); `address` and `namespace`, when
    given (chatflow's own settings), win over them. Every chatflow process builds its clients
    here, so all of them (worker, web, dashboard, `chatflow record`) encrypt and decrypt payloads
    alike when CHATFLOW_PAYLOAD_KEY is set (`env`, default the environment)."""
    converter = data_converter(env)
    id_key()  # every process names conversations alike: a bad CHATFLOW_ID_KEY stops each at its start
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config(profile, override_env_vars=env))
    if address:
        options["target_host"] = address
    options.setdefault("target_host", DEFAULT_ADDRESS)
    if namespace:
        options["namespace"] = namespace
    try:
        return await Client.connect(**options, interceptors=interceptors, lazy=lazy, data_converter=converter)
    except RuntimeError as error:
        raise StartupError(
            f"cannot reach Temporal at {options['target_host']} "
            f"(set CHATFLOW_TEMPORAL_ADDRESS or TEMPORAL_ADDRESS): {error}"
        ) from None


async def deliver(
    client: Client,
    message: InboundMessage,
    flow: str,
    *,
    task_queue: str = TASK_QUEUE,
    history_limit: int = 0,
) -> WorkflowHandle[Any, Any]:
    """Signal the customer's conversation with `message`, starting `flow` when none runs."""
    ref = message.conversation
    return await _start(
        client,
        ConversationInput(
            flow=flow,
            conversation=ref,
            home_flow=flow,
            started_by="message",
            history_limit=history_limit,
            indexed=True,
        ),
        id=ref.id,
        task_queue=task_queue,
        memo=memo(ref, flow),
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
    return await _start(
        client,
        ConversationInput(
            flow=flow, conversation=ref, data=data, home_flow=home_flow, history_limit=history_limit, indexed=True
        ),
        id=ref.id,
        task_queue=task_queue,
        memo=memo(ref, flow),
    )


async def _start(client: Client, params: ConversationInput, **options: Any) -> WorkflowHandle[Any, Any]:
    """Start (or signal-with-start) a conversation with the search attributes its starter can
    know (`search_attributes.at_start`): free at the start, where each upsert later is a billable
    action. Without them on a namespace that lacks them yet: starting a conversation never needs
    them (its first upsert sets them, once a worker has registered them)."""
    if not await search_attributes.registered(client):
        return await client.start_workflow(ConversationWorkflow.run, params, **options)
    try:
        deployed = registry.on(options["task_queue"]).get(params.flow)
    except UnknownFlow:
        deployed = None  # this process does not deploy it (a web app given other flows)
    known = search_attributes.at_start(params.flow, deployed)
    try:
        return await client.start_workflow(ConversationWorkflow.run, params, search_attributes=known, **options)
    except RPCError as error:
        if not search_attributes.refused(client, error):
            raise
    return await client.start_workflow(ConversationWorkflow.run, params, **options)


def memo(ref: ConversationRef, flow: str) -> dict[str, str]:
    """A new conversation's memo: its flow, for listing conversations by flow (chatflow.journeys),
    and when its id names the customer by a keyed token (CHATFLOW_ID_KEY) their address, for
    whoever reads it back (the dashboard, delivery reports); a payload, so encrypted with
    CHATFLOW_PAYLOAD_KEY."""
    found = {"flow": flow}
    if is_hashed_id(ref.id) and not ref.hashed:
        found["customer"] = ref.customer
    return found


async def memo_customer(client: Client, conversation_id: str) -> str:
    """The customer of a conversation whose id names them by a keyed token, from its memo; ""
    when it has none (no such conversation, a memo this process cannot decode)."""
    try:
        found = await (await client.get_workflow_handle(conversation_id).describe()).memo()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return ""
        raise
    except (KeyError, RuntimeError, ValueError):  # as in `started_flow`: a key this process lacks
        return ""
    return str(found.get("customer", ""))


async def execution_customer(execution: WorkflowExecution) -> str:
    """The customer a listed run's id names, or (a hashed id) its memo holds; "" when neither."""
    try:
        ref = ConversationRef.parse(execution.id)
    except ValueError:
        return ""
    if not ref.hashed:
        return ref.customer
    try:
        return str((await execution.memo()).get("customer", ""))
    except (KeyError, RuntimeError, ValueError):
        return ""


async def end(client: Client, conversation_id: str, reason: str) -> None:
    await client.get_workflow_handle(conversation_id).signal(ConversationWorkflow.end, reason)


async def send_event(client: Client, conversation_id: str, event: BusinessEvent) -> None:
    await client.get_workflow_handle(conversation_id).signal(ConversationWorkflow.event, event)


async def take_over(client: Client, conversation_id: str, operator: str) -> None:
    """A person takes the conversation over: the bot stops talking until it is handed back."""
    await _operator_action(
        client.get_workflow_handle(conversation_id).execute_update(ConversationWorkflow.take_over, operator)
    )


async def operator_reply(client: Client, conversation_id: str, operator: str, text: str) -> str:
    """The operator's message to the customer, sent as the bot's are; the provider's message id."""
    handle = client.get_workflow_handle(conversation_id)
    return await _operator_action(handle.execute_update(ConversationWorkflow.reply, OperatorReply(operator, text)))


async def hand_back(client: Client, conversation_id: str, operator: str) -> None:
    """The operator gives the conversation back to the bot, which goes on where it was."""
    await _operator_action(
        client.get_workflow_handle(conversation_id).execute_update(ConversationWorkflow.hand_back, operator)
    )


async def _operator_action(action: Awaitable[T]) -> T:
    """The action's answer; Conflict with the workflow's reason when it refuses, NotFound when the
    conversation does not run."""
    try:
        return await action
    except WorkflowUpdateFailedError as failed:
        raise Conflict(
            str(failed.cause.message if isinstance(failed.cause, ApplicationError) else failed.cause)
        ) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound("the conversation is not running") from None
        raise


# How long a status waits for its conversation to say whether it acts on a refusal itself.
REFUSAL_QUERY_TIMEOUT = timedelta(seconds=5)


async def reply_fit(client: Client, conversation_id: str, message: InboundMessage) -> ReplyFit | None:
    """How the running conversation would take `message` (`ConversationWorkflow.reply_fit`); None
    when it does not run, or cannot say (a worker of a chatflow from before the query)."""
    try:
        return await client.get_workflow_handle(conversation_id).query(
            ConversationWorkflow.reply_fit, message, reject_condition=QueryRejectCondition.NOT_OPEN
        )
    except (WorkflowQueryRejectedError, WorkflowQueryFailedError):
        return None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def acts_on_refusals(client: Client, conversation_id: str) -> bool:
    """Whether the conversation acts on a WhatsApp refusal reported later itself
    (`ConversationWorkflow.acts_on_refusals`); False when it cannot say in time (a run of a
    chatflow from before the query, no worker answering): the fallback's sweeper then says it."""
    try:
        return bool(
            await client.get_workflow_handle(conversation_id).query(
                ConversationWorkflow.acts_on_refusals, rpc_timeout=REFUSAL_QUERY_TIMEOUT
            )
        )
    except (WorkflowQueryRejectedError, WorkflowQueryFailedError, RPCError):
        return False


async def ask_which(client: Client, params: WhichInput, *, task_queue: str = TASK_QUEUE) -> None:
    """Hold a reply and ask the customer which conversation it is for (`chatflow.temporal.which`);
    one question per main conversation at a time (a repeat of this start is a no-op)."""
    try:
        await client.start_workflow(
            WhichConversation.run, params, id=which_id(params.conversation.id), task_queue=task_queue
        )
    except WorkflowAlreadyStartedError:
        pass


async def answer_which(client: Client, workflow_id: str, message: InboundMessage) -> str | None:
    """Offer the customer's message to the question which conversation a reply is for: CHOSEN (it
    answered), NOT_AN_ANSWER, or None when no question is open."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        answered = str(await handle.execute_update(WhichConversation.answer, message))
        if answered == NOT_AN_ANSWER:
            # The held reply goes to its conversation first, so that this one is routed after it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handle.result(), HAND_ON_WAIT.total_seconds())
        return answered
    except WorkflowUpdateFailedError:
        return None
    except RPCError as error:
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return None
        raise


async def signal_inbound(client: Client, conversation_id: str, message: InboundMessage) -> bool:
    """Hand `message` to a running conversation without ever starting one (its seen-set drops a
    repeat); False when it does not run."""
    try:
        await client.get_workflow_handle(conversation_id).signal(ConversationWorkflow.inbound, message)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def send_delivery(client: Client, conversation_id: str, update: DeliveryUpdate) -> bool:
    """Pass a provider's delivery status to its conversation; False when it is no longer running."""
    try:
        await client.get_workflow_handle(conversation_id).signal(ConversationWorkflow.delivery, update)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def started_flow(execution: WorkflowExecution) -> str:
    """The flow a run was started for, as its memo says; "" when it says nothing.

    A memo written under a payload key this process does not hold (a key retired from
    CHATFLOW_PAYLOAD_KEY, or another deployment's runs in the namespace) cannot be decoded here:
    the run's ChatflowFlow search attribute, which Temporal keeps unencrypted, names the flow
    instead, so one such run never breaks a listing of all of them.
    """
    try:
        return str((await execution.memo()).get("flow", ""))
    except (
        KeyError,
        RuntimeError,
        ValueError,
    ):  # the converter's "unknown payload encoding", the codec's "no such key"
        return execution.typed_search_attributes.get(FLOW) or ""
