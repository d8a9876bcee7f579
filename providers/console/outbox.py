"""Where the console channel keeps what the bot sent, for readers to wait on.

`Outbox` keeps it in memory (tests, the harness, a single process); `RedisOutbox` appends it to a
Redis stream per customer, so the web app can show what a worker in another process sent.
Readers page with an opaque cursor: "0" is the beginning, "latest" the current end. Both admit at
most `MAX_CUSTOMERS` customers writing to the console (`admit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatflow.domain import codec
from chatflow.domain.addresses import customer_token
from chatflow.domain.messages import OutboundMessage, numbered_menu

START = "0"
LATEST = "latest"
STREAM_PREFIX = "chatflow:console:"
CUSTOMERS = "chatflow:console-customers"  # who wrote to the console lately (not a stream: no prefix clash)
NOTICES = "chatflow:console-sent"  # pub/sub: the customer each new message is for
STREAM_LENGTH = 1000  # per customer; a local channel needs no deep history
TTL = timedelta(days=1)  # a customer's messages, and their place among MAX_CUSTOMERS, after the last
MAX_CUSTOMERS = 100  # customers writing to the console within TTL: made-up numbers cannot fill Redis
RECHECK = 5.0  # seconds a waiting reader goes without looking, should a notice be missed
READ_COUNT = 100

log = logging.getLogger(__name__)


@dataclass
class ConsoleLine:
    """One bot message as the console shows it, with the cursor that comes after it."""

    cursor: str
    text: str  # as a phone without buttons shows it (choices as a numbered menu)
    options: list[str]
    number: str


def _line(cursor: str, message: OutboundMessage) -> ConsoleLine:
    return ConsoleLine(
        cursor=cursor,
        text=numbered_menu(message.text, message.options),
        options=[option.title for option in message.options],
        number=message.number,
    )


class ConsoleOutbox(Protocol):
    max_customers: int  # customers who may write to the console within TTL

    async def put(self, message: OutboundMessage) -> None: ...

    async def read(self, customer: str, after: str = START, wait: float = 0.0) -> tuple[list[ConsoleLine], str]:
        """Messages to `customer` after the cursor `after`, waiting up to `wait` seconds for one;
        with the cursor to read from next time. ValueError for a cursor it never gave."""
        ...

    async def admit(self, customer: str) -> int:
        """0 when `customer` may write to the console; else the seconds until a new one may."""
        ...


class Outbox:
    """Messages sent to each customer, in order, with a way to wait for the next ones."""

    def __init__(self, *, max_customers: int = MAX_CUSTOMERS) -> None:
        self.sent: dict[str, list[OutboundMessage]] = defaultdict(list)
        self._changed = asyncio.Condition()
        self.max_customers = max_customers
        self._customers: set[str] = set()  # who wrote: for as long as this process runs

    async def admit(self, customer: str) -> int:
        if customer in self._customers or len(self._customers) < self.max_customers:
            self._customers.add(customer)
            return 0
        return int(TTL.total_seconds())

    async def put(self, message: OutboundMessage) -> None:
        async with self._changed:
            self.sent[message.customer].append(message)
            self._changed.notify_all()

    async def wait_for(self, customer: str, count: int, timeout: float) -> list[OutboundMessage]:
        """Wait until `customer` has received at least `count` messages (or `timeout` passes)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.sent[customer]) >= count), timeout)
            except TimeoutError:
                pass
            return list(self.sent[customer])

    async def read(self, customer: str, after: str = START, wait: float = 0.0) -> tuple[list[ConsoleLine], str]:
        if after == LATEST:
            return [], str(len(self.sent[customer]))
        if not after.isdigit():
            raise ValueError(f"cursor {after!r} is not one this outbox gave")
        start = int(after)
        sent = await self.wait_for(customer, start + 1, wait) if wait > 0 else self.sent[customer]
        lines = [_line(str(i + 1), m) for i, m in enumerate(sent[start:], start=start)]
        return lines, str(max(start, len(sent)))


_STREAM_ID = re.compile(r"^\d+(-\d+)?$")
# Stream entries as redis-py returns them with decode_responses=True: (id, fields), all str.
Entries = list[tuple[str, dict[str, str]]]

# Readers waiting for a customer's next message, told by the process's one listener (below).
Waiters = dict[str, set[asyncio.Event]]

# Admit a customer (ARGV[4]) to the console unless `max` others wrote within the window: the
# sorted set holds each customer's last message time (ms) and expires with the window.
_ADMIT = """
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) or redis.call('ZCARD', KEYS[1]) < max then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


class RedisOutbox:
    """The outbox in Redis: one capped stream per customer, readable from any process.

    Every key expires (`ttl` after the last message), and at most `max_customers` customers may
    write within `ttl` (`admit`): made-up numbers cannot fill Redis. A waiting reader holds no
    Redis connection: one listener per process, subscribed to the customers each message is for,
    wakes the readers of that customer, which then read the stream (a short command). A reader
    also looks every `RECHECK` seconds, for a notice missed while the listener reconnected.

    `redis` must be created with decode_responses=True, as every client of chatflow's is.
    """

    def __init__(self, redis: Redis, *, ttl: timedelta = TTL, max_customers: int = MAX_CUSTOMERS) -> None:
        self.redis = redis
        self.ttl = ttl
        self.max_customers = max_customers
        self._waiters: Waiters = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._admit = redis.register_script(_ADMIT)

    @staticmethod
    def key(customer: str) -> str:
        # A key name: the customer as chatflow's key names give them (a token with CHATFLOW_ID_KEY).
        return f"{STREAM_PREFIX}{customer_token(customer)}"

    def waiting(self) -> int:
        """Readers of this process waiting for a message."""
        return sum(len(events) for events in self._waiters.values())

    async def put(self, message: OutboundMessage) -> None:
        key = self.key(message.customer)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"message": codec.dumps(message)}, maxlen=STREAM_LENGTH, approximate=True)
            pipe.expire(key, self.ttl)
            pipe.publish(NOTICES, message.customer)
            await pipe.execute()

    async def admit(self, customer: str) -> int:
        now = int(time.time() * 1000)
        window = int(self.ttl.total_seconds() * 1000)
        wait = int(await self._admit(keys=[CUSTOMERS], args=[now, window, self.max_customers, customer]))
        return 0 if wait < 0 else max(1, math.ceil(wait / 1000))

    async def read(self, customer: str, after: str = START, wait: float = 0.0) -> tuple[list[ConsoleLine], str]:
        key = self.key(customer)
        if after == LATEST:
            last = cast(Entries, await self.redis.xrevrange(key, count=1))
            return [], last[0][0] if last else START
        if not _STREAM_ID.match(after):
            raise ValueError(f"cursor {after!r} is not one this outbox gave")
        if wait <= 0:
            return await self._read(key, after)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        told = asyncio.Event()
        self._waiters[customer].add(told)
        try:
            await self._listening()
            while True:
                told.clear()  # before reading: a notice from now on is not missed
                lines, cursor = await self._read(key, after)
                remaining = deadline - loop.time()
                if lines or remaining <= 0:
                    return lines, cursor
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(told.wait(), min(remaining, RECHECK))
        finally:
            self._waiters[customer].discard(told)
            if not self._waiters[customer]:
                del self._waiters[customer]
            if not self._waiters and self._listener is not None:
                self._listener.cancel()  # nobody waits: its connection goes back to the pool
                self._listener = None

    async def _read(self, key: str, after: str) -> tuple[list[ConsoleLine], str]:
        answer = cast(list[tuple[str, Entries]], await self.redis.xread({key: after}, count=READ_COUNT))
        entries = answer[0][1] if answer else []
        lines = [_line(entry_id, codec.loads_outbound(fields["message"])) for entry_id, fields in entries]
        return lines, lines[-1].cursor if lines else after

    async def _listening(self) -> None:
        """The listener running, subscribed (or, when Redis does not answer soon, readers poll)."""
        if self._listener is None or self._listener.done():
            self._subscribed = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(self._subscribed))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), RECHECK)

    async def _listen(self, subscribed: asyncio.Event) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(NOTICES)
                subscribed.set()
                async for notice in pubsub.listen():
                    for told in self._waiters.get(str(notice["data"]), ()):
                        told.set()
            except RedisError as error:
                log.warning("the console's listener lost Redis (%r); readers poll until it is back", error)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError):
                    await asyncio.shield(pubsub.aclose())
