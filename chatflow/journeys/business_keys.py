"""Events by business key: `payment_succeeded` for `order_id=A-1001`, to whichever conversation
that order is in.

A flow names the data keys that identify it (`keys = ("order_id",)`); when a journey of that flow
starts, its conversation is indexed in Redis under each key's value, for as long as the flow may
run. An event reported by key goes to every running conversation the key indexes whose flow waits
for that event. When there is none yet (the payment succeeded while the failure journey was still
starting) the event waits under the key for `EVENT_WAIT` and is delivered to the first
conversation indexed under it in that time.

Never lost, never applied twice: the reporter and the starter each write first and read second
(the event is kept, then the index is read again; the index is written, then the kept events are
read), so at least one of them sees the other; both may deliver, and the workflow drops an event
id it has seen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
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


class BusinessKeys:
    def __init__(self, client: Client, redis: Redis, flows: FlowRegistry, *, wait: timedelta = EVENT_WAIT) -> None:
        self.client = client
        self.redis = redis
        self.flows = flows
        self.wait = wait

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
                pipe.expire(index, flow.expires_after + INDEX_GRACE)
                await pipe.execute()
            waiting = keys.waiting_events(key, str(value))
            for raw in cast(list[str], await self.redis.lrange(waiting, 0, -1)):
                event = BusinessEvent(**json.loads(raw))
                if event.name in self._awaited(flow.name):
                    await send_event(self.client, conversation, event)
                    await self.redis.lrem(waiting, 1, raw)

    async def report(self, key: str, value: str, event: BusinessEvent, *, keep: bool = True) -> list[str]:
        """Deliver `event` to the running conversations `key=value` identifies whose flow waits for
        it; the ids it went to. None: kept for `wait` (unless not `keep`) for one that starts."""
        delivered = await self._deliver(key, value, event)
        if delivered or not keep:
            return delivered
        raw = json.dumps(asdict(event))
        waiting = keys.waiting_events(key, value)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(waiting, raw)
            pipe.ltrim(waiting, -WAITING_LIMIT, -1)
            pipe.expire(waiting, self.wait)
            await pipe.execute()
        # A conversation indexed between the first look and the keeping would not see the event.
        delivered = await self._deliver(key, value, event)
        if delivered:
            await self.redis.lrem(waiting, 1, raw)
        return delivered

    async def _deliver(self, key: str, value: str, event: BusinessEvent) -> list[str]:
        index = keys.by_business_key(key, value)
        found = cast(dict[str, str], await self.redis.hgetall(index))
        delivered = []
        for conversation, flow in sorted(found.items()):
            if event.name not in self._awaited(flow):
                continue
            if not await self._running(conversation, flow):
                await self.redis.hdel(index, conversation)  # ended: never again
                continue
            await send_event(self.client, conversation, event)
            delivered.append(conversation)
        return delivered

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
