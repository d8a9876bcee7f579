"""Channel fallback: a WhatsApp message that fails or is not delivered in time goes by SMS.

Done at the edge, outside the workflow: the send activity hands every successful WhatsApp send
to `watch` (a SendGuard watcher), the status webhooks hand every status to `on_status`, and a
sweeper sends by SMS, from the number's `fallback_number`, whatever was neither delivered nor
read by its deadline (a failure makes it due at once), inside the flow's quiet hours only once
they end (`OutboundMessage.quiet_hours`). Claiming a due message is a ZREM, so
two sweepers never send the same fallback twice.

A refusal WhatsApp reports after it took the message (131047, 131026, 63016 in a status) goes to
the conversation instead, which says the message as its template, takes its step's failure
branch or sends the SMS itself, in its transcript: the status router `take`s the message off the
sweeper first (the same ZREM: the sweeper and the conversation never both send it), and `give_back`s
it, due at once, when that conversation is no longer running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import cast

from redis.asyncio import Redis

from chatflow.domain.channel import Channel
from chatflow.domain.codec import dumps, loads_outbound
from chatflow.domain.config import Config
from chatflow.domain.errors import SendError
from chatflow.domain.messages import REPLY_WINDOW, DeliveryUpdate, OutboundMessage, SendResult, numbered_menu
from chatflow.edge import keys
from chatflow.edge.optout import OptOuts
from chatflow.edge.send_guard import SendGuard
from chatflow.flows.quiet_hours import SendWindow, next_allowed_send

ARRIVED = frozenset({"delivered", "read"})
LOST = frozenset({"failed", "undelivered"})


def quiet_until(message: OutboundMessage, now: datetime) -> datetime | None:
    """When the message's quiet hours (`OutboundMessage.quiet_hours`) end, if `now` is inside
    them; None when it may go now (no quiet hours, or an answer to a customer who just wrote)."""
    if not message.quiet_hours:
        return None
    if message.last_inbound_at:
        with contextlib.suppress(ValueError):
            last = datetime.fromisoformat(message.last_inbound_at)
            if now - (last if last.tzinfo else last.replace(tzinfo=UTC)) <= REPLY_WINDOW:
                return None
    hours, _, zone = message.quiet_hours.partition("@")
    start, _, end = hours.partition("-")
    try:
        window = SendWindow(time.fromisoformat(start), time.fromisoformat(end))
        opens = next_allowed_send(message.customer, window, now, zone or None)
    except (ValueError, KeyError):  # unreadable, an unknown zone: never held for ever
        return None
    return opens if opens > now else None


def as_sms(message: OutboundMessage, number: str, provider: str) -> OutboundMessage:
    """The same message as plain text from an SMS number (choices become a numbered menu)."""
    return replace(
        message,
        channel="sms",
        provider=provider,
        number=number,
        text=numbered_menu(message.text, message.options),
        options=[],
        template="",
    )


class ChannelFallback:
    def __init__(
        self,
        redis: Redis,
        config: Config,
        channels: Mapping[str, Channel],
        *,
        after: timedelta = timedelta(minutes=5),
        optouts: OptOuts | None = None,
        guard: SendGuard | None = None,
    ) -> None:
        self._redis = redis
        self._config = config
        self._channels = channels
        self._after = after
        self._optouts = optouts
        self._guard = guard  # opt-out and pacing of the SMS number

    async def watch(self, message: OutboundMessage, result: SendResult) -> None:
        binding = self._config.binding(message.number, message.provider)
        if message.channel != "whatsapp" or binding is None or not binding.fallback_number:
            return
        if message.reaction is not None:  # never reported delivered (Meta sends only `sent`), nothing to text
            return
        now = datetime.now(UTC)
        keep = int((self._after + timedelta(days=1)).total_seconds())
        await self._redis.set(keys.fallback_watch(result.message_id), dumps(message), ex=keep)
        await self._redis.zadd(keys.fallback_due(), {result.message_id: (now + self._after).timestamp()})

    async def on_status(self, update: DeliveryUpdate) -> None:
        if update.status in ARRIVED:
            await self._redis.zrem(keys.fallback_due(), update.message_id)
            await self._redis.delete(keys.fallback_watch(update.message_id))
        elif update.status in LOST:
            # Due now, if still watched (xx: a message already delivered or swept stays gone).
            await self._redis.zadd(keys.fallback_due(), {update.message_id: 0}, xx=True)

    async def take(self, message_id: str) -> OutboundMessage | None:
        """Take a watched message off the sweeper (a ZREM, as the sweeper claims one): the
        conversation that sent it says it by SMS instead. None when it is not watched (any more:
        the sweeper has it, or its number has no fallback)."""
        if not await self._redis.zrem(keys.fallback_due(), message_id):
            return None
        raw = await self._redis.getdel(keys.fallback_watch(message_id))
        return loads_outbound(raw) if raw is not None else None

    async def give_back(self, message_id: str, message: OutboundMessage) -> None:
        """A message taken for a conversation that is no longer running: the sweeper says it now."""
        keep = int((self._after + timedelta(days=1)).total_seconds())
        await self._redis.set(keys.fallback_watch(message_id), dumps(message), ex=keep)
        await self._redis.zadd(keys.fallback_due(), {message_id: 0})

    def route(self, message: OutboundMessage) -> tuple[str, str] | None:
        """The SMS number and provider that may say `message`: its number's fallback_number, for
        a customer with a phone number (one known by a WhatsApp user id only has none to text)."""
        binding = self._config.binding(message.number, message.provider)
        sms = self._config.binding(binding.fallback_number) if binding and binding.fallback_number else None
        return (sms.number, sms.provider) if sms is not None and message.customer.startswith("+") else None

    def watches(self, number: str) -> bool:
        """Whether sends from `number` are watched (a WhatsApp number with a fallback_number)."""
        return any(b.number == number and b.channel == "whatsapp" and b.fallback_number for b in self._config.numbers)

    async def due(self, now: datetime) -> list[OutboundMessage]:
        """Claim the WhatsApp messages whose fallback is due, as their SMS versions."""
        claimed: list[OutboundMessage] = []
        due = cast(list[str], await self._redis.zrangebyscore(keys.fallback_due(), "-inf", now.timestamp()))
        for message_id in due:
            if not await self._redis.zrem(keys.fallback_due(), message_id):
                continue  # another sweeper took it
            raw = await self._redis.getdel(keys.fallback_watch(message_id))
            if raw is None:
                continue
            original = loads_outbound(raw)
            binding = self._config.binding(original.number, original.provider)
            sms = self._config.binding(binding.fallback_number) if binding else None
            if sms is None:
                continue
            opens = quiet_until(original, now)
            if opens is not None:
                # Inside the flow's quiet hours: the SMS waits for them to end, as the flow did.
                keep = int((opens - now + timedelta(days=1)).total_seconds())
                await self._redis.set(keys.fallback_watch(message_id), raw, ex=keep)
                await self._redis.zadd(keys.fallback_due(), {message_id: opens.timestamp()})
                continue
            claimed.append(as_sms(original, sms.number, sms.provider))
        return claimed

    async def sweep(self, now: datetime) -> list[SendResult]:
        results: list[SendResult] = []
        for message in await self.due(now):
            try:
                if self._guard is not None:
                    await self._guard.before_send(message)
                results.append(await self._channels[message.provider].send(message))
            except SendError:
                continue  # opted out, invalid number...: SMS cannot help either
        return results

    async def sweep_forever(self, every: timedelta = timedelta(seconds=5)) -> None:
        while True:
            await self.sweep(datetime.now(UTC))
            await asyncio.sleep(every.total_seconds())
