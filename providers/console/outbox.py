"""Where the console channel keeps what the bot sent, for readers to wait on.

`Outbox` keeps it in memory (tests, the harness, a single process); `RedisOutbox` appends it to a
Redis stream per customer, so the web app can show what a worker in another process sent.
Readers page with an opaque cursor: "0" is the beginning, "latest" the current end.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol, cast

from redis.asyncio import Redis

from chatflow.domain import codec
from chatflow.domain.messages import OutboundMessage, numbered_menu

START = "0"
LATEST = "latest"
STREAM_PREFIX = "chatflow:console:"
STREAM_LENGTH = 1000  # per customer; a local channel needs no deep history
BLOCK_SLICE = 2.0  # seconds
READ_COUNT = 100


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
    async def put(self, message: OutboundMessage) -> None: ...

    async def read(self, customer: str, after: str = START, wait: float = 0.0) -> tuple[list[ConsoleLine], str]:
        """Messages to `customer` after the cursor `after`, waiting up to `wait` seconds for one;
        with the cursor to read from next time. ValueError for a cursor it never gave."""
        ...


class Outbox:
    """Messages sent to each customer, in order, with a way to wait for the next ones."""

    def __init__(self) -> None:
        self.sent: dict[str, list[OutboundMessage]] = defaultdict(list)
        self._changed = asyncio.Condition()

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


class RedisOutbox:
    """The outbox in Redis: one capped stream per customer, readable from any process.

    `redis` must be created with decode_responses=True, as every client of chatflow's is.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(customer: str) -> str:
        return f"{STREAM_PREFIX}{customer}"

    async def put(self, message: OutboundMessage) -> None:
        await self.redis.xadd(
            self.key(message.customer),
            {"message": codec.dumps(message)},
            maxlen=STREAM_LENGTH,
            approximate=True,
        )

    async def read(self, customer: str, after: str = START, wait: float = 0.0) -> tuple[list[ConsoleLine], str]:
        key = self.key(customer)
        if after == LATEST:
            last = cast(Entries, await self.redis.xrevrange(key, count=1))
            return [], last[0][0] if last else START
        if not _STREAM_ID.match(after):
            raise ValueError(f"cursor {after!r} is not one this outbox gave")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            # Block in slices shorter than any client's socket timeout (redis-py's default is
            # 5 s), so a long poll is never mistaken for a dead connection.
            remaining = deadline - loop.time()
            block = int(min(remaining, BLOCK_SLICE) * 1000) if remaining > 0 else None
            answer = cast(
                list[tuple[str, Entries]], await self.redis.xread({key: after}, count=READ_COUNT, block=block)
            )
            entries = answer[0][1] if answer else []
            if entries or block is None or loop.time() >= deadline:
                break
        lines = [_line(entry_id, codec.loads_outbound(fields["message"])) for entry_id, fields in entries]
        return lines, lines[-1].cursor if lines else after
