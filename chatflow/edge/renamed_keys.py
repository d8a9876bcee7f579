"""Keys an earlier chatflow wrote under other names, moved to today's when the web app starts.

Queued journeys and digest windows wait in Redis until their time comes. Their keys took a hash
tag so that a Redis Cluster keeps each group in one slot (`chatflow.edge.keys`); without this
move, what was waiting under the old names at an upgrade would never start or be sent. Only a
single node can hold old names: no earlier chatflow ran on a cluster.

A web process of the earlier version still running beside a new one (a rolling deploy) may write
an old name after the move: the move runs again at every start, and merges into what is there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from chatflow.edge import keys

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]


async def move_renamed_keys(redis: Redis) -> int:
    """Move every key still under an old name to its new one; how many were moved."""
    if isinstance(redis, RedisCluster):
        return 0
    moved = 0
    for old, new in keys.NAMES_BEFORE_HASH_TAGS:
        moved += await _move(redis, old, new)
    for prefix, build in keys.PREFIXES_BEFORE_HASH_TAGS:
        async for old in redis.scan_iter(match=f"{prefix}*", count=500):
            moved += await _move(redis, old, build(old[len(prefix) :]))
    if moved:
        log.info("moved %d Redis keys from their names before this version", moved)
    return moved


def moved_first(redis: Redis, loop: Loop) -> Loop:
    """`loop` (the journey queue's), once the keys it and the digests read are under today's names."""

    async def run() -> None:
        await move_renamed_keys(redis)
        await loop()

    return run


async def _move(redis: Redis, old: str, new: str) -> int:
    if not await redis.exists(old):
        return 0
    if await redis.renamenx(old, new):
        return 1
    kind = await redis.type(old)
    # Both names hold something (a rolling deploy): merge, keeping every entry.
    if kind == "list":  # queued journeys, oldest first: after those already under the new name
        while await redis.lmove(old, new, "LEFT", "RIGHT") is not None:
            pass
        return 1
    if kind not in ("set", "zset"):
        if kind != "none":  # "none": gone since it was listed
            log.warning("Redis key %s has a new name, %s, and both hold a %s: left as it is", old, new, kind)
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        if kind == "set":  # the queue's index of conversations
            pipe.sunionstore(new, [new, old])
        else:  # digest windows' due times: the earlier wins
            pipe.zunionstore(new, [new, old], aggregate="MIN")
        pipe.delete(old)
        await pipe.execute()
    return 1
