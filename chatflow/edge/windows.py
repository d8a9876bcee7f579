"""WhatsApp's 24-hour window per customer: when each customer last wrote to each of our numbers.

WhatsApp allows free text only within 24 hours of the customer's last message to that business
number, whichever conversation it went to. A conversation knows only the messages it received: a
journey started a minute after the customer wrote (to another flow, or before any flow ran) would
believe the window closed. So the edge records every WhatsApp message's time per (our number,
customer), kept 24 hours, and the send path reads it before every WhatsApp send.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatflow.domain.messages import InboundMessage, OutboundMessage
from chatflow.edge import keys

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
CHANNEL = "whatsapp"  # the only channel with a window

# Keep the later of two times (messages reach the edge slightly out of order), for as long as
# the window of the later one lasts: KEYS the window's key; ARGV when (ms since the epoch, the
# ISO 8601 time), the key's time to live (ms).
_RECORD = """
local current = redis.call('HGET', KEYS[1], 'ms')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'ms', ARGV[1], 'at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class ServiceWindows:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD)

    async def record(self, message: InboundMessage) -> None:
        """Note that the customer wrote (WhatsApp messages only; others have no window)."""
        if message.channel != CHANNEL:
            return
        at = _parse(message.received_at) or datetime.now(UTC)
        left = at + WINDOW - datetime.now(UTC)
        if left <= timedelta(0):
            return
        ms = int(at.timestamp() * 1000)
        key = keys.service_window(message.number, message.customer)
        await self._record(keys=[key], args=[ms, at.isoformat(), max(1, int(left.total_seconds() * 1000))])

    async def last_inbound(self, number: str, customer: str) -> str:
        """When the customer last wrote to `number` (ISO 8601), "" when not in the last 24 hours."""
        value = await self._redis.hget(keys.service_window(number, customer), "at")
        if value is None:
            return ""
        return value.decode() if isinstance(value, bytes) else str(value)

    async def widen(self, message: OutboundMessage) -> None:
        """Give `message` the customer's latest message to its number, when later than the one its
        conversation saw. Redis being away leaves the conversation's own: the provider then sends
        the template, which is always allowed."""
        if message.channel != CHANNEL:
            return
        try:
            latest = await self.last_inbound(message.number, message.customer)
        except RedisError as error:
            log.warning("service window of %s unknown (Redis: %r): using the conversation's", message.number, error)
            return
        if latest and (_parse(latest) or _EPOCH) > (_parse(message.last_inbound_at) or _EPOCH):
            message.last_inbound_at = latest


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse(value: str) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
