"""Opt-out: STOP and its synonyms take a customer out of every flow on a number (or on every
number of its brand) until START; kept in the consent ledger (`chatflow.edge.consent`), which
the send path asks before every send and which outlives restarts (with AOF persistence on).

Keyed by our address and the customer's, of any kind, stored by value (as when every address was
a phone number: opt-outs recorded then hold still, and the inbound buffer's script reads the
same set, `keys.opted_out`).
"""

from __future__ import annotations

from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.domain.keywords import ENGLISH
from chatflow.edge.consent import ConsentLedger, How, Scopes

OPTED_OUT_TEXT = ENGLISH.opted_out_text
OPTED_IN_TEXT = ENGLISH.opted_in_text
HELP_TEXT = ENGLISH.help_text


class OptOuts(ConsentLedger):
    def __init__(self, redis: Redis, scopes: Scopes | None = None) -> None:
        super().__init__(redis, scopes)

    async def opt_out(self, ours: Address, customer: Address, *, how: How = "keyword", word: str = "") -> bool:
        """True when the customer was subscribed until now (so the confirmation is sent once)."""
        return await self.change(ours, customer, "out", how, word=word)

    async def opt_in(self, ours: Address, customer: Address, *, how: How = "keyword", word: str = "") -> bool:
        """True when the customer had opted out until now."""
        return await self.change(ours, customer, "in", how, word=word)
