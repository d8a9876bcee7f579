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

from chatflow.domain.keywords import which_question
from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.dedupe import SEEN_TTL
from chatflow.temporal.client import answer_which, ask_which, reply_fit
from chatflow.temporal.records import ReplyFit
from chatflow.temporal.which import CHOSEN, WHICH_PREFIX, WhichInput, which_id

log = logging.getLogger(__name__)

# Kept past the longest conversation beside the main one (its flow's expires_after) by this much.
KEPT_AFTER = timedelta(days=1)
# How long a reply that fits several conversations is held while the customer is asked which one
# it is for; then it goes to the one that asked last.
WHICH_TIMEOUT = timedelta(hours=1)
ASKING_KEPT_AFTER = timedelta(minutes=1)
SPENT = "-"  # a route: the message answered the question which conversation, and is spent


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


def undecided(fits: dict[str, ReplyFit | None]) -> list[str]:
    """The conversations to ask the customer to choose between, the one that asked last first:
    those whose questions all take the reply, at the highest priority among them; [] unless
    there are two or more."""
    taking = {id: fit for id, fit in fits.items() if fit is not None and fit.waiting and fit.fits}
    if len(taking) < 2:
        return []
    top = max(fit.priority for fit in taking.values())
    tied = sorted((id for id, fit in taking.items() if fit.priority == top), key=lambda id: taking[id].asked_at)
    return tied[::-1] if len(tied) >= 2 else []


class ReplyRouter:
    """Which of a customer's conversations on a number gets their message (see the module)."""

    def __init__(
        self, redis: Redis, client: Client, *, task_queue: str, which_timeout: timedelta | None = None
    ) -> None:
        self._redis = redis
        self._client = client
        self._task_queue = task_queue
        self._which_timeout = which_timeout
        self.beside = BesideConversations(redis)

    async def target(self, message: InboundMessage) -> str | None:
        """The id of the conversation `message` goes to: its main conversation's unless one
        beside it waits for the answer (see the module). None when the message is held (the
        customer is asked which conversation it is for) or answered that question."""
        main = message.conversation.id
        route = keys.reply_route(message.id)
        earlier = cast(str | None, await self._redis.get(route))
        if earlier == SPENT:
            return None
        if earlier and not earlier.startswith(WHICH_PREFIX):
            return earlier
        asking = which_id(main)
        if earlier == asking:
            return None  # the reply held while the customer is asked, handed on again: the question has it
        if await self._redis.exists(keys.asking(main)):
            # The customer's next message after the question: an answer to it, or a new reply.
            answered = await answer_which(self._client, asking, message)
            if answered == CHOSEN:
                await self._redis.set(route, SPENT, ex=SEEN_TTL)
                return None
            await self._redis.delete(keys.asking(main))  # not an answer: the held reply went to its default
        beside = await self.beside.of(main)
        ids = [main, *beside]
        answers = await asyncio.gather(*(reply_fit(self._client, id, message) for id in ids))
        fits = dict(zip(ids, answers, strict=True))
        await self.beside.forget(main, [id for id in beside if fits[id] is None])
        choices = undecided(fits)
        if choices:
            await self._ask_which(message, choices, fits)
            return None
        target = chosen(fits) or main
        await self._redis.set(route, target, ex=SEEN_TTL)
        if target != main:
            log.info("reply %s goes to %s, beside %s (it waits for it)", message.id, target, main)
        return target

    def _timeout(self) -> timedelta:
        return self._which_timeout or WHICH_TIMEOUT

    async def _ask_which(self, message: InboundMessage, choices: list[str], fits: dict[str, ReplyFit | None]) -> None:
        main = message.conversation
        found = [fits[id] for id in choices]
        titles = [fit.title if fit is not None else "" for fit in found]
        locale = next((fit.locale for fit in found if fit is not None and fit.locale), "")
        params = WhichInput(
            conversation=main,
            held=message,
            choices=choices,
            question=which_question(locale, titles),
            default=choices[0],
            timeout_seconds=self._timeout().total_seconds(),
        )
        # In this order, so that a retry after a crash between finds the question (which takes
        # the held reply again as spent) and never holds a reply without one.
        ttl = self._timeout() + ASKING_KEPT_AFTER
        await self._redis.set(keys.asking(main.id), which_id(main.id), ex=ttl)
        await ask_which(self._client, params, task_queue=self._task_queue)
        await self._redis.set(keys.reply_route(message.id), which_id(main.id), ex=SEEN_TTL)
        log.info(
            "reply %s fits %d conversations beside %s: the customer is asked which", message.id, len(choices), main.id
        )
