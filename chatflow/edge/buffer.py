"""No inbound message lost while Temporal is unreachable: a Redis buffer and its forwarder.

The web tier answers a webhook once the message is in Redis (an XADD: far cheaper than the
Temporal round trip), so providers never time out and retry into an outage. Messages go to one
of N streams chosen by their conversation, so a conversation's messages keep their order; a
forwarder owns each stream under a lease, signal-with-starts its head, and deletes the entry only
after Temporal has accepted it. While Temporal is away the head is retried and nothing behind
it moves: order per conversation is kept, other partitions drain independently.

Nothing twice: before handing an entry on, the owner marks it as being forwarded
(`keys.inbox_forwarding`), and deletes entry and mark together once Temporal took it. An owner
that finds the mark on the head (its predecessor died, or lost Redis, between Temporal's answer
and the delete), or that retries after a failed attempt (Temporal may have taken it all the
same), hands the entry on with `deliver_again`: a conversation that received it and has ended
is never restarted by it; a running one drops the repeat by its seen-set.

Nothing wedges: a message over the size limit, unreadable, or refused by Temporal a bounded
number of times goes to the dead letters (`chatflow.edge.dead_letters`) and the next one moves.

Leases are short (LEASE) and renewed by the owner's own task every RENEW_EVERY, so the
partitions of a forwarder that died are taken over within about LEASE + ACQUIRE_EVERY; one
stopped gracefully hands its partitions over at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import NoScriptError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.codec import fields_of, inbound_from
from chatflow.domain.messages import InboundMessage
from chatflow.domain.tasks import stop_tasks
from chatflow.edge import keys
from chatflow.edge.beside import ReplyRouter
from chatflow.edge.dedupe import SEEN_TTL
from chatflow.edge.delivery import (
    MAX_MESSAGE_BYTES,
    REDIS_AWAY,
    NotReplicated,
    Race,
    deliver_again,
    encoded_size,
)
from chatflow.edge.keys import PARTITIONS as PARTITIONS
from chatflow.edge.keys import partition_of as partition_of
from chatflow.temporal.client import deliver, signal_inbound
from chatflow.temporal.constants import TASK_QUEUE

log = logging.getLogger(__name__)

# A partition's lease; its owner renews it every RENEW_EVERY and others try for it every
# ACQUIRE_EVERY, so a dead owner's partitions move on within LEASE + ACQUIRE_EVERY.
LEASE = timedelta(seconds=1.5)
RENEW_EVERY = timedelta(seconds=0.5)
ACQUIRE_EVERY = timedelta(seconds=0.25)
# A message Temporal answers with an error (not "away") is put aside after MAX_TRIES tries: at
# once for INVALID_ARGUMENT (about this message: too big, an id too long), and for any other
# error only once it has lasted REFUSED_FOR too, so a passing server error sets nothing aside.
MAX_TRIES = 5
REFUSED_FOR = timedelta(seconds=15)
# Dead letters kept, the oldest dropped past it (approximately: Redis trims whole nodes); the
# counter chatflow_dead_letters_total counts every one.
DEAD_LETTERS_KEPT = 10_000

# Redis replicates asynchronously: a master that dies before its replica has a message it took
# takes the message with it when the replica is promoted. With `replica_acks`, a message is
# acknowledged only once that many of its master's replicas have it (WAIT), within this long;
# else it goes straight to Temporal (`NotReplicated`, handled as Redis away).
REPLICA_ACK_WAIT = timedelta(milliseconds=500)

# Claim the message id and buffer the message in one step, so a repeat is never buffered and a
# buffered message is always marked seen (two steps could lose it if Redis failed in between).
_ENQUEUE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
  return 1
end
return 0
"""

# What a webhook's ordinary message costs: one round trip. The customer's opt-out checked, the id
# claimed and the message buffered in one step: -1 opted out (nothing claimed, so a START then a
# retry of it still gets through), 0 a repeat, 1 buffered. On one node only: the opt-outs are in
# the number's slot, not the partition's, so on a cluster the opt-out is read first (`admit`).
_ADMIT = """
if redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 1 then return -1 end
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
  return 1
end
return 0
"""

_ACQUIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Before handing an entry on: -1 when the lease is no longer ours (a fence: nothing is forwarded
# without it), 1 when the entry was already marked (an earlier attempt may have reached Temporal).
_BEGIN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local before = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[2])
if before == ARGV[2] then return 1 end
return 0
"""

# Temporal took the entry: out of the buffer, and its mark with it.
_DONE = """
redis.call('XDEL', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

# _DONE of the entry Temporal took last (ARGV[3]), then _BEGIN of the next: one round trip a
# message instead of two while a partition has a backlog. KEYS owner, mark, stream.
_DONE_THEN_BEGIN = """
redis.call('XDEL', KEYS[3], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local before = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[2])
if before == ARGV[2] then return 1 end
return 0
"""

# Temporal is away, or refuses everything alike (credentials, rate limits): waited out, for as
# long as it takes, never a reason to put one message aside.
_TEMPORAL_AWAY = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.NOT_FOUND,  # the namespace
}

Kind = Literal["too_large", "unreadable", "refused"]
Admitted = Literal["buffered", "duplicate", "opted_out"]
Forwarded = Literal["taken", "buried", "lost"]
OnDeadLetter = Callable[[Kind], None]


def encode(message: InboundMessage, flow: str) -> str:
    return json.dumps({"flow": flow, "message": fields_of(message)})


def decode(raw: str) -> tuple[InboundMessage, str]:
    """ValueError, TypeError or KeyError when `raw` is not an encoded message."""
    data: dict[str, Any] = json.loads(raw)
    return inbound_from(data["message"]), str(data["flow"])


def _entry_ms(entry_id: str) -> int:
    """When a stream entry was added, in Redis's milliseconds: its id is that, then a sequence."""
    milliseconds = entry_id.partition("-")[0]
    return int(milliseconds) if milliseconds.isdigit() else 0


def entry_time(entry_id: str) -> datetime:
    """When a stream entry was added."""
    return datetime.fromtimestamp(_entry_ms(entry_id) / 1000, UTC)


class BufferedDelivery:
    """A `Deliver` that buffers the message (deduplicated) and returns at once."""

    def __init__(
        self,
        redis: Redis,
        *,
        partitions: int = PARTITIONS,
        seen_ttl: timedelta = SEEN_TTL,
        replica_acks: int = 0,
        replica_ack_wait: timedelta = REPLICA_ACK_WAIT,
    ) -> None:
        """`replica_acks`: replicas that must have a message before it counts as taken."""
        self._partitions = partitions
        self._seen_ttl = int(seen_ttl.total_seconds())
        self._replica_acks = replica_acks
        self._replica_ack_ms = int(replica_ack_wait.total_seconds() * 1000)
        self._redis = redis
        self._cluster = isinstance(redis, RedisCluster)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._admit = redis.register_script(_ADMIT)

    async def __call__(self, message: InboundMessage, flow: str) -> None:
        partition = partition_of(message.conversation.id, self._partitions)
        await self._enqueue(
            keys=[keys.seen(message.id, partition), keys.inbox(partition)],
            args=[self._seen_ttl, encode(message, flow)],
        )
        await self._replicated(message.id, partition)

    async def admit(self, message: InboundMessage, flow: str, scope: str = "") -> Admitted:
        """Buffer the message unless its customer opted out of the number's consent `scope` (its
        brand's; by default the number itself) or it is a repeat."""
        partition = partition_of(message.conversation.id, self._partitions)
        if self._cluster:
            # Two round trips: a STOP landing between them is as if it came just after.
            if await self._redis.sismember(keys.opted_out(scope or message.number), message.customer):
                return "opted_out"
            outcome = int(
                await self._enqueue(
                    keys=[keys.seen(message.id, partition), keys.inbox(partition)],
                    args=[self._seen_ttl, encode(message, flow)],
                )
            )
        else:
            outcome = int(
                await self._admit(
                    keys=[
                        keys.seen(message.id, partition),
                        keys.inbox(partition),
                        keys.opted_out(scope or message.number),
                    ],
                    args=[self._seen_ttl, encode(message, flow), message.customer],
                )
            )
        if outcome < 0:
            return "opted_out"
        # A repeat too: the first try may have been answered NotReplicated and be retried now.
        await self._replicated(message.id, partition)
        return "buffered" if outcome else "duplicate"

    async def _replicated(self, message_id: str, partition: int) -> None:
        """NotReplicated unless `replica_acks` replicas of the master holding the message have it.

        WAIT counts the replicas that have the writes of the connection it is sent on, so it
        follows a write of the message's own on that connection: the claim's TTL set again,
        which also says the claim (written with the message, in one script) is still there. A
        claim gone means a failover since lost the message: not taken, and the provider's retry
        of it is not a repeat. Replication is in order, so a replica with this write has every
        earlier one, the message's included, however long ago it was buffered."""
        if not self._replica_acks:
            return
        seen = keys.seen(message_id, partition)
        commands = [("EXPIRE", seen, self._seen_ttl), ("WAIT", self._replica_acks, self._replica_ack_ms)]
        if isinstance(self._redis, RedisCluster):
            # Both on one connection of the node holding the key (a cluster pipeline may send a
            # command again on another after an error, where WAIT would count nothing of ours).
            node = self._redis.get_node_from_key(seen)
            sent = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
            await node.execute_pipeline(sent)
            answers = [command.result for command in sent]
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                answers = await pipe.execute(raise_on_error=False)
        still, replicas = answers
        for answer in answers:
            if isinstance(answer, Exception):  # the node moved or went away meanwhile
                raise NotReplicated(
                    f"message {message_id}: could not ask Redis whether its replicas have it: {answer!r}"
                )
        if not still:
            raise NotReplicated(f"message {message_id}: its claim is gone from Redis, a failover lost it")
        if not isinstance(replicas, int) or replicas < self._replica_acks:
            raise NotReplicated(
                f"message {message_id}: {replicas!r} of the {self._replica_acks} replicas required "
                f"confirmed it within {self._replica_ack_ms} ms"
            )


class BufferBarrier:
    """`chatflow.temporal.activities.Barrier` on the buffer: a conversation that received a message
    straight from the web tier while Redis was away waits here for the ones the buffer held.

    Its messages' partition is drained of everything added before the call once its head entry
    is younger than the call (or it is empty): the forwarder deletes an entry only after Temporal
    took it, so by then every older message of the conversation is in the conversation's history.
    Times are Redis's own (TIME, and the entry ids it wrote): no clock skew between hosts.
    """

    def __init__(
        self, redis: Redis, *, partitions: int = PARTITIONS, every: timedelta = timedelta(seconds=0.25)
    ) -> None:
        self._redis = redis
        self._partitions = partitions
        self._every = every.total_seconds()

    async def drained(self, conversation: str) -> None:
        seconds, microseconds = await self._redis.time()
        began = int(seconds) * 1000 + int(microseconds) // 1000
        stream = keys.inbox(partition_of(conversation, self._partitions))
        while True:
            head = cast(list[tuple[str, dict[str, str]]], await self._redis.xrange(stream, count=1))
            if not head or _entry_ms(head[0][0]) > began:
                return
            await asyncio.sleep(self._every)


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
        lease: timedelta = LEASE,
        renew_every: timedelta = RENEW_EVERY,
        acquire_every: timedelta = ACQUIRE_EVERY,
        max_backoff: timedelta = timedelta(seconds=2),
        max_tries: int = MAX_TRIES,
        refused_for: timedelta = REFUSED_FOR,
        batch: int = 100,
        on_dead_letter: OnDeadLetter | None = None,
    ) -> None:
        self._redis = redis
        self._client = client
        self._partitions = partitions
        self._task_queue = task_queue
        self._history_limit = history_limit
        self._lease_ms = int(lease.total_seconds() * 1000)
        self._renew_every = renew_every.total_seconds()
        self._acquire_every = acquire_every.total_seconds()
        self._max_backoff = max_backoff.total_seconds()
        self._max_tries = max_tries
        self._refused_for = refused_for.total_seconds()
        self._batch = batch
        self._on_dead_letter = on_dead_letter
        self._me = uuid.uuid4().hex
        self._held: set[int] = set()  # partitions whose lease this forwarder holds, as far as it knows
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._begin = redis.register_script(_BEGIN)
        self._done = redis.register_script(_DONE)
        self._done_then_begin = redis.register_script(_DONE_THEN_BEGIN)
        self._router = ReplyRouter(redis, client, task_queue=task_queue)

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._keep_leases())]
        tasks += [asyncio.create_task(self._drain(p)) for p in range(self._partitions)]
        try:
            await asyncio.gather(*tasks)
        finally:
            # Cancelled (the app's lifespan ends). gather returns as soon as one task is cancelled,
            # while another may have swallowed its cancellation inside redis-py (see
            # chatflow.domain.tasks): stop every one for sure, or it would forward on unseen.
            await _finish_despite_cancellation(stop_tasks(tasks))
            # Then hand the partitions over now, not when their leases expire.
            await _finish_despite_cancellation(self._release_all(), timeout=1.0)

    # -- leases ------------------------------------------------------------------------------

    async def _keep_leases(self) -> None:
        """Renew the leases held, on a clock of their own: however long a forward takes, a live
        owner keeps its partitions, and a dead one stops renewing at once."""
        while True:
            await asyncio.sleep(self._renew_every)
            held = sorted(self._held)
            if not held:
                continue
            try:
                renewed = await self._renew_all(held)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis away: the drain finds out, and waits
                log.debug("forwarder: cannot renew the leases of partitions %s: %r", held, error)
                continue
            for partition, kept in zip(held, renewed, strict=True):
                if not kept:
                    self._held.discard(partition)  # expired and taken: its task stops at the next entry

    async def _renew_all(self, held: list[int]) -> list[int]:
        # One round trip for all of them: renewing runs all the time, messages or not, and one
        # call per partition twice a second was most of an idle web process's CPU.
        for attempt in (1, 2):
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for partition in held:
                        await self._renew(
                            keys=[keys.inbox_owner(partition)], args=[self._me, self._lease_ms], client=pipe
                        )
                    return cast(list[int], await pipe.execute())
            except NoScriptError:
                # A cluster's pipeline does not load scripts as one node's does (nor does a
                # master promoted since): load it on every master, then once more.
                if attempt == 2:
                    raise
                await self._redis.script_load(_RENEW)
        raise AssertionError("unreachable")

    async def _release_all(self) -> None:
        self._held.clear()
        for partition in range(self._partitions):
            await self._release(keys=[keys.inbox_owner(partition)], args=[self._me])

    # -- forwarding --------------------------------------------------------------------------

    async def _drain(self, partition: int) -> None:
        stream = keys.inbox(partition)
        while True:
            try:
                if partition not in self._held:
                    if not await self._acquire(keys=[keys.inbox_owner(partition)], args=[self._me, self._lease_ms]):
                        await asyncio.sleep(self._acquire_every)
                        continue
                    self._held.add(partition)
                # Entries are deleted once forwarded, so reading after 0-0 is reading the head;
                # the block wakes us as soon as a webhook adds one.
                found = cast(
                    list[tuple[str, list[tuple[str, dict[str, str]]]]],
                    await self._redis.xread({stream: "0-0"}, count=self._batch, block=int(self._renew_every * 1000)),
                )
                # An entry Temporal took is deleted with the next one's start (`_DONE_THEN_BEGIN`),
                # or on its own after the batch. Should this task fail in between, the entry is
                # still at the head, marked: whoever reads it next hands it on with deliver_again,
                # as after a crash, and the conversation drops the repeat.
                taken = ""
                beside = await self._with_beside(found)
                try:
                    for _, entries in found:
                        for entry_id, fields in entries:
                            outcome = await self._forward(partition, entry_id, fields, taken, beside)
                            taken = entry_id if outcome == "taken" else ""
                            if outcome == "lost":
                                self._held.discard(partition)  # the new owner carries on from this entry
                                break
                finally:
                    if taken:
                        await self._done(keys=[stream, keys.inbox_forwarding(partition)], args=[taken])
            except asyncio.CancelledError:
                raise
            except REDIS_AWAY as error:  # the webhooks go straight to Temporal meanwhile
                log.warning("forwarder: partition %d: Redis away (%r)", partition, error)
                await asyncio.sleep(self._max_backoff)
            except Exception:  # never let one partition's task die
                log.exception("forwarder: partition %d", partition)
                await asyncio.sleep(self._max_backoff)

    async def _with_beside(self, found: list[tuple[str, list[tuple[str, dict[str, str]]]]]) -> set[str]:
        """Of the conversations the entries are for, those with conversations beside them (whose
        replies are routed, `chatflow.edge.beside`): one round trip for the whole batch."""
        mains: list[str] = []
        for _, entries in found:
            for _, fields in entries:
                try:
                    mains.append(decode(fields.get("m", ""))[0].conversation.id)
                except (ValueError, TypeError, KeyError):
                    continue  # put aside by `_forward`
        return await self._router.beside.which_have(mains)

    async def _forward(
        self, partition: int, entry_id: str, fields: dict[str, str], taken: str = "", beside: set[str] | None = None
    ) -> Forwarded:
        """Hand one entry on (or put it aside): "taken" when Temporal took it (it is still to be
        deleted), "lost" when the lease was lost first. `taken`: the entry Temporal took before
        this one, deleted here. `beside`: conversations with others beside them, whose
        messages go to the one that waits for them."""
        raw = fields.get("m", "")
        try:
            message, flow = decode(raw)
        except (ValueError, TypeError, KeyError) as error:
            if taken:
                await self._done(keys=[keys.inbox(partition), keys.inbox_forwarding(partition)], args=[taken])
            await self._bury(partition, entry_id, fields, f"cannot be read: {error!r}", "unreadable")
            return "buried"
        size = encoded_size(message)
        if size > MAX_MESSAGE_BYTES:
            if taken:
                await self._done(keys=[keys.inbox(partition), keys.inbox_forwarding(partition)], args=[taken])
            reason = f"too large: {size} bytes encoded, over the {MAX_MESSAGE_BYTES}-byte limit"
            await self._bury(partition, entry_id, fields, reason, "too_large")
            return "buried"
        owner, marker = keys.inbox_owner(partition), keys.inbox_forwarding(partition)
        again = fields.get("retried") == "1"  # a dead letter retried: it may have reached Temporal before
        since = entry_time(fields.get("first", entry_id))
        refusals, backoff, first_refused = 0, 0.05, 0.0
        loop = asyncio.get_running_loop()
        while True:
            if taken:
                began = int(
                    await self._done_then_begin(
                        keys=[owner, marker, keys.inbox(partition)], args=[self._me, entry_id, taken]
                    )
                )
                taken = ""
            else:
                began = int(await self._begin(keys=[owner, marker], args=[self._me, entry_id]))
            if began < 0:
                return "lost"
            again = again or began == 1
            try:
                if beside and message.conversation.id in beside:
                    target = await self._router.target(message)
                    if target is None:  # held while the customer is asked which conversation, or an answer
                        break
                    if target != message.conversation.id and await signal_inbound(self._client, target, message):
                        break
                if again:
                    await deliver_again(
                        self._client, message, flow, since=since,
                        task_queue=self._task_queue, history_limit=self._history_limit,
                    )  # fmt: skip
                else:
                    await deliver(
                        self._client, message, flow, task_queue=self._task_queue, history_limit=self._history_limit
                    )
                break
            except Exception as error:  # noqa: BLE001 - sorted below: Temporal away, or this message refused
                if _temporal_away(error):
                    log.warning("forwarder: Temporal unreachable for %s (%r); retrying", entry_id, error)
                else:
                    refusals += 1
                    first_refused = first_refused or loop.time()
                    about_it = isinstance(error, RPCError) and error.status == RPCStatusCode.INVALID_ARGUMENT
                    if refusals >= self._max_tries and (about_it or loop.time() - first_refused >= self._refused_for):
                        reason = f"Temporal refused it {refusals} times; last: {_describe(error)}"
                        await self._bury(partition, entry_id, fields, reason, "refused")
                        return "buried"
                    log.warning("forwarder: Temporal did not take %s (%s); retrying", entry_id, _describe(error))
            again = True  # a failed attempt may have reached Temporal all the same (a timeout, a reset)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
        return "taken"

    async def _bury(self, partition: int, entry_id: str, fields: dict[str, str], reason: str, kind: Kind) -> None:
        """To the dead letters (the format `chatflow.edge.dead_letters` reads): the dead letter
        first, then the entry out of the buffer; a crash between leaves it in both, never neither."""
        log.error("forwarder: %s cannot be handed on (%s); moved to the dead letters", entry_id, reason)
        await self._redis.xadd(
            keys.inbox_dead(),
            maxlen=DEAD_LETTERS_KEPT,
            approximate=True,
            fields={
                "m": fields.get("m", ""),
                "reason": reason,
                "kind": kind,
                "partition": str(partition),
                "entry": entry_id,
                "first": fields.get("first", entry_id),
            },
        )
        await self._redis.xdel(keys.inbox(partition), entry_id)
        if self._on_dead_letter is not None:
            self._on_dead_letter(kind)


def _temporal_away(error: Exception) -> bool:
    if isinstance(error, RPCError):
        return error.status in _TEMPORAL_AWAY
    if isinstance(error, REDIS_AWAY):
        return True  # routing a reply reads Redis: waited out alike
    # A lazy client that cannot connect raises RuntimeError; sockets OSError; a conversation
    # ending and starting under `deliver_again` Race.
    return isinstance(error, RuntimeError | OSError | Race)


def _describe(error: Exception) -> str:
    if isinstance(error, RPCError):
        status = error.status.name if error.status is not None else "?"
        return f"{status}: {error.message}"
    return repr(error)


async def _finish_despite_cancellation(work: Coroutine[Any, Any, None], timeout: float | None = None) -> None:
    """Run `work` to its end (or `timeout`) even while the caller is being cancelled again and
    again (`stop_tasks` does so until the task ends); the caller's own cancellation goes on after."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while not task.done():
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            task.cancel()
            break
        try:
            await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            continue
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.info("forwarder: could not hand its partitions over (%r); they expire in %s", task.exception(), LEASE)
