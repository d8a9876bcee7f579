"""Digest: the events for one customer within a window become one message (Fyno's digest).

A Redis accumulator rather than a workflow per digest: adding an event is one script call (no
Temporal history per event, which matters for chatty sources), the window opens with the first
event and closes a fixed time later, and a flusher turns each closed window into one journey
whose flow renders the events (`data = {"events": [...], "count": n}`). The pop is atomic, so
two flushers never send a window twice; a flush that fails puts its events back.

Trade-off: the events live in Redis until the window closes, so Redis needs AOF persistence
(valkey `appendonly yes`) to keep them through a restart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from chatflow.domain.addresses import customer_token
from chatflow.edge import keys

# KEYS: the window's list, the due set. ARGV: event, due time (ms), member, how long the list is
# kept (ms): long past its close, so only a window nobody flushed for `KEEP` goes.
_ADD = """
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if n == 1 then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
"""
# How long a window's events are kept past its close when no web process flushes them.
KEEP = timedelta(days=7)

# KEYS: the due set. ARGV: now (ms), the windows' key prefix. Pops one closed window: its
# member, then its events. (The list key is built here, so this script needs a single node.) A
# member [name, customer, number] names its window's list; with CHATFLOW_ID_KEY the list's name
# has the customer's token instead, and the member says it as a fourth item.
_POP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #due == 0 then return nil end
local member = due[1]
redis.call('ZREM', KEYS[1], member)
local list = ARGV[2] .. member
local ok, parts = pcall(cjson.decode, member)
if ok and type(parts) == 'table' and type(parts[4]) == 'string' then list = ARGV[2] .. parts[4] end
local events = redis.call('LRANGE', list, 0, -1)
redis.call('DEL', list)
table.insert(events, 1, member)
return events
"""


@dataclass
class DigestBatch:
    name: str  # the digest, also the flow that renders it
    customer: str
    number: str
    events: list[dict[str, Any]]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Digest:
    def __init__(self, redis: Redis, window: timedelta) -> None:
        self._redis = redis
        self._window = window
        self._add = redis.register_script(_ADD)
        self._pop = redis.register_script(_POP)

    async def add(self, name: str, customer: str, number: str, event: dict[str, Any], now: datetime) -> int:
        """Add an event to the customer's open window (opening one); the count so far."""
        member = json.dumps([name, customer, number])
        window = json.dumps([name, customer_token(customer), number])
        if window != member:  # the list's name holds no address: the member says which list it is
            member = json.dumps([name, customer, number, window])
        return int(
            await self._add(
                keys=[keys.digest_window(window), keys.digest_due()],
                args=[
                    json.dumps(event),
                    _ms(now + self._window),
                    member,
                    int((self._window + KEEP).total_seconds() * 1000),
                ],
            )
        )

    async def closed(self, now: datetime) -> list[DigestBatch]:
        """Take every window closed by `now` (each is taken by one caller only)."""
        batches: list[DigestBatch] = []
        while True:
            popped = await self._pop(keys=[keys.digest_due()], args=[_ms(now), keys.digest_window()])
            if not popped:
                return batches
            name, customer, number, *_ = json.loads(popped[0])
            batches.append(DigestBatch(name, customer, number, [json.loads(e) for e in popped[1:]]))

    async def put_back(self, batch: DigestBatch, now: datetime) -> None:
        for event in batch.events:
            await self.add(batch.name, batch.customer, batch.number, event, now - self._window)


Send = Callable[[DigestBatch], Awaitable[None]]


async def flush_forever(digest: Digest, send: Send, every: timedelta = timedelta(seconds=1)) -> None:
    """Send each closed window as one message (`send` usually starts the digest's journey)."""
    while True:
        now = datetime.now(UTC)
        for batch in await digest.closed(now):
            try:
                await send(batch)
            except Exception:  # noqa: BLE001 - any failure: the events wait for the next round
                await digest.put_back(batch, now)  # due at once: retried next round
        await asyncio.sleep(every.total_seconds())
