"""A broadcast: one journey for each customer of a list, started at the pace the sender allows.

Starts are paced on the sender's own rate (a limiter key apart from the send key, so the two do
not halve each other): conversations then reach the send activity about as fast as the sender
can send, instead of thousands of workflows queueing on the limiter at once. The sends are still
paced by the send guard, as bulk, behind every reply.

Each recipient's journey carries an idempotency key derived from the broadcast's, so posting the
same broadcast again (after a crash of the web process that ran it) resumes it without starting
anyone twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from chatflow.domain.addresses import customer_token
from chatflow.domain.errors import Invalid, Refused
from chatflow.edge import keys
from chatflow.edge.rate_limit import RateLimiter, SenderRates
from chatflow.journeys.service import JourneyRequest, Journeys

# How long a broadcast's progress can be read (GET /api/broadcasts/{id}) after it was last updated.
PROGRESS_TTL = timedelta(days=7)


@dataclass
class Broadcast:
    flow: str
    from_: str
    to: list[tuple[str, dict[str, Any]]]  # customer, their own data (over the common data)
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


def recipients(values: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """A broadcast's `to`: numbers, or objects {"to": number, "data": {...}} for personal data."""
    out: list[tuple[str, dict[str, Any]]] = []
    for value in values:
        if isinstance(value, str):
            out.append((value, {}))
        elif isinstance(value, dict) and isinstance(value.get("to"), str) and isinstance(value.get("data", {}), dict):
            out.append((value["to"], dict(value.get("data", {}))))
        else:
            raise Invalid(f'to: {value!r} is neither a number nor {{"to": number, "data": {{...}}}}')
    return out


class Broadcasts:
    def __init__(self, journeys: Journeys, limiter: RateLimiter, rates: SenderRates) -> None:
        self.journeys = journeys
        self.limiter = limiter
        self.rates = rates
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, broadcast: Broadcast) -> None:
        """Check it, record it and run it in the background."""
        self.journeys.validate(
            JourneyRequest(broadcast.flow, broadcast.to[0][0] if broadcast.to else "", broadcast.from_)
        )
        key = keys.broadcast(broadcast.id)
        await self.journeys.redis.hset(key, mapping={"flow": broadcast.flow, "total": len(broadcast.to)})
        await self.journeys.redis.expire(key, PROGRESS_TTL)
        task = asyncio.create_task(self.run(broadcast))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def run(self, broadcast: Broadcast) -> None:
        redis, key = self.journeys.redis, keys.broadcast(broadcast.id)
        binding = self.journeys.config.binding(broadcast.from_)
        rate = self.rates.rate(binding.address if binding else self.rates.sender("", "", broadcast.from_))
        for customer, data in broadcast.to:
            # The key is a Redis key name: it names the customer as every key name does (keys.py).
            once = f"{broadcast.id}:{customer_token(customer)}"
            request = JourneyRequest(broadcast.flow, customer, broadcast.from_, {**broadcast.data, **data}, once)
            try:
                await self.limiter.acquire(f"starts:{broadcast.from_}", rate, "bulk")
                started = await self.journeys.start(request)
                outcome = started.status
            except Refused:
                outcome = "invalid"
            except Exception:  # noqa: BLE001 - counted; the next recipient still gets theirs
                outcome = "failed"
            await redis.hincrby(key, outcome, 1)
        await redis.hset(key, "done", 1)
        await redis.expire(key, PROGRESS_TTL)  # from the end of a long broadcast

    async def status(self, broadcast_id: str) -> dict[str, Any] | None:
        raw = cast(dict[str, str], await self.journeys.redis.hgetall(keys.broadcast(broadcast_id)))
        if not raw:
            return None
        fields = dict(raw)
        flow = fields.pop("flow", "")
        counts = {k: int(v) for k, v in fields.items()}
        return {"id": broadcast_id, "flow": flow, "done": bool(counts.pop("done", 0)), **counts}
