"""Lifecycle events, kept in order in Redis and relayed to each sink.

Workflows emit (`chatflow.temporal.lifecycle`) into one stream, `chatflow:sinks:events`, through
the worker's `StreamEmitter`, which holds what Redis cannot take while it is away and appends it,
in order, once it is back: an outage delays events, it does not lose them. Each sink reads the
stream through a consumer group of its own (`SinkRelay`): a batch at a time, delivered in order;
a batch that fails retryably (the destination is down) is tried again, with backoff, before
anything behind it (in order per conversation means no overtaking), for up to `GIVE_UP_AFTER`;
one the destination refuses for good, or that keeps failing that long, is put aside in the sink's
dead letters (`chatflow:sinks:<name>:dead`, `dead_letters`) with the reason, and the relay goes
on. A relay that dies mid-batch leaves it pending in its group: the next relay delivers it again
first (destinations drop repeats by event id); a relay that lost only its acknowledgement (Redis
away a moment) does not deliver it again.

Opt-outs are emitted by the web tier (`announcing_opt_outs`); one taken while Redis is away is
kept in Temporal with the opt-out itself and announced as it reaches Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage
from chatflow.domain.sink import OPTED_OUT, LifecycleEvent, Sink, SinkBinding, SinkFailed
from chatflow.edge import keys
from chatflow.edge.inbound import PendingOptOuts, Receive, Verdict

log = logging.getLogger(__name__)

STREAM_LENGTH = 100_000  # events kept in the stream (roughly): older ones are trimmed
GIVE_UP_AFTER = timedelta(hours=24)  # a batch failing retryably this long is put aside
FIRST_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=1)
READ_BLOCK = timedelta(seconds=1)
DEAD_KEPT = 10_000
AWAY_PAUSE = timedelta(seconds=1)  # the longest the emitter waits before trying Redis again
FLUSH_PAUSE = timedelta(milliseconds=200)  # the first wait, doubling up to AWAY_PAUSE
FLUSH_BATCH = 100
HOLD_LIMIT = 100_000  # events a worker holds while Redis is away (roughly 50 MB)


class StreamEmitter:
    """The emitter a worker gives its workflows: their events appended to the stream in the order
    they were emitted, by a thread of the emitter's own on a client of its own, to the server
    `redis` talks to. A workflow thread only hands the event over: it never waits for Redis (a
    workflow task held up for seconds is taken for a deadlock).

    While Redis is away the events are held, not lost: they wait in this process in the order
    they came, each behind those before it (so none of a conversation's events overtakes another),
    and are appended, in order, once Redis answers again. At most `hold_limit` are held; beyond
    that the oldest are dropped, and said so in the log (an outage that long would outgrow the
    process's memory first).
    """

    def __init__(self, redis: Redis, *, timeout: float = 0.5, hold_limit: int = HOLD_LIMIT) -> None:
        self._redis = _sync_client(redis, timeout)
        self._append = self._redis.register_script(_APPEND)
        self._held: deque[LifecycleEvent] = deque()
        self._hold_limit = hold_limit
        self._changed = threading.Condition()
        self._closing = False
        self._flusher: threading.Thread | None = None
        self.dropped = 0  # events held past `hold_limit`, dropped

    @property
    def held(self) -> int:
        """Events handed over and not yet appended."""
        return len(self._held)

    def __call__(self, event: LifecycleEvent) -> None:
        with self._changed:
            if len(self._held) >= self._hold_limit:
                self._held.popleft()
                self.dropped += 1
                log.error("%d lifecycle events held past the limit of %d dropped", self.dropped, self._hold_limit)
            self._held.append(event)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush, name="chatflow-sink-events", daemon=True)
                self._flusher.start()
            self._changed.notify()

    def _flush(self) -> None:
        """Append what is held, oldest first, a batch at a time, for as long as the emitter is open."""
        pause, away = FLUSH_PAUSE, False
        while True:
            with self._changed:
                while not self._held and not self._closing:
                    self._changed.wait()
                if not self._held:
                    return
                batch = list(itertools.islice(self._held, FLUSH_BATCH))
            try:
                self._add(batch)
            except Exception as error:  # noqa: BLE001 - Redis away: held, tried again a little later
                if not away:
                    log.warning("Redis away (%r): lifecycle events held until it is back", error)
                away = True
                with self._changed:
                    if self._closing:
                        return
                    self._changed.wait(pause.total_seconds())
                pause = min(pause * 2, AWAY_PAUSE)
                continue
            with self._changed:
                for _ in batch:
                    self._held.popleft()
            if away:
                log.info("Redis back: lifecycle events held while it was away going out (%d left)", self.held)
            pause, away = FLUSH_PAUSE, False

    def _add(self, events: Sequence[LifecycleEvent]) -> None:
        # One script: the batch is appended whole or not at all, so a retry repeats none of it.
        self._append(keys=[keys.sink_events()], args=[STREAM_LENGTH, *(_encoded(event) for event in events)])

    def close(self, *, wait: timedelta = timedelta(seconds=2)) -> None:
        """Stop; what is still held gets `wait` to reach Redis, else it is said lost in the log."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        if self._flusher is not None:
            self._flusher.join(wait.total_seconds())
        if self._held:
            log.error("%d lifecycle events held while Redis was away are lost with this process", self.held)
        self._redis.close()


# KEYS the stream; ARGV its length (roughly), then the events, in order.
_APPEND = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 1
"""


def _sync_client(redis: Redis, timeout: float) -> sync_redis.Redis | sync_redis.RedisCluster:
    """A sync client of the server (or cluster) the async `redis` talks to."""
    if isinstance(redis, RedisCluster):
        # A cluster (`?cluster=true`): a sync cluster client, from the nodes the async one knows.
        kwargs: dict[str, Any] = redis.connection_kwargs
        node = next(iter(redis.nodes_manager.startup_nodes.values()))  # known before any command
        return sync_redis.RedisCluster(
            host=node.host,
            port=node.port,
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            ssl="SSL" in kwargs.get("connection_class", sync_redis.Connection).__name__,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    pool = redis.connection_pool
    given = pool.connection_kwargs
    where: dict[str, Any] = (
        {"unix_socket_path": given["path"]}
        if "path" in given
        else {"host": given.get("host", "localhost"), "port": given.get("port", 6379)}
    )
    return sync_redis.Redis(
        **where,
        db=given.get("db", 0),
        username=given.get("username"),
        password=given.get("password"),
        ssl="SSL" in pool.connection_class.__name__,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # the flusher waits and tries again itself
    )


def _encoded(event: LifecycleEvent) -> str:
    return json.dumps(asdict(event))


async def emit(redis: Redis, event: LifecycleEvent) -> None:
    """Append an event from outside a workflow (the edge's opt-outs)."""
    await redis.xadd(keys.sink_events(), {"e": _encoded(event)}, maxlen=STREAM_LENGTH, approximate=True)


def announcing_opt_outs(receive: Receive, redis: Redis, pending: PendingOptOuts | None = None) -> Receive:
    """`receive`, emitting `customer.opted_out` for each new opt-out (STOP) it takes. One taken
    while Redis is away is kept in Temporal (`PendingOptOuts`), and announced as it is written to
    Redis; one whose announcement fails here is kept there too, to be announced then."""

    async def _receive(binding: NumberBinding, message: InboundMessage) -> Verdict:
        verdict = await receive(binding, message)
        if verdict.action == "opted_out" and verdict.reply:  # a confirmation: the opt-out is new
            conversation = message.conversation.id
            found = LifecycleEvent(f"opt-out-{message.id}", OPTED_OUT, datetime.now(UTC).isoformat(), conversation)
            try:
                await emit(redis, found)
            except Exception as error:  # noqa: BLE001 - the opt-out holds; its event waits in Temporal
                if pending is None:
                    log.warning("opt-out of %s not emitted to sinks: %r", conversation, error)
                    return verdict
                word = message.text.strip()
                await pending.record(
                    message.number, message.customer, "out", word, conversation=conversation, announce=True
                )
        return verdict

    return _receive


class SinkRelay:
    def __init__(self, redis: Redis, binding: SinkBinding, sink: Sink, *, batch: int = 100) -> None:
        self.redis = redis
        self.binding = binding
        self.sink = sink
        self.batch = batch
        self.group = f"sink:{binding.name}"
        # The last entry this relay delivered: when Redis went away before its acknowledgement,
        # the entry comes back pending, and is acknowledged without going out again.
        self._delivered_through = (0, 0)

    async def ensure_group(self) -> None:
        """The sink's group, reading from the stream's start the first time (events emitted before
        the first relay ran are not lost)."""
        try:
            await self.redis.xgroup_create(keys.sink_events(), self.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def run(self) -> None:
        await self.ensure_group()
        while True:
            await self.relay_once(block=READ_BLOCK)

    async def relay_once(self, *, block: timedelta | None = None) -> int:
        """Deliver the next batch (what an earlier relay left pending first); how many entries."""
        entries = await self._read("0") or await self._read(">", block)
        if not entries:
            return 0
        new = [fields for entry_id, fields in entries if _entry(entry_id) > self._delivered_through]
        events = [_event(fields) for fields in new]
        wanted = [event for event in events if event is not None and event.type in self.binding.types]
        if wanted:
            await self._deliver(wanted)
        self._delivered_through = max(self._delivered_through, _entry(entries[-1][0]))
        await self.redis.xack(keys.sink_events(), self.group, *[entry_id for entry_id, _ in entries])
        return len(entries)

    async def _read(self, start: str, block: timedelta | None = None) -> list[tuple[str, dict[str, str]]]:
        found: Any = await self.redis.xreadgroup(
            self.group,
            "relay",
            {keys.sink_events(): start},
            count=self.batch,
            block=int(block.total_seconds() * 1000) if block else None,
        )
        if not found:
            return []
        # RESP3 answers a map of streams, RESP2 a list of [stream, entries].
        entries = found[keys.sink_events()] if isinstance(found, dict) else found[0][1]
        return cast(list[tuple[str, dict[str, str]]], entries)

    async def _deliver(self, events: Sequence[LifecycleEvent]) -> None:
        """Deliver the batch, retrying for as long as the sink may be out (`GIVE_UP_AFTER`): an
        outage of the destination delays what is behind it, in order; put aside only what the
        destination refuses, or what fails that long."""
        backoff = FIRST_BACKOFF
        give_up = asyncio.get_running_loop().time() + GIVE_UP_AFTER.total_seconds()
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.sink.deliver(events)
                return
            except SinkFailed as failed:
                if not failed.retryable or asyncio.get_running_loop().time() >= give_up:
                    await self._put_aside(events, str(failed), attempt)
                    return
                log.warning("sink %s: %s; retrying in %s", self.binding.name, failed, backoff)
            except Exception as error:  # noqa: BLE001 - a sink's bug must not stop the relay
                await self._put_aside(events, f"the sink raised {error!r}", attempt)
                return
            await asyncio.sleep(backoff.total_seconds())
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _put_aside(self, events: Sequence[LifecycleEvent], reason: str, attempts: int) -> None:
        log.warning(
            "sink %s: %d events put aside after %d attempts: %s", self.binding.name, len(events), attempts, reason
        )
        letter: dict[Any, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "attempts": str(attempts),
            "events": json.dumps([asdict(event) for event in events]),
        }
        await self.redis.xadd(keys.sink_dead(self.binding.name), letter, maxlen=DEAD_KEPT, approximate=True)


async def dead_letters(redis: Redis, sink: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """A sink's batches put aside, oldest first: when, why, after how many attempts, which events."""
    entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(keys.sink_dead(sink), count=limit))
    return [
        {
            "id": entry_id,
            "at": fields["at"],
            "reason": fields["reason"],
            "attempts": int(fields["attempts"]),
            "events": json.loads(fields["events"]),
        }
        for entry_id, fields in entries
    ]


async def source_counts(redis: Redis, source: str) -> dict[str, int]:
    """A source's counters (`chatflow.journeys.sources`): events received by type, refused
    signatures, duplicates, unmatched keys, ignored types."""
    raw = cast(dict[str, str], await redis.hgetall(keys.source_counts(source)))
    return {what: int(count) for what, count in sorted(raw.items())}


def _entry(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _event(fields: dict[str, str]) -> LifecycleEvent | None:
    try:
        return LifecycleEvent(**json.loads(fields["e"]))
    except (KeyError, TypeError, ValueError):
        log.warning("an unreadable lifecycle event was skipped")
        return None
