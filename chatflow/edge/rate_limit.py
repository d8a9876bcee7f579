"""Outbound pacing per sender, shared by every worker process: GCRA in one Lua script.

Carriers and Meta cap how fast one sender may send; going over gets messages dropped or the
number flagged. The limit must hold across all worker processes, so its state lives in Redis and
is read and written atomically with the server's own clock (no skew between hosts).

GCRA keeps one timestamp per sender, the "theoretical arrival time" of the next send: a send is
allowed when that time has come, and pushes it one interval on. Replies go ahead of bulk sends:
a reply that has to wait leaves a mark, and while the mark stands bulk sends are refused, so
the next free slot always goes to a waiting reply.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from typing import Literal

from redis.asyncio import Redis

from chatflow.domain.addresses import TEL, Address
from chatflow.domain.config import NumberBinding
from chatflow.edge import keys

Priority = Literal["reply", "bulk"]

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local priority = ARGV[3]
if priority == 'bulk' then
  local waiting = redis.call('PTTL', KEYS[2])
  if waiting > 0 then return waiting * 1000 end
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then
  if priority == 'reply' then
    redis.call('SET', KEYS[2], '1', 'PX', math.ceil((wait + interval) / 1000))
  end
  return wait
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return 0
"""


class RateLimited(Exception):
    """The sender has no capacity within the time the caller was willing to wait."""

    def __init__(self, sender: str, retry_after: float) -> None:
        super().__init__(f"sender {sender} is over its rate; retry in {retry_after:.2f}s")
        self.sender = sender
        self.retry_after = retry_after


class SenderRates:
    """Messages per second for each sender: its binding's own `rate`, else the default its address
    kind gives its rate class (a phone number's type, WhatsApp's, an email sender's)."""

    def __init__(
        self,
        bindings: Iterable[NumberBinding] = (),
        defaults: Mapping[str, float] | None = None,
        *,
        kinds: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        bindings = list(bindings)
        self._overrides = {b.address: b.rate for b in bindings if b.rate}
        self._bound = {(b.provider, b.number): b.address for b in bindings}
        # The kind of address each provider carries on each channel: the bindings show those in
        # use; `kinds` (from the channels' specs) the others.
        self._kinds = {**{(b.provider, b.channel): b.address.kind for b in bindings}, **(kinds or {})}
        self._defaults = dict(defaults or {})  # by rate class, over the kinds' own

    def sender(self, provider: str, channel: str, number: str) -> Address:
        """The address `number` sends from on `provider`'s `channel`."""
        bound = self._bound.get((provider, number))
        if bound is not None:
            return bound
        # A number no longer bound (the config changed under a running conversation) is paced as
        # its channel's kind says; as a phone number, the strictest default, when even that is gone.
        return Address(self._kinds.get((provider, channel), TEL.name), number)

    def rate(self, sender: Address) -> float:
        """0 means unlimited."""
        override = self._overrides.get(sender)
        if override:
            return override
        return self._defaults.get(sender.rate_class(), sender.default_rate())


class RateLimiter:
    def __init__(self, redis: Redis, *, burst: int = 1) -> None:
        # A burst of 1 spaces sends evenly, which is what carriers measure.
        self._redis = redis
        self._burst = burst
        self._script = redis.register_script(_GCRA)

    async def try_acquire(self, sender: str, rate: float, priority: Priority = "bulk") -> float:
        """Take a slot now if there is one: 0.0; else the seconds to wait before trying again."""
        if rate <= 0:
            return 0.0
        interval = max(1, math.ceil(1_000_000 / rate))
        wait = await self._script(
            keys=[keys.rate(sender), keys.rate_reply_waiting(sender)],
            args=[interval, self._burst, priority],
        )
        return int(wait) / 1_000_000

    async def acquire(
        self, sender: str, rate: float, priority: Priority = "bulk", *, max_wait: float = math.inf
    ) -> None:
        """Wait for a slot; RateLimited when it would take longer than `max_wait` seconds."""
        waited = 0.0
        while True:
            wait = await self.try_acquire(sender, rate, priority)
            if wait <= 0:
                return
            if waited + wait > max_wait:
                raise RateLimited(sender, wait)
            await asyncio.sleep(wait)
            waited += wait
