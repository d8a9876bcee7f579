"""Lifecycle events, kept in order in Redis and relayed to each sink.

Workflows emit (`chatflow.temporal.lifecycle`) into one stream, `chatflow:sinks:events`, so the
events of one conversation are in the order it had them. Each sink reads the stream through a
consumer group of its own (`SinkRelay`): a batch at a time, delivered in order; a batch that fails
retryably is tried again, with backoff, before anything behind it (in order per conversation
means no overtaking); one that fails for good, or keeps failing past `MAX_ATTEMPTS`, is put aside
in the sink's dead letters (`chatflow:sinks:<name>:dead`, `dead_letters`) with the reason, and the
relay goes on. A relay that dies mid-batch leaves it pending in its group: the next relay delivers
it again first (destinations drop repeats by event id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage
from chatflow.domain.sink import OPTED_OUT, LifecycleEvent, Sink, SinkBinding, SinkFailed
from chatflow.edge import keys
from chatflow.edge.inbound import Receive, Verdict

log = logging.getLogger(__name__)

STREAM_LENGTH = 100_000  # events kept in the stream (roughly): older ones are trimmed
MAX_ATTEMPTS = 8  # deliveries of one batch before it is put aside: about four minutes of backoff
FIRST_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=1)
READ_BLOCK = timedelta(seconds=1)
DEAD_KEPT = 10_000
AWAY_PAUSE = timedelta(seconds=5)  # the emitter leaves an unreachable Redis alone this long


class StreamEmitter:
    """The emitter a worker gives its workflows: one XADD per event on a client of its own, to the
    server `redis` talks to (workflows run on threads of their own, not on the worker's event
    loop), waiting at most `timeout` seconds so a Redis away never holds a workflow task up."""

    def __init__(self, redis: Redis, *, timeout: float = 0.5) -> None:
        self._redis: sync_redis.Redis | sync_redis.RedisCluster
        if isinstance(redis, RedisCluster):
            # A cluster (`?cluster=true`): a sync cluster client, from the nodes the async one knows.
            kwargs: dict[str, Any] = redis.connection_kwargs
            node = next(iter(redis.nodes_manager.startup_nodes.values()))  # known before any command
            self._redis = sync_redis.RedisCluster(
                host=node.host,
                port=node.port,
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                ssl="SSL" in kwargs.get("connection_class", sync_redis.Connection).__name__,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            return
        pool = redis.connection_pool
        given = pool.connection_kwargs
        where: dict[str, Any] = (
            {"unix_socket_path": given["path"]}
            if "path" in given
            else {"host": given.get("host", "localhost"), "port": given.get("port", 6379)}
        )
        self._redis = sync_redis.Redis(
            **where,
            db=given.get("db", 0),
            username=given.get("username"),
            password=given.get("password"),
            ssl="SSL" in pool.connection_class.__name__,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._away_until = 0.0

    def __call__(self, event: LifecycleEvent) -> None:
        # After a failure, Redis is not tried again for a while: each try may wait `timeout` on a
        # workflow thread, and a workflow task held up for seconds is taken for a deadlock.
        if time.monotonic() < self._away_until:
            raise ConnectionError("Redis was unreachable a moment ago")
        try:
            self._redis.xadd(
                keys.sink_events(), {"e": json.dumps(asdict(event))}, maxlen=STREAM_LENGTH, approximate=True
            )
        except Exception:
            self._away_until = time.monotonic() + AWAY_PAUSE.total_seconds()
            raise

    def close(self) -> None:
        self._redis.close()


async def emit(redis: Redis, event: LifecycleEvent) -> None:
    """Append an event from outside a workflow (the edge's opt-outs)."""
    await redis.xadd(keys.sink_events(), {"e": json.dumps(asdict(event))}, maxlen=STREAM_LENGTH, approximate=True)


def announcing_opt_outs(receive: Receive, redis: Redis) -> Receive:
    """`receive`, emitting `customer.opted_out` for each new opt-out (STOP) it takes."""

    async def _receive(binding: NumberBinding, message: InboundMessage) -> Verdict:
        verdict = await receive(binding, message)
        if verdict.action == "opted_out" and verdict.reply:  # a confirmation: the opt-out is new
            conversation = ConversationRef(message.channel, message.number, message.customer).id
            found = LifecycleEvent(f"opt-out-{message.id}", OPTED_OUT, datetime.now(UTC).isoformat(), conversation)
            try:
                await emit(redis, found)
            except Exception as error:  # noqa: BLE001 - the opt-out holds; only its event is lost
                log.warning("opt-out of %s not emitted to sinks: %r", conversation, error)
        return verdict

    return _receive


class SinkRelay:
    def __init__(self, redis: Redis, binding: SinkBinding, sink: Sink, *, batch: int = 100) -> None:
        self.redis = redis
        self.binding = binding
        self.sink = sink
        self.batch = batch
        self.group = f"sink:{binding.name}"

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
        events = [_event(fields) for _, fields in entries]
        wanted = [event for event in events if event is not None and event.type in self.binding.types]
        if wanted:
            await self._deliver(wanted)
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
        backoff = FIRST_BACKOFF
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self.sink.deliver(events)
                return
            except SinkFailed as failed:
                if not failed.retryable or attempt == MAX_ATTEMPTS:
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


def _event(fields: dict[str, str]) -> LifecycleEvent | None:
    try:
        return LifecycleEvent(**json.loads(fields["e"]))
    except (KeyError, TypeError, ValueError):
        log.warning("an unreadable lifecycle event was skipped")
        return None
