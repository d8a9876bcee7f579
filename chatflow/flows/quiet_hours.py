"""Quiet hours: when a non-urgent message may be sent, in the customer's own time zone.

A pure function so the engine can call it inside the workflow (it reads only its arguments and
the tz database). The customer's zone comes from the flow's data when the business knows it,
else from the number: `phonenumbers` maps a number to the zones of its region, and where a
region spans several (a US area code can), the send waits until the window is open in all of
them, since we cannot tell which one the customer is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones


@dataclass(frozen=True)
class SendWindow:
    """Local times between which sends are allowed; `end` before `start` crosses midnight."""

    start: time = time(9)
    end: time = time(20)

    def allows(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def time_zones(number: str) -> list[str]:
    """The zones a number may be in: its own prefix's, else its country's, else UTC."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ["UTC"]
    known = _known(number_zones.time_zones_for_number(parsed))
    if not known:  # an unassigned or fictional range: the country still tells
        region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        example = phonenumbers.example_number(region)
        known = _known(number_zones.time_zones_for_number(example)) if example else []
    return known or ["UTC"]


def _known(zones: tuple[str, ...]) -> list[str]:
    return [z for z in zones if z != number_zones.UNKNOWN_TIMEZONE]


def _next_opening(moment: datetime, window: SendWindow, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    opening = datetime.combine(local.date(), window.start, tzinfo=zone)
    if opening <= local:
        opening = datetime.combine(local.date() + timedelta(days=1), window.start, tzinfo=zone)
    return opening.astimezone(moment.tzinfo)


def next_allowed_send(number: str, window: SendWindow, now: datetime, tz: str | None = None) -> datetime:
    """`now` when the window is open for the customer, else the moment it next opens.

    `now` must be timezone-aware (workflow.now() is); the answer is in the same zone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zones = [ZoneInfo(name) for name in ([tz] if tz else time_zones(number))]
    candidate = now
    for _ in range(2 * len(zones) + 2):
        closed = [z for z in zones if not window.allows(candidate.astimezone(z).time())]
        if not closed:
            return candidate
        candidate = max(_next_opening(candidate, window, z) for z in closed)
    # The window is never open in every zone at once: follow the first (the region's main) zone.
    first = zones[0]
    return now if window.allows(now.astimezone(first).time()) else _next_opening(now, window, first)
