"""The console provider: a local channel with no account, for `chatflow dev`, `chatflow chat` and tests.

Sent messages land in an `Outbox` that readers (the test harness, the chat endpoint) wait on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

from chatflow.messages import OutboundMessage, SendResult
from providers.base import PermanentSendError


class Outbox:
    """Messages sent to each customer, in order, with a way to wait for the next ones."""

    def __init__(self) -> None:
        self.sent: dict[str, list[OutboundMessage]] = defaultdict(list)
        self._changed = asyncio.Condition()

    async def put(self, message: OutboundMessage) -> None:
        async with self._changed:
            self.sent[message.customer].append(message)
            self._changed.notify_all()

    async def wait_for(self, customer: str, count: int, timeout: float) -> list[OutboundMessage]:
        """Wait until `customer` has received at least `count` messages (or `timeout` passes)."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.sent[customer]) >= count), timeout
                )
            except TimeoutError:
                pass
            return list(self.sent[customer])


class ConsoleProvider:
    name = "console"

    def __init__(self, outbox: Outbox | None = None, *, blocked: set[str] | None = None) -> None:
        self.outbox = outbox or Outbox()
        # Customers whose sends fail permanently, to exercise failure branches locally.
        self.blocked = blocked or set()

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.customer in self.blocked:
            raise PermanentSendError(f"{message.customer} cannot receive messages", code="blocked")
        await self.outbox.put(message)
        return SendResult(message_id=f"console-{uuid.uuid4().hex}", status="delivered")
