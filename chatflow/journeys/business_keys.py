"""Events by business key: `payment_succeeded` for `order_id=A-1001`, to whichever conversation
that order is in.

A flow names the data keys that identify it (`keys = ("order_id",)`); as a journey of that flow
starts, its conversation is indexed in Redis under each key's value, for as long as the flow may
run: marked starting before its workflow is started (`starting`), started once it is
(`started`). An event reported by key goes to every running conversation the key indexes whose
flow waits for that event. When there is none yet, or the one there is still starting (the
payment succeeded while the failure journey was starting), the event waits under the key for
`EVENT_WAIT` and is delivered to the first conversation indexed under it in that time; an event
that has somewhere to go otherwise (`otherwise`: a confirmation of its own) waits only for a
conversation that is starting, so it is applied by that conversation or by the other, never both.

Never lost, never applied twice: the reporter and the starter each write first and read second
(the event is kept, then the index is read again; the index is written, then the kept events are
read), so at least one of them sees the other; both may deliver, and the workflow drops an event
id it has seen.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, cast

from redis.asyncio import Redis
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.errors import UnknownFlow
from chatflow.domain.messages import BusinessEvent
from chatflow.edge import keys
from chatflow.flows.flow import Flow
from chatflow.flows.registry import FlowRegistry
from chatflow.temporal.client import send_event, started_flow

log = logging.getLogger(__name__)

# How long an event reported before its conversation waits for it.
EVENT_WAIT = timedelta(minutes=15)
WAITING_LIMIT = 100  # events kept under one key; older ones are dropped first
INDEX_GRACE = timedelta(days=1)  # the index outlives the flow's own expiry by this
# A conversation marked starting that has not started in this long never will (its starter died).
STARTING_FOR = timedelta(minutes=2)
# A conversation not started yet is indexed as `starting:<conversation>` = `<deadline ms>:<flow>`,
# beside (not over) its entry from an earlier run, which may still be running.
STARTING = "starting:"


@dataclass(frozen=True)
class Reported:
    """Where an event by key went: the conversations it was delivered to, and whether it was
    kept for one (`kept`) instead."""

    delivered: list[str]
    kept: bool = False


class BusinessKeys:
    def __init__(self, client: Client, redis: Redis, flows: FlowRegistry, *, wait: timedelta = EVENT_WAIT) -> None:
        self.client = client
        self.redis = redis
        self.flows = flows
        self.wait = wait

    async def starting(self, conversation: str, flow: type[Flow], data: Mapping[str, Any]) -> None:
        """Mark a conversation about to be started under its flow's keys, before its workflow is:
        an event for it meanwhile waits for it, rather than going anywhere else."""
        deadline = int((time.time() + STARTING_FOR.total_seconds()) * 1000)
        for index in self._indexes(flow, data):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(index, f"{STARTING}{conversation}", f"{deadline}:{flow.name}")
                pipe.expire(index, flow.expires_after + INDEX_GRACE)
                await pipe.execute()

    async def not_started(self, conversation: str, flow: type[Flow], data: Mapping[str, Any]) -> None:
        """Take back the marks of a conversation that was not started after all (busy, refused)."""
        for index in self._indexes(flow, data):
            await self.redis.hdel(index, f"{STARTING}{conversation}")

    def _indexes(self, flow: type[Flow], data: Mapping[str, Any]) -> list[str]:
        return [
            keys.by_business_key(key, str(data[key]))
            for key in flow.keys
            if data.get(key) is not None and not isinstance(data[key], (dict, list))
        ]

    async def started(self, conversation: str, flow: type[Flow], data: Mapping[str, Any]) -> None:
        """Index a conversation that just started under its flow's keys, then hand it the events
        that were waiting for it."""
        for key in flow.keys:
            value = data.get(key)
            if value is None or isinstance(value, (dict, list)):
                continue
            index = keys.by_business_key(key, str(value))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(index, conversation, flow.name)
                pipe.hdel(index, f"{STARTING}{conversation}")
                pipe.expire(index, flow.expires_after + INDEX_GRACE)
                await pipe.execute()
            waiting = keys.waiting_events(key, str(value))
            for raw in cast(list[str], await self.redis.lrange(waiting, 0, -1)):
                event = BusinessEvent(**json.loads(raw))
                if event.name in self._awaited(flow.name):
                    await send_event(self.client, conversation, event)
                    await self.redis.lrem(waiting, 1, raw)

    async def report(self, key: str, value: str, event: BusinessEvent, *, keep: bool = True) -> Reported:
        """Deliver `event` to the running conversations `key=value` identifies whose flow waits for
        it. None: kept for `wait` for one that starts; when not `keep`, only if one is starting."""
        delivered, starting = await self._deliver(key, value, event)
        if delivered or not (keep or starting):
            return Reported(delivered)
        raw = json.dumps(asdict(event))
        waiting = keys.waiting_events(key, value)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(waiting, raw)
            pipe.ltrim(waiting, -WAITING_LIMIT, -1)
            pipe.expire(waiting, self.wait)
            await pipe.execute()
        # A conversation indexed between the first look and the keeping would not see the event.
        delivered, _ = await self._deliver(key, value, event)
        if delivered:
            await self.redis.lrem(waiting, 1, raw)
            return Reported(delivered)
        return Reported([], kept=True)

    async def _deliver(self, key: str, value: str, event: BusinessEvent) -> tuple[list[str], bool]:
        """The conversations it was delivered to, and whether one that would take it is starting."""
        index = keys.by_business_key(key, value)
        found = cast(dict[str, str], await self.redis.hgetall(index))
        delivered: list[str] = []
        starting = False
        for field, entry in sorted(found.items()):
            conversation, flow, deadline = field, entry, 0
            if field.startswith(STARTING):
                conversation = field.removeprefix(STARTING)
                at, _, flow = entry.partition(":")
                deadline = int(at)
            if event.name not in self._awaited(flow) or conversation in delivered:
                continue
            if not await self._running(conversation, flow):
                if deadline > time.time() * 1000:
                    starting = True  # its workflow is not running yet: the event waits for it
                else:
                    await self.redis.hdel(index, field)  # ended, or never started: never again
                continue
            await send_event(self.client, conversation, event)
            delivered.append(conversation)
        return delivered, starting

    async def _running(self, conversation: str, flow: str) -> bool:
        """Whether the conversation still runs the flow it was indexed for (the customer may be in
        another one since)."""
        try:
            description = await self.client.get_workflow_handle(conversation).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        running = description.status == WorkflowExecutionStatus.RUNNING
        return running and await started_flow(description) == flow

    def _awaited(self, flow: str) -> set[str]:
        try:
            flow_class = self.flows.get(flow)
        except UnknownFlow:
            return set()
        return {name for step in flow_class.steps.values() for name in getattr(step, "events", {})}
