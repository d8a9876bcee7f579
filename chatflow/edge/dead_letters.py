"""Dead letters: buffered messages the forwarder could not hand to Temporal, kept aside so they
never block the messages behind them, and shown (`GET /api/dead-letters`, the
`chatflow_dead_letters_total` counter) until someone retries them.

A message lands here when it is over the size limit, cannot be read, or Temporal refused it
(answered with an error about it) a bounded number of times. Temporal being away is not a reason:
every message would fail alike, so the forwarder waits for it instead.

    for letter in await list_dead_letters(redis):
        print(letter.id, letter.at, letter.reason)
    await retry_dead_letter(redis, letter.id)   # back into the buffer, forwarded again

One stream, `chatflow:inbox:dead`, one entry per dead letter: the buffered message as it was
(`m`), why (`reason`, and `kind` for the counter), where it came from (`partition`, `entry`) and
when it was first buffered (`first`). A retried message goes back to the tail of its partition
marked `retried`, so the forwarder hands it on as one an earlier attempt may have handed on
already (`chatflow.edge.delivery.deliver_again`): retrying twice, or retrying a message Temporal did
take, never starts a conversation twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from chatflow.domain.errors import Invalid, NotFound
from chatflow.edge import keys
from chatflow.edge.buffer import PARTITIONS, decode, entry_time, partition_of
from chatflow.edge.delivery import MAX_MESSAGE_BYTES, encoded_size

log = logging.getLogger(__name__)

Entries = list[tuple[str, dict[str, str]]]  # as redis-py returns a stream with decode_responses=True


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the dead letter's own id (its entry in the dead-letter stream)
    at: str  # when it was put aside, ISO 8601 UTC
    reason: str
    kind: str
    message_id: str  # the provider's id of the message, "" when unreadable
    conversation: str  # "" when unreadable
    flow: str
    size: int  # bytes, as buffered
    first_buffered: str  # ISO 8601 UTC

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at,
            "reason": self.reason,
            "kind": self.kind,
            "message_id": self.message_id,
            "conversation": self.conversation,
            "flow": self.flow,
            "size": self.size,
            "first_buffered": self.first_buffered,
        }


async def list_dead_letters(redis: Redis, *, limit: int = 100) -> list[DeadLetter]:
    """The oldest `limit` dead letters, oldest first."""
    entries = cast(Entries, await redis.xrange(keys.inbox_dead(), count=limit))
    return [_letter(entry_id, fields) for entry_id, fields in entries]


async def count_dead_letters(redis: Redis) -> int:
    return int(await redis.xlen(keys.inbox_dead()))


async def retry_dead_letter(redis: Redis, id: str, *, partitions: int | None = None) -> str:
    """Put a dead letter back into the buffer, to be forwarded again; the new entry's id.

    NotFound when there is no such dead letter; Invalid when retrying cannot help (it is over the
    size limit or cannot be read)."""
    entries = cast(Entries, await redis.xrange(keys.inbox_dead(), min=id, max=id)) if _is_entry_id(id) else []
    if not entries:
        raise NotFound(f"no dead letter {id}")
    fields = entries[0][1]
    raw = fields.get("m", "")
    try:
        message, _ = decode(raw)
    except (ValueError, TypeError, KeyError) as error:
        raise Invalid(f"dead letter {id} cannot be read, so it cannot be retried: {error!r}") from None
    size = encoded_size(message)
    if size > MAX_MESSAGE_BYTES:
        raise Invalid(
            f"dead letter {id} is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit: it cannot be retried"
        )
    partition = partition_of(message.conversation.id, partitions or PARTITIONS)
    # Into the buffer first, then out of the dead letters: a crash between the two leaves it in
    # both, and a retried entry is handed on as one that may have been handed on already.
    entry = await redis.xadd(
        keys.inbox(partition), {"m": raw, "retried": "1", "first": fields.get("first", fields.get("entry", id))}
    )
    await redis.xdel(keys.inbox_dead(), id)
    log.info("dead letter %s (message %s) retried as %s", id, message.id, entry)
    return str(entry)


def _is_entry_id(id: str) -> bool:
    """A Redis stream id Redis would take: ASCII digits ("²" is a digit to Python, not to Redis),
    each part below 2**64."""
    milliseconds, dash, sequence = id.partition("-")
    return all(
        part.isascii() and part.isdigit() and int(part) < 2**64
        for part in ([milliseconds, sequence] if dash else [milliseconds])
    )


def _letter(entry_id: str, fields: dict[str, str]) -> DeadLetter:
    raw = fields.get("m", "")
    message_id = conversation = flow = ""
    try:
        message, flow = decode(raw)
        message_id = message.id
        conversation = message.conversation.id
    except (ValueError, TypeError, KeyError):
        pass
    return DeadLetter(
        id=entry_id,
        at=entry_time(entry_id).isoformat(),
        reason=fields.get("reason", ""),
        kind=fields.get("kind", "refused"),
        message_id=message_id,
        conversation=conversation,
        flow=flow,
        size=len(raw.encode()),
        first_buffered=entry_time(fields.get("first", fields.get("entry", entry_id))).isoformat(),
    )
