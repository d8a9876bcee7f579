"""The checks the send activity makes before a message reaches a provider: opt-out and pacing.

Refusing here, in the activity, covers every way a message can be sent (flows, journeys,
broadcasts, fallbacks) with one check shared by all worker processes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import REPLY_WINDOW, OutboundMessage, SendResult
from chatflow.edge.optout import OptOuts
from chatflow.edge.rate_limit import Priority, RateLimited, RateLimiter, SenderRates
from chatflow.edge.windows import ServiceWindows

log = logging.getLogger(__name__)

# Told of every message a provider accepted (channel fallback watches WhatsApp sends).
Watcher = Callable[[OutboundMessage, SendResult], Awaitable[None]]

# Waiting longer than this inside the send activity would leave the provider too little of the
# attempt's start-to-close timeout (SEND_TIMEOUT, 10 s: the provider call gets what is left, at
# least 6 s); beyond it the activity is retried after the wait instead.
MAX_INLINE_WAIT = 3.0
# The channel fallback's sweeper runs outside any activity: it may wait longer for a slot.
MAX_SWEEP_WAIT = 20.0


def priority_of(message: OutboundMessage, now: datetime) -> Priority:
    if not message.last_inbound_at:
        return "bulk"
    try:
        last = datetime.fromisoformat(message.last_inbound_at)
    except ValueError:
        return "bulk"
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return "reply" if now - last <= REPLY_WINDOW else "bulk"


class SendGuard:
    def __init__(
        self,
        optouts: OptOuts | None = None,
        limiter: RateLimiter | None = None,
        rates: SenderRates | None = None,
        *,
        max_wait: float = MAX_INLINE_WAIT,
        watchers: Sequence[Watcher] = (),
        windows: ServiceWindows | None = None,
    ) -> None:
        self._optouts = optouts
        self._windows = windows
        self._limiter = limiter
        self._rates = rates or SenderRates()
        self._max_wait = max_wait
        self._watchers = list(watchers)

    async def before_send(self, message: OutboundMessage) -> None:
        """Raise PermanentSendError("opted_out") or RetryableSendError("rate_limited"), or pace.
        A WhatsApp message learns when the customer last wrote to its number, whichever
        conversation that went to (`ServiceWindows`)."""
        if self._windows is not None:
            await self._windows.widen(message)
        sender = self._rates.sender(message.provider, message.channel, message.number)
        if self._optouts is not None and await self._optouts.is_opted_out(sender, sender.of(message.customer)):
            raise PermanentSendError(f"{message.customer} has opted out of {message.number}", code="opted_out")
        if self._limiter is None:
            return
        priority = priority_of(message, datetime.now(UTC))
        try:
            await self._limiter.acquire(str(sender), self._rates.rate(sender), priority, max_wait=self._max_wait)
        except RateLimited as error:
            raise RetryableSendError(
                str(error), code="rate_limited", retry_after=math.ceil(error.retry_after)
            ) from error

    async def after_send(self, message: OutboundMessage, result: SendResult) -> None:
        for watch in self._watchers:
            try:
                await watch(message, result)
            except Exception:
                # The provider has the message: failing now would make Temporal send it again.
                log.exception("send guard: a watcher failed for %s", result.message_id)
