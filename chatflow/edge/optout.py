"""Opt-out: STOP and its synonyms take a customer out of every flow on a number until START.

Keyed by our address and the customer's, of any kind (a number and a phone, a sender and an
email address), and stored as one Redis set per address of ours holding the customers' values, so
the send path asks one SISMEMBER before every send and the state outlives restarts (with AOF
persistence on). Stored by value, as when every address was a phone number: opt-outs recorded
then hold still, and the inbound buffer's script reads the same set (`keys.opted_out`).
"""

from __future__ import annotations

from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.edge import keys

OPTED_OUT_TEXT = "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
OPTED_IN_TEXT = "You have been resubscribed. Reply STOP to unsubscribe."
HELP_TEXT = "Reply STOP to unsubscribe, START to resubscribe."


class OptOuts:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def opt_out(self, ours: Address, customer: Address) -> bool:
        """True when the customer was subscribed until now (so the confirmation is sent once)."""
        return bool(await self._redis.sadd(keys.opted_out(ours.value), customer.value))

    async def opt_in(self, ours: Address, customer: Address) -> bool:
        """True when the customer had opted out until now."""
        return bool(await self._redis.srem(keys.opted_out(ours.value), customer.value))

    async def is_opted_out(self, ours: Address, customer: Address) -> bool:
        return bool(await self._redis.sismember(keys.opted_out(ours.value), customer.value))
