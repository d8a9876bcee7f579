"""A fast dedupe of provider message ids in front of the workflow's own.

Providers retry webhooks (Twilio on timeouts, Meta minutes later); the workflow already drops
ids it has seen, but only after a Temporal round trip each. A SET NX with a TTL longer than any
provider's retry horizon drops most repeats at the edge. A claim is released when the hand-on
fails, so the provider's retry is not mistaken for a duplicate and lost.
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.delivery import Deliver

# Meta retries for up to a day; Twilio within minutes.
SEEN_TTL = timedelta(days=2)


class Dedupe:
    """`partitions`: the buffer's (`BufferedDelivery`), whose script claims the same keys."""

    def __init__(self, redis: Redis, ttl: timedelta = SEEN_TTL, *, partitions: int = keys.PARTITIONS) -> None:
        self._redis = redis
        self._ttl = ttl
        self._partitions = partitions

    async def claim(self, message: InboundMessage) -> bool:
        """True the first time a message's id is claimed (within the TTL)."""
        return bool(await self._redis.set(self.key(message), "1", nx=True, ex=self._ttl))

    async def release(self, message: InboundMessage) -> None:
        await self._redis.delete(self.key(message))

    def key(self, message: InboundMessage) -> str:
        return keys.seen(message.id, keys.partition_of(message.conversation.id, self._partitions))


def deduped(deliver: Deliver, dedupe: Dedupe) -> Deliver:
    """`deliver` for messages not seen before; a failed hand-on forgets the id again."""

    async def _deliver(message: InboundMessage, flow: str) -> None:
        if not await dedupe.claim(message):
            return
        try:
            await deliver(message, flow)
        except BaseException:
            await dedupe.release(message)
            raise

    return _deliver
