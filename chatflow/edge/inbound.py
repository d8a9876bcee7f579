"""The inbound edge: what a webhook calls with each parsed message, before any flow sees it.

Opt-out, opt-in and help are answered here, outside every flow, because they apply to every flow
on the number and must work even when no conversation runs (or Temporal is down). Everything else
is routed (keywords) and handed on to the conversation.

    verdict = await edge.receive(binding, message)
    if verdict.reply:
        ...send verdict.reply to the customer straight through the provider (TwiML or API)...

A message over the size limit is refused (TooLarge, 413) before anything else, so it is never
acknowledged and then stuck. When Redis is away (`REDIS_AWAY`), intake goes on without it
(`direct`): messages go straight to Temporal (signal-with-start; the workflow's seen-set dedupes
repeats), HELP is answered, and STOP ends the conversation, is confirmed, and is kept in Temporal
(`PendingOptOuts`) until Redis is back. Only with Redis *and* Temporal away is a webhook refused
(503, so a provider that retries does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeout
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import BESIDE_MARK, customer_token
from chatflow.domain.config import NumberBinding
from chatflow.domain.keywords import Language
from chatflow.domain.messages import InboundMessage
from chatflow.domain.sink import OPTED_OUT, LifecycleEvent
from chatflow.edge import keys
from chatflow.edge.beside import BesideConversations
from chatflow.edge.buffer import BufferedDelivery
from chatflow.edge.consent import ConsentLedger
from chatflow.edge.dedupe import Dedupe
from chatflow.edge.delivery import REDIS_AWAY, Deliver, check_size
from chatflow.edge.optout import OptOuts
from chatflow.edge.triggers import route
from chatflow.edge.windows import ServiceWindows
from chatflow.temporal.client import end

log = logging.getLogger(__name__)

Action = Literal["delivered", "duplicate", "opted_out", "opted_in", "help", "ignored"]


Receive = Callable[[NumberBinding, InboundMessage], Awaitable["Verdict"]]
Announce = Callable[[LifecycleEvent], Awaitable[None]]


@dataclass
class Verdict:
    action: Action
    flow: str = ""  # the flow the message was routed to, when delivered
    # What to answer the customer, outside any flow; "" for nothing. The confirmation of STOP
    # must reach an opted-out customer, so it never goes through the (refusing) send activity.
    reply: str = ""

    @property
    def handled(self) -> bool:
        """True when the edge dealt with the message and no flow will see it."""
        return self.action != "delivered"


Change = Literal["out", "in"]


def _now_ms() -> int:
    return int(time.time() * 1000)


class PendingOptOuts:
    """STOP (and START) received while Redis is away, kept in Temporal until Redis is back.

    Redis holds the opt-outs, so without it a STOP could only be refused (Twilio does not retry an
    SMS webhook: it would be lost) or kept in process memory (lost with the process). Temporal is
    the other durable store the edge has: each change is recorded as a workflow execution, one
    per customer and number, that no worker runs (its task queue has no poller), carrying the
    change in its memo. `apply` (the web app runs it in a loop) writes them into Redis once it
    answers, and terminates them. A change made in Redis later than the recorded one wins
    (`keys.opted_out_changed`), so a START after the outage is not undone by the STOP before it.
    """

    WORKFLOW = "chatflow-pending-opt-out"
    TASK_QUEUE = "chatflow-pending-opt-outs"  # polled by nobody: the executions are records, not work

    def __init__(
        self,
        client: Client,
        redis: Redis,
        *,
        every: timedelta = timedelta(seconds=5),
        ledger: ConsentLedger | None = None,
        announce: Announce | None = None,
    ) -> None:
        self._client = client
        self._announce = announce  # the sinks' `customer.opted_out`, when there are sinks
        self._redis = redis
        self._ledger = ledger or ConsentLedger(redis)
        self._every = every.total_seconds()
        self._recorded = asyncio.Event()  # this process recorded one: look again soon

    async def record(
        self,
        number: str,
        customer: str,
        change: Change,
        word: str = "",
        *,
        conversation: str = "",
        announce: bool = False,
    ) -> bool:
        """Keep the change in Temporal; False when the same change is already pending (a repeat).
        Raises when Temporal is away too. An opt-out is announced to the sinks (for `conversation`)
        as it is written to Redis: when it is new there, or when `announce` (one written to Redis
        already whose announcement could not be)."""
        record = {
            "number": number,
            "customer": customer,
            "change": change,
            "at": _now_ms(),
            "word": word,
            "conversation": conversation,
            "announce": announce,
        }
        workflow_id = f"chatflow-opt-out:{number}:{customer_token(customer)}"
        try:
            await self._start(workflow_id, record, WorkflowIDConflictPolicy.FAIL)
        except WorkflowAlreadyStartedError:
            pending = await (await self._client.get_workflow_handle(workflow_id).describe()).memo()
            if pending.get("change") == change:
                return False
            await self._start(workflow_id, record, WorkflowIDConflictPolicy.TERMINATE_EXISTING)  # the newer wins
        self._recorded.set()
        log.warning("Redis away: opt-%s of %s on %s kept in Temporal until it is back", change, customer, number)
        return True

    async def opted_out(self, number: str, customer: str) -> bool:
        """Whether a STOP of theirs waits here (received while Redis was away, not yet written)."""
        try:
            record = await self._client.get_workflow_handle(
                f"chatflow-opt-out:{number}:{customer_token(customer)}"
            ).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return record.status == WorkflowExecutionStatus.RUNNING and (await record.memo()).get("change") == "out"

    async def changed(self, number: str, customer: str) -> None:
        """Note that the customer's opt-out changed in Redis now (the ledger notes its own changes)."""
        await self._redis.hset(keys.opted_out_changed(self._ledger.scope(number)), customer, str(_now_ms()))

    async def apply(self) -> int:
        """Write every pending change into Redis; how many were applied."""
        applied = 0
        query = f"WorkflowType = '{self.WORKFLOW}' AND ExecutionStatus = 'Running'"
        async for execution in self._client.list_workflows(query):
            record = await execution.memo()
            number, customer = str(record["number"]), str(record["customer"])
            change: Change = "out" if record["change"] == "out" else "in"
            word = str(record.get("word", ""))
            announce = record.get("announce") or not await self._ledger.is_opted_out(number, customer)
            if change == "out" and self._announce is not None and announce:
                # Before the change: announced again (same id) if it fails, never lost; sinks drop repeats.
                at = datetime.fromtimestamp(int(record["at"]) / 1000, UTC).isoformat()
                conversation = str(record.get("conversation") or f"{number}:{customer}")
                await self._announce(LifecycleEvent(f"opt-out-{execution.run_id}", OPTED_OUT, at, conversation))
            await self._ledger.change(number, customer, change, "keyword", word=word, at_ms=int(record["at"]))
            try:
                await self._client.get_workflow_handle(execution.id, run_id=execution.run_id).terminate(
                    reason="written to Redis"
                )
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # already ended (visibility lags): fine
                    raise
            applied += 1
            log.info(
                "opt-%s of %s on %s, kept while Redis was away, written to Redis", record["change"], customer, number
            )
        return applied

    async def apply_forever(self) -> None:
        """`apply` every few seconds; every half second while this process has recorded changes
        not yet applied, so they reach Redis within a second of its return."""
        while True:
            if self._recorded.is_set():
                await asyncio.sleep(0.5)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._recorded.wait(), self._every)
            try:
                await self._redis.ping()
                await self.apply()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis (or Temporal) still away: again soon
                log.info("pending opt-outs: not written yet (%r)", error)
                continue
            self._recorded.clear()

    async def _start(self, workflow_id: str, record: dict[str, object], policy: WorkflowIDConflictPolicy) -> None:
        await self._client.start_workflow(
            self.WORKFLOW,
            record,
            id=workflow_id,
            task_queue=self.TASK_QUEUE,
            memo=record,
            id_conflict_policy=policy,
        )


class InboundEdge:
    def __init__(
        self,
        deliver: Deliver,
        optouts: OptOuts | None = None,
        dedupe: Dedupe | None = None,
        *,
        client: Client | None = None,
        help_text: str = "",
        direct: Deliver | None = None,
        pending: PendingOptOuts | None = None,
        windows: ServiceWindows | None = None,
        beside: BesideConversations | None = None,
    ) -> None:
        # `deliver` must dedupe itself: `deduped(direct_delivery(client), dedupe)` or a
        # BufferedDelivery, which claims the id atomically with buffering it.
        self._deliver = deliver
        self._optouts = optouts
        self._dedupe = dedupe
        self._client = client  # to end the running conversation at once on STOP
        self._help_text = help_text  # "": each number's, in the language of the word
        # Without Redis: messages straight to Temporal, STOP and START kept there.
        self._direct = direct
        self._pending = pending
        self._windows = windows  # WhatsApp's 24-hour window, per customer and number
        self._beside = beside  # the customer's conversations beside the main one: STOP ends them too

    async def receive(self, binding: NumberBinding, message: InboundMessage) -> Verdict:
        check_size(message)  # before anything acknowledges it
        if self._optouts is None or self._dedupe is None:
            # Without Redis there is nowhere to keep opt-outs: every message goes to its flow.
            flow = route(binding, message)
            await self._deliver(message, flow)
            return Verdict("delivered", flow=flow)
        if self._direct is None:
            return await self._through_redis(binding, message, self._optouts, self._dedupe)
        try:
            try:
                return await self._through_redis(binding, message, self._optouts, self._dedupe)
            except RedisTimeout:
                # Slow is not away: a burst that keeps the event loop busy makes connects time
                # out. Once more (every step is safe to repeat) before going around Redis.
                return await self._through_redis(binding, message, self._optouts, self._dedupe)
        except REDIS_AWAY as error:
            log.warning("Redis away (%r): message %s goes straight to Temporal", error, message.id)
            return await self._without_redis(binding, message, self._direct)

    async def _through_redis(
        self, binding: NumberBinding, message: InboundMessage, optouts: OptOuts, dedupe: Dedupe
    ) -> Verdict:
        keyword = binding.answered_words.meaning(message.text)
        customer = message.customer
        ours, theirs = binding.address, binding.address.of(customer)
        if keyword is not None and keyword[0] == "help":
            if not await dedupe.claim(message):
                return Verdict("duplicate")
            return Verdict("help", reply=self._help(binding, keyword[1]))
        if keyword is not None and keyword[0] == "opt_out":
            # The opt-out first, the id claimed after: a claim followed by a failure would turn the
            # provider's retry into a "duplicate" and lose the STOP. A repeat is confirmed once
            # all the same: the opt-out is new only the first time.
            newly = await optouts.opt_out(ours, theirs, word=message.text.strip())
            await self._end_conversation(message.conversation.id)
            if self._beside is not None:
                for conversation in await self._beside.of(message.conversation.id):
                    await self._end_conversation(conversation)
            if not await dedupe.claim(message):
                return Verdict("duplicate")
            return Verdict("opted_out", reply=keyword[1].opted_out_text if newly else "")
        if keyword is not None and keyword[0] == "opt_in":
            # Recorded even when they had not opted out: an opt-in on record is what journeys
            # the business starts may require (`require_opt_in`); the ledger stamps the change,
            # so a STOP kept in Temporal while Redis was away (older) does not undo it.
            if await optouts.opt_in(ours, theirs, word=message.text.strip()):
                return Verdict("opted_in", reply=keyword[1].opted_in_text)
        if self._windows is not None:
            await self._windows.record(message)
        flow = route(binding, message)
        if isinstance(self._deliver, BufferedDelivery):
            # The opt-out check, the claim and the buffering in one round trip: at a burst's rate
            # each webhook's Redis round trips are most of its cost.
            admitted = await self._deliver.admit(message, flow, optouts.scope(ours))
            if admitted == "opted_out":
                return Verdict("ignored")
            return Verdict("delivered", flow=flow) if admitted == "buffered" else Verdict("duplicate")
        if await optouts.is_opted_out(ours, theirs):
            # No flow could answer them anyway; they come back with START.
            return Verdict("ignored")
        await self._deliver(message, flow)
        return Verdict("delivered", flow=flow)

    async def _without_redis(self, binding: NumberBinding, message: InboundMessage, direct: Deliver) -> Verdict:
        """Redis is away: no dedupe at the edge (the workflow's seen-set has it); of the opt-outs,
        only those received during the outage can be checked (the send path refuses the others
        once Redis answers again)."""
        keyword = binding.answered_words.meaning(message.text)
        number, customer = message.number, message.customer
        if keyword is not None and keyword[0] == "help":
            return Verdict("help", reply=self._help(binding, keyword[1]))
        if keyword is not None and keyword[0] == "opt_out":
            if self._pending is None:
                raise ConnectionError("Redis is away and opt-outs cannot be kept elsewhere")
            # Raises if Temporal is away too: 503.
            newly = await self._pending.record(
                number, customer, "out", message.text.strip(), conversation=message.conversation.id
            )
            await self._end_conversation(message.conversation.id)
            await self._end_listed_beside(message.conversation.id)
            return Verdict("opted_out", reply=keyword[1].opted_out_text if newly else "")
        if keyword is not None and keyword[0] == "opt_in" and self._pending is not None:
            # Whether they had opted out is in Redis: keep the START (a no-op for one who had
            # not), and let the message go on as it would for a customer who had not.
            await self._pending.record(number, customer, "in", message.text.strip())
        elif self._pending is not None and await self._pending.opted_out(number, customer):
            return Verdict("ignored")  # they said STOP during this outage
        flow = route(binding, message)
        # Marked: the conversation waits for what the buffer held of theirs before it (order).
        await direct(replace(message, unbuffered=True), flow)
        return Verdict("delivered", flow=flow)

    def _help(self, binding: NumberBinding, language: Language) -> str:
        return binding.help_text or self._help_text or language.help_text

    async def _end_listed_beside(self, main: str) -> None:
        """Without Redis, the conversations beside the main one are found as Temporal lists them."""
        if self._client is None or self._beside is None or "'" in main:
            return
        query = f"WorkflowId STARTS_WITH '{main}{BESIDE_MARK}' AND ExecutionStatus = 'Running'"
        try:
            found = [execution.id async for execution in self._client.list_workflows(query)]
        except RPCError as error:
            log.info("opt-out: could not list the conversations beside %s: %s", main, error)
            return
        for conversation in found:
            await self._end_conversation(conversation)

    async def _end_conversation(self, conversation: str) -> None:
        if self._client is None:
            return
        try:
            await end(self._client, conversation, "the customer opted out")
        except RPCError as error:
            # None running, or Temporal away: the send path refuses every later send anyway.
            log.info("opt-out: could not end %s: %s", conversation, error)
