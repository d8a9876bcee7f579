"""Lifecycle events, kept in order in Redis and relayed to each sink.

Workflows emit (`chatflow.temporal.lifecycle`) into one stream, `chatflow:sinks:events`, through
the worker's `StreamEmitter`, which keeps what Redis cannot take while it is away in Temporal
(`KeptInTemporal`) and appends it, in order, once it is back: an outage delays events, it does
not lose them. Each sink reads the
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
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import Invalid, NotFound
from chatflow.domain.messages import InboundMessage
from chatflow.domain.sink import OPTED_OUT, LifecycleEvent, Sink, SinkBinding, SinkFailed
from chatflow.edge import keys
from chatflow.edge.inbound import PendingOptOuts, Receive, Verdict

log = logging.getLogger(__name__)

T = TypeVar("T")

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

    While Redis is away the events are held, not lost: each batch Redis does not take is kept in
    Temporal (`keeper`, when the worker gives one), which outlives this process, and appended once
    Redis answers again, in order, before anything emitted after it (so none of a conversation's
    events overtakes another). Batches a process kept and did not append (it stopped or died
    during the outage) are appended by the next emitter that starts, or that sees Redis come back.
    Without a keeper (or with Temporal away too) they wait in this process, at most `hold_limit`
    of them; beyond that the oldest are dropped, and said so in the log.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keeper: KeptInTemporal | None = None,
        timeout: float = 0.5,
        hold_limit: int = HOLD_LIMIT,
    ) -> None:
        self._redis = _sync_client(redis, timeout)
        self._append = self._redis.register_script(_APPEND)
        self._keeper = keeper
        self._held: deque[LifecycleEvent] = deque()
        self._kept: deque[tuple[str, list[LifecycleEvent]]] = deque()  # in Temporal, in order
        self._hold_limit = hold_limit
        self._changed = threading.Condition()
        self._closing = False
        self._flusher: threading.Thread | None = None
        self.dropped = 0  # events held past `hold_limit`, dropped
        if keeper is not None:
            self._start_flusher()  # to append what emitters before this one kept

    @property
    def held(self) -> int:
        """Events handed over and not yet appended, nor kept in Temporal."""
        return len(self._held)

    @property
    def kept(self) -> int:
        """Batches this emitter kept in Temporal and has not appended yet."""
        return len(self._kept)

    def __call__(self, event: LifecycleEvent) -> None:
        with self._changed:
            if len(self._held) >= self._hold_limit:
                self._held.popleft()
                self.dropped += 1
                log.error("%d lifecycle events held past the limit of %d dropped", self.dropped, self._hold_limit)
            self._held.append(event)
            if self._flusher is None:
                self._start_flusher()
            self._changed.notify()

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(target=self._flush, name="chatflow-sink-events", daemon=True)
        self._flusher.start()

    def _flush(self) -> None:
        """Append what is kept and held, oldest first, a batch at a time, while the emitter is open."""
        pause, away = FLUSH_PAUSE, False
        others = self._keeper is not None  # batches other emitters kept, to look for
        while True:
            with self._changed:
                while not (self._held or self._kept or others) and not self._closing:
                    self._changed.wait()
                if not (self._held or self._kept) and (self._closing or not others):
                    return
                batch = list(itertools.islice(self._held, FLUSH_BATCH))
            try:
                if others or self._kept:
                    self._redis.ping()  # before Temporal is asked anything: Redis must be back
                if others:
                    self._append_others()
                    others = False
                while self._kept:
                    record, events = self._kept[0]
                    self._add(events, record)
                    self._done(record)
                    self._kept.popleft()
                if batch:
                    self._add(batch)
                    with self._changed:
                        for _ in batch:
                            self._held.popleft()
            except Exception as error:  # noqa: BLE001 - Redis away: kept, tried again a little later
                if not away:
                    log.warning("Redis away (%r): lifecycle events kept until it is back", error)
                away = True
                if batch:
                    self._keep(batch)
                with self._changed:
                    if self._closing:
                        return
                    self._changed.wait(pause.total_seconds())
                pause = min(pause * 2, AWAY_PAUSE)
                continue
            if away:
                log.info("Redis back: lifecycle events kept while it was away appended")
                others = self._keeper is not None  # another worker may have kept some and stopped
            pause, away = FLUSH_PAUSE, False

    def _keep(self, batch: list[LifecycleEvent]) -> None:
        """Move `batch` from this process's memory into Temporal (else it stays held)."""
        if self._keeper is None:
            return
        try:
            record = self._keeper.keep(batch)
        except Exception as error:  # noqa: BLE001 - Temporal away too: held in memory meanwhile
            log.warning("lifecycle events: Temporal away too (%r): %d held in memory", error, self.held)
            return
        with self._changed:
            self._kept.append((record, batch))
            for _ in batch:
                self._held.popleft()

    def _append_others(self) -> None:
        """Append the batches other emitters kept in Temporal and did not append, oldest first."""
        keeper = self._keeper
        if keeper is None:
            return
        mine = {record for record, _ in self._kept}
        try:
            records = [record for record in keeper.records() if record not in mine]
        except Exception as error:  # noqa: BLE001 - Temporal away: looked for after the next outage
            log.warning("lifecycle events kept in Temporal: not looked for (%r)", error)
            return
        for record in records:
            try:
                events = keeper.events(record)
            except Exception as error:  # noqa: BLE001 - appended by another emitter meanwhile, say
                log.info("lifecycle events kept as %s: not read (%r)", record, error)
                continue
            self._add(events, record)
            self._done(record)
        if records:
            log.info("lifecycle events: %d batches other workers kept in Temporal appended", len(records))

    def _done(self, record: str) -> None:
        if self._keeper is None:
            return
        try:
            self._keeper.done(record)
        except Exception as error:  # noqa: BLE001 - appended once anyway (the record is noted in Redis)
            log.info("lifecycle events kept as %s: appended, record not ended (%r)", record, error)

    def _add(self, events: Sequence[LifecycleEvent], record: str = "") -> None:
        # One script: the batch is appended whole or not at all, so a retry repeats none of it; a
        # batch kept in Temporal is appended once, whoever appends it and however often.
        self._append(
            keys=[keys.sink_events(), keys.sink_appended()],
            args=[STREAM_LENGTH, record, int(time.time() * 1000), *(_encoded(event) for event in events)],
        )

    def close(self, *, wait: timedelta = timedelta(seconds=2)) -> None:
        """Stop. What Redis has not taken stays kept in Temporal for the next emitter; what is
        held in memory (Temporal away too) gets `wait` to go, else it is said lost in the log."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        if self._flusher is not None:
            self._flusher.join(wait.total_seconds())
        if self._held:
            log.error("%d lifecycle events held while Redis was away are lost with this process", self.held)
        self._redis.close()


class KeptInTemporal:
    """Batches of lifecycle events kept in Temporal while Redis is away, as STOPs are
    (`PendingOptOuts`): each a workflow execution that no worker runs (its task queue has no
    poller), the batch its input, its id in the order it was kept, under `scope` (the task queue:
    the workers that share one share a Redis). Called from the emitter's thread; the client's
    calls run on the worker's event loop, `loop`."""

    WORKFLOW = "chatflow-kept-sink-events"
    TASK_QUEUE = "chatflow-kept-sink-events"  # polled by nobody: the executions are records, not work

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop, *, scope: str, timeout: float = 10.0) -> None:
        self._client = client
        self._loop = loop
        self._prefix = f"chatflow-sink-events:{scope}:"
        self._timeout = timeout

    def keep(self, events: Sequence[LifecycleEvent]) -> str:
        record = f"{self._prefix}{time.time_ns():020d}:{uuid.uuid4().hex[:8]}"
        self._run(
            self._client.start_workflow(
                self.WORKFLOW, [asdict(event) for event in events], id=record, task_queue=self.TASK_QUEUE
            )
        )
        return record

    def records(self) -> list[str]:
        """The batches kept and not appended, oldest first."""
        return sorted(self._run(self._records()))

    def events(self, record: str) -> list[LifecycleEvent]:
        return self._run(self._events(record))

    def done(self, record: str) -> None:
        self._run(self._done(record))

    async def _records(self) -> list[str]:
        query = f"WorkflowType = '{self.WORKFLOW}' AND ExecutionStatus = 'Running'"
        found = [execution.id async for execution in self._client.list_workflows(query)]
        return [record for record in found if record.startswith(self._prefix)]

    async def _events(self, record: str) -> list[LifecycleEvent]:
        async for event in self._client.get_workflow_handle(record).fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [batch] = await self._client.data_converter.decode(payloads, [list])
            return [LifecycleEvent(**fields) for fields in batch]
        return []

    async def _done(self, record: str) -> None:
        try:
            await self._client.get_workflow_handle(record).terminate(reason="appended to Redis")
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:  # ended by another emitter: fine
                raise

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(self._timeout)


# KEYS the stream, the batches kept in Temporal that were appended (a sorted set, in the stream's
# hash slot); ARGV the stream's length (roughly), the batch's record ("" for none), now (ms), then
# the events, in order. A record appended before is not appended again (kept for a week).
_APPEND = """
if ARGV[2] ~= '' then
  if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - 604800000)
end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 3
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
        """Deliver the next batch (a dead letter sent again first, then what an earlier relay left
        pending); how many entries."""
        again = await self.redis.lindex(keys.sink_again(self.binding.name), 0)
        if again is not None:
            await self._deliver([LifecycleEvent(**fields) for fields in json.loads(again)])
            await self.redis.lpop(keys.sink_again(self.binding.name))
            return 1
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


# KEYS the sink's dead letters, the batches to deliver again; ARGV the letter's id. 1 when moved.
_AGAIN = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local fields = found[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'events' then redis.call('RPUSH', KEYS[2], fields[i + 1]) end
end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


async def redeliver(redis: Redis, sink: str, letter: str) -> None:
    """Send a dead letter again: its batch goes to the sink's relay, delivered before what waits
    in the stream (and put aside again, with the new reason, if it fails again)."""
    if not re.fullmatch(r"\d{1,20}-\d{1,20}", letter):
        raise Invalid(f"{letter!r} is not a dead letter's id (as GET /api/sinks/{sink}/dead-letters lists them)")
    moved = await redis.register_script(_AGAIN)(keys=[keys.sink_dead(sink), keys.sink_again(sink)], args=[letter])
    if not int(moved):
        raise NotFound(f"sink {sink!r} has no dead letter {letter}")


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
