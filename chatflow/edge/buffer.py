"""No inbound message lost while Temporal is unreachable: a Redis buffer and its forwarder.

The web tier answers a webhook once the message is in Redis (an XADD: far cheaper than the
Temporal round trip), so providers never time out and retry into an outage. Messages go to one
of N streams chosen by their conversation, so a conversation's messages keep their order; a
forwarder owns each stream under a lease, signal-with-starts its head, and deletes the entry only
after Temporal has accepted it. While Temporal is down the head is retried and nothing behind
it moves: order per conversation is kept, other partitions drain independently.

At-least-once: a forwarder that dies between Temporal's acceptance and the delete hands the
entry to the next owner, and the workflow's own seen-set drops the repeat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib
from dataclasses import asdict
from datetime import timedelta
from typing import Any, cast

from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.codec import inbound_from
from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.dedupe import SEEN_TTL
from chatflow.temporal.client import deliver, ref_for
from chatflow.temporal.constants import TASK_QUEUE

log = logging.getLogger(__name__)

PARTITIONS = 16

# Claim the message id and buffer the message in one step, so a repeat is never buffered and a
# buffered message is always marked seen (two steps could lose it if Redis failed in between).
_ENQUEUE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
  return 1
end
return 0
"""

_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

# Temporal said no and will say no again: the entry goes to the dead-letter stream.
_REFUSED = {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED}


def partition_of(conversation: str, partitions: int = PARTITIONS) -> int:
    return zlib.crc32(conversation.encode()) % partitions


def encode(message: InboundMessage, flow: str) -> str:
    return json.dumps({"flow": flow, "message": asdict(message)})


def decode(raw: str) -> tuple[InboundMessage, str]:
    data: dict[str, Any] = json.loads(raw)
    return inbound_from(data["message"]), str(data["flow"])


class BufferedDelivery:
    """A `Deliver` that buffers the message (deduplicated) and returns at once."""

    def __init__(self, redis: Redis, *, partitions: int = PARTITIONS, seen_ttl: timedelta = SEEN_TTL) -> None:
        self._partitions = partitions
        self._seen_ttl = int(seen_ttl.total_seconds())
        self._enqueue = redis.register_script(_ENQUEUE)

    async def __call__(self, message: InboundMessage, flow: str) -> None:
        partition = partition_of(ref_for(message).id, self._partitions)
        await self._enqueue(
            keys=[keys.seen(message.id), keys.inbox(partition)],
            args=[self._seen_ttl, encode(message, flow)],
        )


class Forwarder:
    """Drains the buffer into Temporal; run one or more per deployment (leases share the work)."""

    def __init__(
        self,
        redis: Redis,
        client: Client,
        *,
        partitions: int = PARTITIONS,
        task_queue: str = TASK_QUEUE,
        history_limit: int = 0,
        lease: timedelta = timedelta(seconds=10),
        max_backoff: timedelta = timedelta(seconds=2),
        batch: int = 100,
    ) -> None:
        self._redis = redis
        self._client = client
        self._partitions = partitions
        self._task_queue = task_queue
        self._history_limit = history_limit
        self._lease_ms = int(lease.total_seconds() * 1000)
        self._max_backoff = max_backoff.total_seconds()
        self._batch = batch
        self._me = uuid.uuid4().hex
        self._lease = redis.register_script(_LEASE)

    async def run(self) -> None:
        # gather, not a TaskGroup: cancelling it again cancels every partition's task again,
        # which a cancellation swallowed inside redis-py's wait_for needs (see chatflow.domain.tasks).
        await asyncio.gather(*(self._drain(partition) for partition in range(self._partitions)))

    async def _owns(self, partition: int) -> bool:
        return bool(await self._lease(keys=[keys.inbox_owner(partition)], args=[self._me, self._lease_ms]))

    async def _drain(self, partition: int) -> None:
        stream = keys.inbox(partition)
        while True:
            try:
                if not await self._owns(partition):
                    await asyncio.sleep(self._lease_ms / 3000)
                    continue
                # Entries are deleted once forwarded, so reading after 0-0 is reading the head;
                # the block wakes us as soon as a webhook adds one.
                found = cast(
                    list[tuple[str, list[tuple[str, dict[str, str]]]]],
                    await self._redis.xread({stream: "0-0"}, count=self._batch, block=self._lease_ms // 3),
                )
                for _, entries in found:
                    for entry_id, fields in entries:
                        if not await self._forward(partition, entry_id, fields):
                            break  # lost the lease: the new owner carries on from this entry
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis hiccup: never let one partition's task die
                log.exception("forwarder: partition %d", partition)
                await asyncio.sleep(self._max_backoff)

    async def _forward(self, partition: int, entry_id: str, fields: dict[str, str]) -> bool:
        raw = fields.get("m", "")
        stream = keys.inbox(partition)
        backoff = 0.05
        while True:
            try:
                message, flow = decode(raw)
                await deliver(self._client, message, flow, task_queue=self._task_queue, history_limit=self._history_limit)
                break
            except RPCError as error:
                if error.status in _REFUSED:
                    await self._bury(stream, entry_id, raw, str(error))
                    return True
                log.warning("forwarder: Temporal did not take %s (%s); retrying", entry_id, error)
            except (ValueError, TypeError, KeyError) as error:
                await self._bury(stream, entry_id, raw, repr(error))
                return True
            except Exception as error:  # noqa: BLE001 - connection refused and the like: Temporal is away
                log.warning("forwarder: Temporal unreachable for %s (%r); retrying", entry_id, error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
            if not await self._owns(partition):
                return False
        await self._redis.xdel(stream, entry_id)
        return True

    async def _bury(self, stream: str, entry_id: str, raw: str, reason: str) -> None:
        log.error("forwarder: %s cannot be delivered (%s); moved to the dead-letter stream", entry_id, reason)
        await self._redis.xadd(keys.inbox_dead(), {"m": raw, "reason": reason})
        await self._redis.xdel(stream, entry_id)
