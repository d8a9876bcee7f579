"""Starting, reading, signalling and ending conversations on the business's initiative.

The HTTP layer (`chatflow.web.journeys_api`) only parses and answers; every rule lives here so the
broadcast runner and the queue drainer apply exactly the same ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from redis.asyncio import Redis
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import BESIDE_MARK, ConversationRef, e164, is_hashed_id
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import Conflict, Invalid, NotFound, UnknownFlow
from chatflow.domain.messages import BusinessEvent
from chatflow.edge import keys
from chatflow.edge.beside import BesideConversations
from chatflow.edge.consent import Scopes
from chatflow.edge.digest import Digest, DigestBatch, flush_forever
from chatflow.edge.optout import OptOuts
from chatflow.flows.needs import missing_keys
from chatflow.flows.registry import FlowRegistry
from chatflow.journeys.business_keys import BusinessKeys
from chatflow.temporal.client import (
    end,
    hand_back,
    memo_customer,
    operator_reply,
    send_event,
    start_journey,
    started_flow,
    take_over,
)
from chatflow.temporal.constants import CONVERSATION_WORKFLOW, TASK_QUEUE
from chatflow.temporal.records import ConversationResult, ConversationSnapshot
from chatflow.temporal.search_attributes import OUTCOME
from chatflow.temporal.workflow import ConversationWorkflow

WhenBusy = Literal["interrupt", "skip", "queue", "beside"]
WHEN_BUSY: tuple[WhenBusy, ...] = ("interrupt", "skip", "queue", "beside")
# A journey for a customer already in a conversation is not started unless its flow says so.
DEFAULT_WHEN_BUSY: WhenBusy = "skip"
IDEMPOTENCY_TTL = timedelta(days=1)
# A journey queued behind a running conversation waits at most this long (a conversation expires
# after 30 days by default); the queue's index lives as long as its newest queue.
QUEUED_TTL = timedelta(days=31)
INTERRUPT_WAIT = timedelta(seconds=10)
END_GRACE = timedelta(seconds=5)


@dataclass
class JourneyRequest:
    flow: str
    to: str
    from_: str
    data: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    when_busy: str = ""  # the journey's own busy policy, over its flow's ("" for the flow's)


@dataclass
class Started:
    id: str
    # started | queued | skipped | duplicate (the idempotency key was used before)
    status: str
    flow: str = ""
    run_id: str = ""
    interrupted: bool = False  # a running conversation was ended to make way for this one


def when_busy(flows: FlowRegistry, flow: str, given: str = "") -> WhenBusy:
    """The busy policy of a journey: its own (`given`), else its flow's."""
    policy = given or getattr(flows.get(flow), "when_busy", DEFAULT_WHEN_BUSY)
    return cast(WhenBusy, policy) if policy in WHEN_BUSY else DEFAULT_WHEN_BUSY


class _StartedMeanwhile(Exception):
    """The customer's main conversation started while a beside journey was starting it: beside it."""


# One vocabulary for every answer about a conversation (the API, the dashboard, `chatflow chat`):
# `state` says whether it runs, `outcome` how it ended.
STATES = ("running", "ended")
OUTCOMES = ("completed", "cancelled", "expired", "failed", "terminated")
# How a run that Temporal closed without a result of the flow's ended (the flow's own End
# steps give completed, cancelled, expired or failed).
CLOSED_OUTCOMES = {
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "expired",
}
# Lists run this many result look-ups at once (the outcome of an ended run is in its result).
LIST_CONCURRENCY = 20
MAX_REPLY = 4096  # characters in an operator's reply (WhatsApp's limit for a text message)
OPERATOR_NAME_LIMIT = 100


def state_of(description: WorkflowExecutionDescription | WorkflowExecution) -> str:
    """running, or ended (whatever way it ended: its outcome says)."""
    return "running" if description.status == WorkflowExecutionStatus.RUNNING else "ended"


def reason_for(outcome: str, reason: str) -> str:
    """The reason belongs to the outcome it explains: none while running or once completed (an
    earlier failure the flow recovered from is not why it ended)."""
    return reason if outcome and outcome != "completed" else ""


class Journeys:
    def __init__(
        self,
        config: Config,
        client: Client,
        redis: Redis,
        flows: FlowRegistry,
        *,
        task_queue: str = TASK_QUEUE,
    ) -> None:
        self.config = config
        self.client = client
        self.redis = redis
        self.flows = flows
        self.task_queue = task_queue
        self.business_keys = BusinessKeys(client, redis, flows)
        self.consent = OptOuts(redis, Scopes(config.numbers))
        self.beside = BesideConversations(redis)

    # -- starting --------------------------------------------------------------------------------

    def validate(self, request: JourneyRequest) -> tuple[ConversationRef, NumberBinding]:
        try:
            customer = e164(request.to, what="to")
            number = e164(request.from_, what="from")
        except ValueError as error:
            raise Invalid(str(error)) from None
        try:
            self.flows.get(request.flow)
        except UnknownFlow as error:
            raise Invalid(str(error)) from None
        if request.when_busy and request.when_busy not in WHEN_BUSY:
            raise Invalid(f"when_busy must be one of {', '.join(WHEN_BUSY)} (or left out for the flow's own)")
        binding = self.config.binding(number)
        if binding is None:
            raise Invalid(f"from {number} is not one of our numbers (see chatflow.toml)")
        return ConversationRef(binding.channel, number, customer, binding.provider), binding

    def check_data(self, request: JourneyRequest) -> None:
        """Refuse, before it starts, a journey whose data lacks what the flow's messages and
        conditions read: it would fail at its first prompt."""
        missing = missing_keys(self.flows.get(request.flow), request.data)
        if missing:
            raise Invalid(
                f"data lacks {', '.join(repr(key) for key in missing)}, which flow {request.flow!r} reads "
                "(in its messages or conditions); add them to data, or give the flow defaults or declare "
                "them optional"
            )

    async def start(self, request: JourneyRequest) -> Started:
        ref, binding = self.validate(request)
        self.check_data(request)
        if binding.require_opt_in and not await self.consent.has_opted_in(ref.number, ref.customer):
            scope = self.consent.scope(ref.number)
            raise Conflict(
                f"{ref.customer} has no opt-in recorded for {scope} ({ref.number} has require_opt_in = true): "
                f"record theirs with POST /api/consent/{ref.customer} or an import first"
            )
        if request.idempotency_key:
            key = keys.idempotency(request.idempotency_key)
            claim = json.dumps(asdict(Started(ref.id, "starting", request.flow)))
            if not await self.redis.set(key, claim, nx=True, ex=IDEMPOTENCY_TTL):
                earlier = json.loads(await self.redis.get(key) or claim)
                return Started(earlier["id"], "duplicate", earlier.get("flow", ""), earlier.get("run_id", ""))
            try:
                started = await self._start(ref, binding, request)
            except BaseException:
                await self.redis.delete(key)  # nothing started: a retry with the key may try again
                raise
            await self.redis.set(key, json.dumps(asdict(started)), ex=IDEMPOTENCY_TTL)
            return started
        return await self._start(ref, binding, request)

    async def _start(self, ref: ConversationRef, binding: NumberBinding, request: JourneyRequest) -> Started:
        flow = self.flows.get(request.flow)
        data = {**flow.defaults, **request.data}
        beside = when_busy(self.flows, request.flow, request.when_busy) == "beside"
        if beside and await self._running(ref.id) is not None:
            ref = await self._beside(ref, flow.expires_after)
        # Marked before its workflow starts: an event by key meanwhile waits for this conversation.
        await self.business_keys.starting(ref.id, flow, data)
        started: Started | None = None
        meanwhile = False
        try:
            started = await self._start_workflow(ref, binding, request)
        except _StartedMeanwhile:
            meanwhile = True
        finally:
            if started is None or started.status != "started":
                await self.business_keys.not_started(ref.id, flow, data)
        if meanwhile or started is None:
            return await self._start(await self._beside(ref, flow.expires_after), binding, request)
        if started.status == "started":
            await self.business_keys.started(ref.id, flow, data)
        return started

    async def _beside(self, ref: ConversationRef, lasts: timedelta) -> ConversationRef:
        """A new conversation beside the customer's main one, noted (before it starts, so that a
        reply at once finds it) where the reply router looks."""
        beside = ref.beside_main(uuid.uuid4().hex[:12])
        await self.beside.add(ref.id, beside.id, lasts)
        return beside

    async def _start_workflow(self, ref: ConversationRef, binding: NumberBinding, request: JourneyRequest) -> Started:
        policy = when_busy(self.flows, request.flow, request.when_busy)
        interrupted = False
        for _ in range(3):  # an inbound message may start the conversation between our steps
            running = await self._running(ref.id)
            if running is not None:
                if policy == "beside" and not ref.beside:
                    raise _StartedMeanwhile
                if policy == "skip" or ref.beside:
                    return Started(ref.id, "skipped", request.flow)
                if policy == "queue":
                    await self.enqueue(ref.id, request)
                    return Started(ref.id, "queued", request.flow)
                await self._interrupt(running, f"interrupted by the journey {request.flow!r}")
                interrupted = True
            try:
                handle = await start_journey(
                    self.client, ref, request.flow, request.data, home_flow=binding.flow, task_queue=self.task_queue
                )
            except WorkflowAlreadyStartedError:
                continue
            return Started(ref.id, "started", request.flow, handle.result_run_id or "", interrupted)
        raise Conflict(f"conversation {ref.id} keeps being started by someone else; try again")

    async def _running(self, conversation: str) -> WorkflowHandle[Any, Any] | None:
        description = await self.describe(conversation)
        if description is None or description.status != WorkflowExecutionStatus.RUNNING:
            return None
        return self.client.get_workflow_handle(conversation, run_id=description.run_id)

    async def _interrupt(self, handle: WorkflowHandle[Any, Any], reason: str) -> None:
        await end(self.client, handle.id, reason)
        try:
            # This run only: a handover to the number's flow is a new run, ended next time round.
            await asyncio.wait_for(handle.result(follow_runs=False), INTERRUPT_WAIT.total_seconds())
        except TimeoutError:
            raise Conflict(f"conversation {handle.id} did not end in time; try again") from None
        except Exception:  # noqa: BLE001 - it ended, one way or another
            pass

    # -- digests ------------------------------------------------------------------------------------

    async def add_to_digest(self, request: JourneyRequest, event: dict[str, Any]) -> int:
        """Collect an event into the customer's open digest window; the events so far."""
        ref, _ = self.validate(request)
        window = self.flows.get(request.flow).digest_window
        if window is None:
            raise Invalid(f"flow {request.flow!r} has no digest_window")
        return await Digest(self.redis, window).add(request.flow, ref.customer, ref.number, event, datetime.now(UTC))

    async def start_digest(self, batch: DigestBatch) -> None:
        """A closed window: the digest's flow for the customer, with all of its events."""
        started = await self.start(JourneyRequest(batch.name, batch.customer, batch.number, {"events": batch.events}))
        if started.status == "skipped":
            # Busy with another conversation: the flusher puts the events back and tries again
            # (a digest flow with when_busy = "queue" is queued instead).
            raise Conflict(f"{batch.customer} is busy; digest {batch.name} kept for later")

    async def flush_digests(self) -> None:
        # Closing windows is the same whatever their length: one Digest reads every flow's.
        await flush_forever(Digest(self.redis, timedelta(0)), self.start_digest)

    # -- the queue (when_busy = "queue") -----------------------------------------------------------

    async def enqueue(self, conversation: str, request: JourneyRequest) -> None:
        entry = json.dumps(
            {
                "flow": request.flow,
                "to": request.to,
                "from": request.from_,
                "data": request.data,
                "when_busy": request.when_busy,
            }
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.queued_journeys(conversation), entry)
            pipe.expire(keys.queued_journeys(conversation), QUEUED_TTL)
            pipe.sadd(keys.queued_index(), conversation)
            pipe.expire(keys.queued_index(), QUEUED_TTL)
            await pipe.execute()

    async def start_queued(self) -> list[Started]:
        """Start the next queued journey of every conversation that is no longer running."""
        started: list[Started] = []
        conversations = cast(set[str], await self.redis.smembers(keys.queued_index()))
        for conversation in conversations:
            if await self._running(conversation) is not None:
                continue
            raw = cast(str | None, await self.redis.lpop(keys.queued_journeys(conversation)))
            if raw is None:
                await self.redis.srem(keys.queued_index(), conversation)
                continue
            entry = json.loads(raw)
            request = JourneyRequest(
                entry["flow"], entry["to"], entry["from"], entry["data"], when_busy=entry.get("when_busy", "")
            )
            try:
                started.append(await self.start(request))
            except BaseException:
                await self.redis.lpush(keys.queued_journeys(conversation), raw)  # keep its place
                raise
        return started

    async def drain_queue(self, every: timedelta = timedelta(seconds=1)) -> None:
        """Run for ever, starting queued journeys as the conversations before them end."""
        while True:
            await self.start_queued()
            await asyncio.sleep(every.total_seconds())

    # -- reading and acting on a conversation ------------------------------------------------------

    async def describe(self, conversation: str) -> WorkflowExecutionDescription | None:
        try:
            return await self.client.get_workflow_handle(conversation).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def _existing(self, conversation: str, run_id: str = "") -> WorkflowExecutionDescription:
        if run_id:
            try:
                return await self.client.get_workflow_handle(conversation, run_id=run_id).describe()
            except RPCError as error:
                if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                    raise NotFound(f"no run {run_id} of conversation {conversation}") from None
                raise
        description = await self.describe(conversation)
        if description is None:
            raise NotFound(f"no conversation {conversation}")
        return description

    async def resolve(self, conversation: str) -> str:
        """The conversation an id names. Logs mask the customer's number in ids
        (`chat:sms:+15005550006:+1415*****00`); such an id names the one conversation on that
        number whose customer matches it (NotFound for none, Conflict for several). With
        CHATFLOW_ID_KEY an id that names the customer by their number names the conversation whose
        id carries the number's keyed token: callers who know the number find it."""
        if "*" not in conversation:
            return self._hashed(conversation)
        try:
            address = ConversationRef.parse(conversation)
            number = e164(address.number)
        except ValueError:
            raise NotFound(f"no conversation {conversation}") from None
        masked = re.fullmatch(r"(\+?\d*)(\*+)(\d*)", address.customer)
        if masked is None or not re.fullmatch(r"[a-z_]+", address.channel):
            raise NotFound(f"no conversation {conversation}")
        start, hidden, end = masked.groups()
        prefix = ConversationRef.prefix(address.channel, number)
        suffix = re.escape(BESIDE_MARK + address.beside) if address.beside else ""
        pattern = re.compile(re.escape(prefix + start) + rf"\d{{{len(hidden)}}}" + re.escape(end) + suffix)
        query = f"WorkflowType = '{CONVERSATION_WORKFLOW}' AND WorkflowId STARTS_WITH '{prefix}{start}'"
        found = {
            execution.id async for execution in self.client.list_workflows(query) if pattern.fullmatch(execution.id)
        }
        if not found:
            raise NotFound(f"no conversation {conversation}")
        if len(found) > 1:
            raise Conflict(f"{conversation} matches {len(found)} conversations; use the whole id")
        return found.pop()

    @staticmethod
    def _hashed(conversation: str) -> str:
        try:
            ref = ConversationRef.parse(conversation)
        except ValueError:
            return conversation
        if ref.hashed:
            return conversation
        with contextlib.suppress(ValueError):  # a number in any form names the one conversation
            ref = replace(ref, customer=e164(ref.customer))
        return ref.id if is_hashed_id(ref.id) else conversation

    async def customer(self, conversation: str) -> str:
        """The customer of a conversation: the end of its id, or for an id that names them by a
        keyed token (CHATFLOW_ID_KEY) its memo ("" when that cannot be read here)."""
        try:
            ref = ConversationRef.parse(conversation)
        except ValueError:
            return ""
        return await memo_customer(self.client, conversation) if ref.hashed else ref.customer

    async def get(self, conversation: str, run_id: str = "") -> dict[str, Any]:
        """The conversation's newest run, or the run `run_id` of it."""
        view, _ = await self._view(conversation, run_id)
        return view

    async def runs(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]:
        """Every run of a conversation (each a conversation the customer had on that number),
        newest first: run id, state, flow, when it started and ended."""
        conversation = await self.resolve(conversation)
        query = f"WorkflowType = '{CONVERSATION_WORKFLOW}' AND WorkflowId = '{conversation}'"
        found = [
            {
                "run_id": execution.run_id,
                "state": "running" if execution.status == WorkflowExecutionStatus.RUNNING else "ended",
                "flow": await started_flow(execution),
                "started_at": execution.start_time.isoformat(),
                "closed_at": execution.close_time.isoformat() if execution.close_time else None,
            }
            async for execution in self.client.list_workflows(query, limit=limit)
        ]
        return sorted(found, key=lambda run: run["started_at"], reverse=True)

    async def status(self, conversation: str) -> dict[str, Any]:
        """Whether a conversation runs (and is busy with what it was sent), and how it ended:
        what `chatflow chat` shows. No data, no transcript."""
        view, snapshot = await self._view(conversation)
        keys = ("id", "run_id", "state", "flow", "step", "outcome", "reason", "operator")
        status: dict[str, Any] = {key: view.get(key, "") for key in keys}
        status["busy"] = view["state"] == "running" and (
            snapshot is not None and (not snapshot.idle or snapshot.pending > 0)
        )
        return status

    async def _view(self, conversation: str, run_id: str = "") -> tuple[dict[str, Any], ConversationSnapshot | None]:
        conversation = await self.resolve(conversation)
        description = await self._existing(conversation, run_id)
        handle = self.client.get_workflow_handle(conversation, run_id=description.run_id)
        view: dict[str, Any] = {
            "id": conversation,
            "run_id": description.run_id,
            "state": state_of(description),
            "flow": await started_flow(description),
            "outcome": "",
            "reason": "",
        }
        try:
            snapshot: ConversationSnapshot | None = await handle.query(ConversationWorkflow.snapshot)
        except Exception:  # noqa: BLE001 - no worker to answer (a closed run): its result still tells
            snapshot = None
        if snapshot is not None:
            view.update(
                flow=snapshot.flow,
                version=snapshot.version,
                step=snapshot.step,
                outcome=snapshot.outcome,
                reason=snapshot.reason,
                data=snapshot.data,
                transcript=[asdict(turn) for turn in snapshot.transcript],
                operator=snapshot.operator,
                unanswered=snapshot.unanswered,
                trace=[asdict(line) for line in snapshot.trace],
            )
        if description.status == WorkflowExecutionStatus.RUNNING:
            # The flow may have reached its End a moment before the run closes: not ended yet.
            view.update(outcome="", reason="")
        elif description.status == WorkflowExecutionStatus.COMPLETED:
            result = await self._result(conversation, description.run_id)
            view.update(flow=result.flow, outcome=result.outcome, reason=result.reason, data=result.data)
        elif description.status is not None and description.status in CLOSED_OUTCOMES:
            view.update(outcome=CLOSED_OUTCOMES[description.status], reason=await self._closed_reason(handle))
        view["reason"] = reason_for(view["outcome"], view["reason"])
        return view, snapshot

    async def _closed_reason(self, handle: WorkflowHandle[Any, Any]) -> str:
        """Why Temporal closed a run: its termination reason, its failure's message."""
        async for event in handle.fetch_history_events(event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                return event.workflow_execution_terminated_event_attributes.reason or "terminated"
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                return event.workflow_execution_failed_event_attributes.failure.message
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
                return "cancelled in Temporal"
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
                return "the run timed out in Temporal"
        return ""

    async def list(
        self, *, flow: str = "", state: str = "", number: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        """Conversations, newest first: one entry per run (a customer may have had several
        conversations on a number, one after the other), with its outcome once it has ended."""
        query = self.list_query(state=state, number=number)
        found: list[WorkflowExecution] = []
        async for execution in self.client.list_workflows(query, limit=limit if not flow else None):
            if flow and await started_flow(execution) != flow:
                continue
            found.append(execution)
            if len(found) >= limit:
                break
        lookups = asyncio.Semaphore(LIST_CONCURRENCY)

        async def entry(execution: WorkflowExecution) -> dict[str, Any]:
            async with lookups:
                outcome = await self._outcome(execution)
            return {
                "id": execution.id,
                "run_id": execution.run_id,
                "state": state_of(execution),
                "outcome": outcome,
                "flow": await started_flow(execution),
                "started_at": execution.start_time.isoformat(),
                "closed_at": execution.close_time.isoformat() if execution.close_time else None,
            }

        return list(await asyncio.gather(*(entry(execution) for execution in found)))

    async def _outcome(self, execution: WorkflowExecution) -> str:
        status = execution.status
        if status is None or status == WorkflowExecutionStatus.RUNNING:
            return ""
        if status in CLOSED_OUTCOMES:
            return CLOSED_OUTCOMES[status]
        try:
            result = await self._result(execution.id, execution.run_id)
        except Exception:  # noqa: BLE001 - a result this code cannot read (another payload key): as indexed
            return execution.typed_search_attributes.get(OUTCOME) or ""
        return result.outcome

    async def _result(self, conversation: str, run_id: str | None) -> ConversationResult:
        # Annotated: mypy infers get_workflow_handle_for's type variables only now and then.
        handle: WorkflowHandle[ConversationWorkflow, ConversationResult]
        handle = self.client.get_workflow_handle_for(ConversationWorkflow.run, conversation, run_id=run_id)
        return await handle.result(follow_runs=False)

    def list_query(self, *, state: str = "", number: str = "") -> str:
        """The visibility query for conversations in `state` (running or ended) on `number`.

        Runs that continued as new are left out: the conversation goes on in the run after them.
        """
        parts = [f"WorkflowType = '{CONVERSATION_WORKFLOW}'", "ExecutionStatus != 'ContinuedAsNew'"]
        if state == "running":
            parts.append("ExecutionStatus = 'Running'")
        elif state == "ended":
            parts.append("ExecutionStatus != 'Running'")
        elif state:
            raise Invalid(f"state must be one of {', '.join(STATES)}")
        if number:
            try:
                number = e164(number, what="number")
            except ValueError as error:
                raise Invalid(str(error)) from None
            channels = sorted({b.channel for b in self.config.numbers if b.number == number})
            if not channels:
                raise Invalid(f"number {number} is not one of our numbers")
            prefixes = [f"WorkflowId STARTS_WITH '{ConversationRef.prefix(c, number)}'" for c in channels]
            parts.append("(" + " OR ".join(prefixes) + ")")
        return " AND ".join(parts)

    def awaited_events(self, flow: str, version: int | None = None) -> set[str] | None:
        """The business events a flow waits for anywhere (its Ask and Wait steps' `events`);
        None when this app does not know the flow."""
        try:
            flow_class = self.flows.get(flow, version)
        except UnknownFlow:
            return None
        return {name for step in flow_class.steps.values() for name in getattr(step, "events", {})}

    async def event(self, conversation: str, event: BusinessEvent) -> str:
        """Report `event` into the running conversation; the id it went to. Invalid for an event
        its flow never waits for (the flow would keep it for ever, unread)."""
        conversation = await self.resolve(conversation)
        description = await self._existing(conversation)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise Conflict(f"conversation {conversation} has ended")
        handle = self.client.get_workflow_handle(conversation, run_id=description.run_id)
        try:
            snapshot: ConversationSnapshot | None = await handle.query(ConversationWorkflow.snapshot)
        except Exception:  # noqa: BLE001 - no worker answers now: the flow checks nothing, it gets the event
            snapshot = None
        if snapshot is not None:
            awaited = self.awaited_events(snapshot.flow, snapshot.version)
            if awaited is not None and event.name not in awaited:
                waits = f"waits for {', '.join(sorted(awaited))}" if awaited else "waits for no events"
                raise Invalid(f"flow {snapshot.flow!r} never waits for event {event.name!r}; it {waits}")
        await send_event(self.client, conversation, event)
        return conversation

    async def event_by_key(
        self, key: str, value: str, event: BusinessEvent, *, otherwise: JourneyRequest | None = None
    ) -> tuple[str, tuple[str, ...]]:
        """Report `event` to the conversations the business key `key=value` identifies: how
        (delivered, started: none was open and `otherwise` started, kept: waiting for one to
        start) and the conversations it went to."""
        if not key or not value:
            raise Invalid("an event by key needs a key and its value (order_id=A-1001)")
        reported = await self.business_keys.report(key, value, event, keep=otherwise is None)
        if reported.delivered:
            return "delivered", tuple(reported.delivered)
        if otherwise is not None and not reported.kept:
            started = await self.start(otherwise)
            if started.status != "skipped":
                return "started", (started.id,)
            # The customer is busy: perhaps with the very conversation this key is about to find.
            reported = await self.business_keys.report(key, value, event)
            if reported.delivered:
                return "delivered", tuple(reported.delivered)
        return "kept", ()

    # -- a person takes over -------------------------------------------------------------------

    async def take_over(self, conversation: str, operator: str) -> str:
        """`operator` takes the conversation over (Conflict when someone else has it); its id."""
        conversation = await self._still_running(conversation)
        await take_over(self.client, conversation, _operator(operator))
        return conversation

    async def reply(self, conversation: str, operator: str, text: str) -> str:
        """The operator's message to the customer; the provider's message id (Conflict when the
        conversation is not theirs, or the send was refused: opted out, outside the window...)."""
        if not text.strip():
            raise Invalid("the reply is empty")
        if len(text) > MAX_REPLY:
            raise Invalid(f"a reply holds at most {MAX_REPLY} characters")
        conversation = await self._still_running(conversation)
        return await operator_reply(self.client, conversation, _operator(operator), text)

    async def hand_back(self, conversation: str, operator: str) -> str:
        """Give the conversation back to the bot, which goes on where it was; its id."""
        conversation = await self._still_running(conversation)
        await hand_back(self.client, conversation, _operator(operator))
        return conversation

    async def _still_running(self, conversation: str) -> str:
        conversation = await self.resolve(conversation)
        description = await self._existing(conversation)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise Conflict(f"conversation {conversation} has ended")
        return conversation

    async def end(self, conversation: str, reason: str = "") -> bool:
        """True when the conversation was running and is told to end; False when it had ended."""
        conversation = await self.resolve(conversation)
        description = await self._existing(conversation)
        if description.status != WorkflowExecutionStatus.RUNNING:
            return False
        await end(self.client, conversation, reason)
        handle = self.client.get_workflow_handle(conversation, run_id=description.run_id)
        try:
            # A flow ends through its own `cancelled` step, saying goodbye if it says so...
            await asyncio.wait_for(handle.result(follow_runs=False), END_GRACE.total_seconds())
        except TimeoutError:
            # ...unless it cannot (no worker, a workflow task failing): then it is terminated,
            # so ending a conversation through the API always works.
            with contextlib.suppress(RPCError):
                await handle.terminate(reason=f"ended by the business: {reason}; it did not end within {END_GRACE}")
        except Exception:  # noqa: BLE001 - it ended, one way or another
            pass
        return True


def _operator(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise Invalid("say who the operator is (operator)")
    if len(name) > OPERATOR_NAME_LIMIT:
        raise Invalid(f"an operator's name holds at most {OPERATOR_NAME_LIMIT} characters")
    return name
