"""Starting, reading, signalling and ending conversations on the business's initiative.

The HTTP layer (`chatflow.web.journeys_api`) only parses and answers; every rule lives here so the
broadcast runner and the queue drainer apply exactly the same ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from redis.asyncio import Redis
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import ConversationRef, conversation_prefix, e164
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import Conflict, Invalid, NotFound, UnknownFlow
from chatflow.domain.messages import BusinessEvent
from chatflow.edge import keys
from chatflow.edge.digest import Digest, DigestBatch, flush_forever
from chatflow.flows.registry import FlowRegistry
from chatflow.temporal.client import end, send_event, start_journey
from chatflow.temporal.constants import CONVERSATION_WORKFLOW, TASK_QUEUE
from chatflow.temporal.records import ConversationSnapshot
from chatflow.temporal.workflow import ConversationWorkflow

WhenBusy = Literal["interrupt", "skip", "queue"]
WHEN_BUSY: tuple[WhenBusy, ...] = ("interrupt", "skip", "queue")
# A journey for a customer already in a conversation is not started unless its flow says so.
DEFAULT_WHEN_BUSY: WhenBusy = "skip"
IDEMPOTENCY_TTL = timedelta(days=1)
INTERRUPT_WAIT = timedelta(seconds=10)
END_GRACE = timedelta(seconds=5)


@dataclass
class JourneyRequest:
    flow: str
    to: str
    from_: str
    data: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass
class Started:
    id: str
    # started | queued | skipped | duplicate (the idempotency key was used before)
    status: str
    flow: str = ""
    run_id: str = ""
    interrupted: bool = False  # a running conversation was ended to make way for this one


def when_busy(flows: FlowRegistry, flow: str) -> WhenBusy:
    policy = getattr(flows.get(flow), "when_busy", DEFAULT_WHEN_BUSY)
    return policy if policy in WHEN_BUSY else DEFAULT_WHEN_BUSY


def state_of(description: WorkflowExecutionDescription) -> str:
    status = description.status
    return status.name.lower() if status is not None else "unknown"


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
        binding = self.config.binding(number)
        if binding is None:
            raise Invalid(f"from {number} is not one of our numbers (see chatflow.toml)")
        return ConversationRef(binding.channel, binding.provider, number, customer), binding

    async def start(self, request: JourneyRequest) -> Started:
        ref, binding = self.validate(request)
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
        policy = when_busy(self.flows, request.flow)
        interrupted = False
        for _ in range(3):  # an inbound message may start the conversation between our steps
            running = await self._running(ref.id)
            if running is not None:
                if policy == "skip":
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
        return await Digest(self.redis, window).add(
            request.flow, ref.customer, ref.number, event, datetime.now(UTC)
        )

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
        entry = json.dumps({"flow": request.flow, "to": request.to, "from": request.from_, "data": request.data})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.queued_journeys(conversation), entry)
            pipe.sadd(keys.queued_index(), conversation)
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
            request = JourneyRequest(entry["flow"], entry["to"], entry["from"], entry["data"])
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

    async def _existing(self, conversation: str) -> WorkflowExecutionDescription:
        description = await self.describe(conversation)
        if description is None:
            raise NotFound(f"no conversation {conversation}")
        return description

    async def get(self, conversation: str) -> dict[str, Any]:
        description = await self._existing(conversation)
        handle = self.client.get_workflow_handle(conversation, run_id=description.run_id)
        view: dict[str, Any] = {"id": conversation, "state": state_of(description)}
        try:
            snapshot: ConversationSnapshot = await handle.query(ConversationWorkflow.snapshot)
        except Exception:  # noqa: BLE001 - no worker to answer for a closed run: its result still tells
            if description.status == WorkflowExecutionStatus.COMPLETED:
                result = await handle.result(follow_runs=False)
                view.update(flow=result.flow, outcome=result.outcome, reason=result.reason, data=result.data)
            return view
        view.update(
            flow=snapshot.flow,
            step=snapshot.step,
            outcome=snapshot.outcome,
            reason=snapshot.reason,
            data=snapshot.data,
            transcript=[asdict(turn) for turn in snapshot.transcript],
        )
        return view

    async def list(
        self, *, flow: str = "", state: str = "", number: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        query = self.list_query(state=state, number=number)
        found: list[dict[str, Any]] = []
        async for execution in self.client.list_workflows(query, limit=limit if not flow else None):
            memo = await execution.memo()
            if flow and memo.get("flow") != flow:
                continue
            found.append(
                {
                    "id": execution.id,
                    "state": execution.status.name.lower() if execution.status else "unknown",
                    "flow": memo.get("flow", ""),
                    "started_at": execution.start_time.isoformat(),
                    "closed_at": execution.close_time.isoformat() if execution.close_time else None,
                }
            )
            if len(found) >= limit:
                break
        return found

    def list_query(self, *, state: str = "", number: str = "") -> str:
        parts = [f"WorkflowType = '{CONVERSATION_WORKFLOW}'"]
        if state:
            names = {s.name.lower(): s for s in WorkflowExecutionStatus}
            if state not in names:
                raise Invalid(f"state must be one of {', '.join(sorted(names))}")
            parts.append(f"ExecutionStatus = '{_camel(state)}'")
        if number:
            try:
                number = e164(number, what="number")
            except ValueError as error:
                raise Invalid(str(error)) from None
            channels = sorted({b.channel for b in self.config.numbers if b.number == number})
            if not channels:
                raise Invalid(f"number {number} is not one of our numbers")
            prefixes = [f"WorkflowId STARTS_WITH '{conversation_prefix(c, number)}'" for c in channels]
            parts.append("(" + " OR ".join(prefixes) + ")")
        return " AND ".join(parts)

    async def event(self, conversation: str, event: BusinessEvent) -> None:
        description = await self._existing(conversation)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise Conflict(f"conversation {conversation} has ended ({state_of(description)})")
        await send_event(self.client, conversation, event)

    async def end(self, conversation: str, reason: str = "") -> bool:
        """True when the conversation was running and is told to end; False when it had ended."""
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
                await handle.terminate(f"ended by the business: {reason}; it did not end within {END_GRACE}")
        except Exception:  # noqa: BLE001 - it ended, one way or another
            pass
        return True


def _camel(state: str) -> str:
    return "".join(part.capitalize() for part in state.split("_"))

