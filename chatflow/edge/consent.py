"""The consent ledger: one record per customer and scope, with the history of how it changed.

A scope is one of our numbers, or a brand: every [[numbers]] entry with the same `brand = "acme"`
(SMS and WhatsApp alike) shares one scope, so a STOP sent to the brand's SMS number holds for its
WhatsApp number too. A number without a brand is a scope of its own (its own number).

Per scope, in Redis (one hash slot, so one script changes them together):
- `keys.opted_out(scope)`: the set of customers opted out, what the send path and the inbound
  buffer ask before every message (one SISMEMBER);
- `keys.opted_out_changed(scope)`: when each customer's consent last changed (ms), so an older
  change (one kept in Temporal during a Redis outage) never overrides a newer one;
- `keys.consent(scope)`: each customer's record, JSON: its state (`out` or `in`) and its history,
  the newest `MAX_HISTORY` changes (when, how, on which number, with which word).

The ledger is bounded by its customers: one field per customer in each of the three, no TTL
(consent must outlive any idle period), each record's history capped.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from chatflow.domain.addresses import Address
from chatflow.domain.config import NumberBinding
from chatflow.edge import keys

State = Literal["out", "in"]
# Ours: one of our addresses (or its value), or a scope itself (`brand:acme`); the customer: an
# address (or its value). Records are kept by value, as opt-outs always were.
Ours = Address | str
Theirs = Address | str
# How consent changed: a keyword the customer sent, the consent API, an operator in the
# dashboard, a bulk import, an unsubscribe link.
How = Literal["keyword", "api", "dashboard", "import", "unsubscribe_link"]
HOWS: tuple[How, ...] = ("keyword", "api", "dashboard", "import", "unsubscribe_link")
MAX_HISTORY = 50
BRAND_PREFIX = "brand:"

# KEYS opted-out set, its changed-at hash, the records hash; ARGV customer, "out" or "in", when
# (ms), the event (JSON), how many events a record keeps. -1: an newer change is already
# recorded (nothing done); else 1 when the customer's opt-out changed, 0 when it already was so.
_CHANGE = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if last > tonumber(ARGV[3]) then return -1 end
local moved
if ARGV[2] == 'out' then moved = redis.call('SADD', KEYS[1], ARGV[1]) else moved = redis.call('SREM', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local raw = redis.call('HGET', KEYS[3], ARGV[1])
local record = {}
if raw then record = cjson.decode(raw) end
if type(record.history) ~= 'table' then record.history = {} end
record.state = ARGV[2]
table.insert(record.history, cjson.decode(ARGV[4]))
while #record.history > tonumber(ARGV[5]) do table.remove(record.history, 1) end
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(record))
return moved
"""


@dataclass(frozen=True)
class ConsentEvent:
    """One change of a customer's consent."""

    state: State
    at: str  # ISO 8601, UTC
    how: How
    number: str = ""  # the number it was given on (a keyword), or "" for the whole scope
    word: str = ""  # the keyword, as the customer sent it
    note: str = ""  # who or what, for api, dashboard and import changes

    def as_json(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class ConsentRecord:
    """A customer's consent in one scope: `out`, `in`, or `unknown` (never recorded)."""

    customer: str
    scope: str
    state: State | Literal["unknown"] = "unknown"
    history: list[ConsentEvent] = field(default_factory=list)

    @property
    def updated_at(self) -> str:
        return self.history[-1].at if self.history else ""

    def as_json(self) -> dict[str, object]:
        return {
            "customer": self.customer,
            "scope": self.scope,
            "state": self.state,
            "updated_at": self.updated_at,
            "history": [event.as_json() for event in self.history],
        }


def _event(raw: object) -> ConsentEvent:
    data = raw if isinstance(raw, dict) else {}
    state: State = "out" if data.get("state") == "out" else "in"
    how = data.get("how")
    return ConsentEvent(
        state=state,
        at=str(data.get("at", "")),
        how=how if how in HOWS else "api",
        number=str(data.get("number", "")),
        word=str(data.get("word", "")),
        note=str(data.get("note", "")),
    )


class Scopes:
    """Which scope each of our numbers' consent lives in: its brand's, else its own."""

    def __init__(self, bindings: Iterable[NumberBinding] = ()) -> None:
        self._brands = {binding.number: binding.brand for binding in bindings if binding.brand}

    def of(self, number: str) -> str:
        brand = self._brands.get(number)
        return f"{BRAND_PREFIX}{brand}" if brand else number

    @property
    def brands(self) -> set[str]:
        return set(self._brands.values())


class ConsentLedger:
    def __init__(self, redis: Redis, scopes: Scopes | None = None, *, max_history: int = MAX_HISTORY) -> None:
        self._redis = redis
        self.scopes = scopes or Scopes()
        self._change: AsyncScript | None = None  # registered on first use: some callers never write
        self._max_history = max_history

    async def change(
        self,
        ours: Ours,
        customer: Theirs,
        state: State,
        how: How,
        *,
        word: str = "",
        note: str = "",
        at_ms: int | None = None,
    ) -> bool:
        """Record a change of the customer's consent in the scope of `ours`; True when their
        opt-out changed by it (so a confirmation is sent once). A change older than the one
        recorded is ignored."""
        scope, number, customer = self.scope(ours), _value(ours), _value(customer)
        at_ms = int(time.time() * 1000) if at_ms is None else at_ms
        event = ConsentEvent(
            state=state,
            at=datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds"),
            how=how,
            number="" if number.startswith(BRAND_PREFIX) else number,
            word=word,
            note=note,
        )
        if self._change is None:
            self._change = self._redis.register_script(_CHANGE)
        moved = await self._change(
            keys=[keys.opted_out(scope), keys.opted_out_changed(scope), keys.consent(scope)],
            args=[customer, state, at_ms, json.dumps(event.as_json()), self._max_history],
        )
        return int(moved) == 1

    def scope(self, ours: Ours) -> str:
        """The scope `ours` is in: its brand's, else its own value; a scope is its own."""
        value = _value(ours)
        return value if value.startswith(BRAND_PREFIX) else self.scopes.of(value)

    async def is_opted_out(self, ours: Ours, customer: Theirs) -> bool:
        return bool(await self._redis.sismember(keys.opted_out(self.scope(ours)), _value(customer)))

    async def has_opted_in(self, ours: Ours, customer: Theirs) -> bool:
        """True when an opt-in of theirs is recorded in the scope and not withdrawn since."""
        return (await self.lookup(ours, customer)).state == "in"

    async def lookup(self, ours: Ours, customer: Theirs) -> ConsentRecord:
        scope, customer = self.scope(ours), _value(customer)
        raw = await self._redis.hget(keys.consent(scope), customer)
        return self._record(scope, customer, raw)

    async def export(self, ours: Ours) -> AsyncIterator[ConsentRecord]:
        """Every record of the scope, in no particular order."""
        scope = self.scope(ours)
        async for customer, raw in self._redis.hscan_iter(keys.consent(scope), count=500):
            yield self._record(scope, _text(customer), raw)

    def _record(self, scope: str, customer: str, raw: object) -> ConsentRecord:
        if raw is None:
            return ConsentRecord(customer, scope)
        data = json.loads(_text(raw))
        history = [_event(event) for event in data.get("history", []) if isinstance(event, dict)]
        state: State = "out" if data.get("state") == "out" else "in"
        return ConsentRecord(customer, scope, state, history)


def _value(address: Address | str) -> str:
    return address.value if isinstance(address, Address) else address


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
