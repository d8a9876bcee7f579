"""Several conversations per customer and number: the ones beside the main one, and which of
them gets a reply.

A customer's main conversation on a number has the id `ConversationRef.id` has always given; a
journey started with when_busy "beside" while it runs gets one of its own, named after it
(`chat:sms:+15005550006:+14155550100~k2x9q4`). Their ids are kept in a Redis set under the main
one's id (`keys.beside`), which outlives the longest of them, so that:

- the forwarder knows, from one EXISTS per batch of messages, whether a customer has any: a
  customer with only their main conversation costs what they always did (no Temporal query, no
  extra signal), and their message is signal-with-started into the main one;
- a customer with several has their reply routed (`ReplyRouter`): each running one is asked
  whether it waits for an answer and would take this one (`ConversationWorkflow.reply_fit`, a
  query: no history event, no action); the reply goes to a conversation that takes it, else to
  one that waits; among them the highest `reply_priority`, then the one that asked last. None
  waits: to the main one, as always (starting the number's flow when it does not run). The
  decision is kept per message id, so a retry of the same message goes to the same conversation.
- STOP ends each of them (`chatflow.edge.inbound`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import cast

from redis.asyncio import Redis
from temporalio.client import Client

from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.dedupe import SEEN_TTL
from chatflow.temporal.client import reply_fit
from chatflow.temporal.records import ReplyFit

log = logging.getLogger(__name__)

# Kept past the longest conversation beside the main one (its flow's expires_after) by this much.
KEPT_AFTER = timedelta(days=1)


class BesideConversations:
    """The set of a customer's conversations beside their main one on a number, in Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, main: str, conversation: str, lasts: timedelta) -> None:
        """Note `conversation` beside `main`, for at least `lasts` (its flow's expires_after)."""
        ttl = int((lasts + KEPT_AFTER).total_seconds())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(keys.beside(main), conversation)
            pipe.expire(keys.beside(main), ttl, nx=True)  # a new set
            pipe.expire(keys.beside(main), ttl, gt=True)  # or one that would expire before this one ends
            await pipe.execute()

    async def of(self, main: str) -> list[str]:
        """The conversations noted beside `main` (some may have ended), in a stable order."""
        return sorted(cast(set[str], await self._redis.smembers(keys.beside(main))))

    async def which_have(self, mains: Iterable[str]) -> set[str]:
        """Of the main conversations `mains`, those with conversations beside them: one round trip."""
        mains = list(dict.fromkeys(mains))
        if not mains:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for main in mains:
                pipe.exists(keys.beside(main))
            found = await pipe.execute()
        return {main for main, count in zip(mains, found, strict=True) if count}

    async def forget(self, main: str, conversations: Iterable[str]) -> None:
        ended = list(conversations)
        if ended:
            await self._redis.srem(keys.beside(main), *ended)


def chosen(fits: dict[str, ReplyFit | None]) -> str | None:
    """The conversation a reply goes to, of those asked (id -> how it would take the reply; None
    for one that does not run): None when none waits for an answer."""
    waiting = {id: fit for id, fit in fits.items() if fit is not None and fit.waiting}
    taking = {id: fit for id, fit in waiting.items() if fit.fits} or waiting
    if not taking:
        return None
    return max(taking, key=lambda id: (taking[id].priority, taking[id].asked_at))


class ReplyRouter:
    """Which of a customer's conversations on a number gets their message (see the module)."""

    def __init__(self, redis: Redis, client: Client) -> None:
        self._redis = redis
        self._client = client
        self.beside = BesideConversations(redis)

    async def target(self, message: InboundMessage) -> str:
        """The id of the conversation `message` goes to: its main conversation's unless one
        beside it waits for the answer (see the module)."""
        main = message.conversation.id
        route = keys.reply_route(message.id)
        earlier = cast(str | None, await self._redis.get(route))
        if earlier:
            return earlier
        beside = await self.beside.of(main)
        ids = [main, *beside]
        answers = await asyncio.gather(*(reply_fit(self._client, id, message) for id in ids))
        fits = dict(zip(ids, answers, strict=True))
        await self.beside.forget(main, [id for id in beside if fits[id] is None])
        target = chosen(fits) or main
        if not await self._redis.set(route, target, nx=True, ex=SEEN_TTL):
            target = cast(str | None, await self._redis.get(route)) or target  # decided meanwhile: that one
        if target != main:
            log.info("reply %s goes to %s, beside %s (it waits for it)", message.id, target, main)
        return target
