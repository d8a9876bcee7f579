"""Acting on the events of sources: each event's mapped actions, once per event id.

The source (a provider plug-in) has verified the request and read its events; the mapping written
beside the flows has said what each means. Here every event is claimed by its id for as long as
its sender redelivers (Stripe: three days), then its actions run: a journey started, an event
reported by business key. When an action fails the claim is released and the sender told to
retry (503), so nothing acknowledged is lost; actions that did happen are not repeated by the
retry, as journeys skip a customer already in a conversation and workflows drop an event id
they have seen.

Counts per source (events by type, refused signatures, duplicates, unmatched keys) are kept in
Redis for the dashboard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from redis.asyncio import Redis

from chatflow.domain.errors import Invalid, Refused, Unavailable
from chatflow.domain.messages import BusinessEvent
from chatflow.domain.source import Action, Source, SourceBinding, SourceEvent, SourceMapping, Start
from chatflow.edge import keys
from chatflow.journeys.service import JourneyRequest, Journeys

log = logging.getLogger(__name__)

# The counters kept per source.
RECEIVED = "received"  # received:<type>
REFUSED = "refused"  # signatures that did not hold (or were too old)
DUPLICATE = "duplicate"  # redeliveries of an event acted on
UNMATCHED = "unmatched"  # events by key that found no conversation (kept, waiting for one)
IGNORED = "ignored"  # event types the mapping does nothing with


@dataclass(frozen=True)
class ConfiguredSource:
    """A `[[sources]]` entry, built: the plug-in that verifies, the mapping that decides."""

    binding: SourceBinding
    source: Source
    mapping: SourceMapping
    redelivery: timedelta  # the binding's, else its kind's
    content_type: str = "application/json"

    @property
    def name(self) -> str:
        return self.binding.name


@dataclass(frozen=True)
class Outcome:
    """What became of one event: its id and type, and per action what happened."""

    id: str
    type: str
    results: list[str]  # "started chat:...", "delivered chat:...", "kept order_id=A-1", "duplicate", "ignored"


class SourceIntake:
    def __init__(self, journeys: Journeys, redis: Redis) -> None:
        self.journeys = journeys
        self.redis = redis

    async def refused(self, source: str) -> None:
        await self._count(source, REFUSED)

    async def receive(self, configured: ConfiguredSource, events: list[SourceEvent]) -> list[Outcome]:
        return [await self._one(configured, event) for event in events]

    async def _one(self, configured: ConfiguredSource, event: SourceEvent) -> Outcome:
        name = configured.name
        await self._count(name, f"{RECEIVED}:{event.type}")
        claim = keys.source_event(name, event.id)
        if not await self.redis.set(claim, "1", nx=True, ex=configured.redelivery):
            await self._count(name, DUPLICATE)
            return Outcome(event.id, event.type, ["duplicate"])
        try:
            try:
                actions = configured.mapping.actions(event)
            except (KeyError, TypeError, ValueError) as error:
                # The event lacks what the mapping reads (metadata not set on this payment): the
                # sender's retry would carry the same, so it is refused, not retried.
                raise Invalid(f"the mapping of {event.type!r} could not read the event: {error!r}") from None
            if not actions:
                await self._count(name, IGNORED)
                return Outcome(event.id, event.type, ["ignored"])
            results = [await self._act(configured, event, action, index) for index, action in enumerate(actions)]
        except Refused:
            await self.redis.delete(claim)  # not acted on: the sender's retry must be
            raise
        except Exception as error:
            await self.redis.delete(claim)
            log.warning("source %s could not act on %s %s: %r", name, event.type, event.id, error)
            raise Unavailable(f"could not act on event {event.id} now; retry later") from error
        except BaseException:
            await self.redis.delete(claim)
            raise
        return Outcome(event.id, event.type, results)

    async def _act(self, configured: ConfiguredSource, event: SourceEvent, action: Action, index: int) -> str:
        if isinstance(action, Start):
            started = await self.journeys.start(self._journey(configured, action))
            return f"{started.status} {started.id}"
        report = action
        business_event = BusinessEvent(report.name, report.data, id=f"{configured.name}:{event.id}:{index}")
        otherwise = self._journey(configured, report.otherwise) if report.otherwise else None
        how, conversations = await self.journeys.event_by_key(
            report.key, report.value, business_event, otherwise=otherwise
        )
        if how == "kept":
            await self._count(configured.name, UNMATCHED)
            return f"kept {report.key}={report.value}"
        return f"{how} {' '.join(conversations)}"

    def _journey(self, configured: ConfiguredSource, start: Start) -> JourneyRequest:
        sender = start.from_ or configured.binding.from_
        if not sender:
            raise Invalid(f"Start({start.flow!r}) names no from_ and source {configured.name!r} has no from")
        return JourneyRequest(start.flow, start.to, sender, dict(start.data))

    async def _count(self, source: str, what: str) -> None:
        try:
            await self.redis.hincrby(keys.source_counts(source), what, 1)
        except Exception as error:  # noqa: BLE001 - a count is not worth refusing an event for
            log.debug("could not count %s for source %s: %r", what, source, error)

    async def counts(self, source: str) -> dict[str, int]:
        raw = cast(dict[str, str], await self.redis.hgetall(keys.source_counts(source)))
        return {what: int(count) for what, count in raw.items()}
