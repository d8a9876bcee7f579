"""The console channel: a local channel with no account, for `chatflow dev`, `chatflow chat` and tests.

What the bot sends lands in an outbox that the console's readers long-poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.exceptions import RedisError

from chatflow.domain.addresses import TEL, AddressKind
from chatflow.domain.channel import Received, WebhookAnswer, WebhookRoute
from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import PermanentSendError, RetryableSendError, Unavailable
from chatflow.domain.masking import mask_phone
from chatflow.domain.messages import InboundMessage, OutboundMessage, SendResult
from providers._messages import reply_to
from providers.console.outbox import ConsoleOutbox, Outbox
from providers.console.webhooks import JSON, MAX_BODY, ConsoleWebhooks, json_answer


def _console_rate_class(value: str) -> str:
    return "console"


# `console:+14155550100`: a phone number typed on the console. A local channel goes as fast as
# it is asked to.
CONSOLE = AddressKind("console", TEL.normalise, mask_phone, _console_rate_class, {"console": 0.0})

MESSAGES_PATH = "/console/messages"
NUMBERS_PATH = "/console/numbers"


class ConsoleChannel:
    name = "console"

    def __init__(
        self,
        outbox: ConsoleOutbox | None = None,
        *,
        numbers: Sequence[NumberBinding] = (),
        blocked: set[str] | None = None,
    ) -> None:
        self.outbox: ConsoleOutbox = outbox or Outbox()
        # Customers whose sends fail permanently, to exercise failure branches locally.
        self.blocked = blocked or set()
        self.webhooks = ConsoleWebhooks([b for b in numbers if b.provider == self.name], self.outbox)

    def routes(self) -> Sequence[WebhookRoute]:
        return [
            WebhookRoute(MESSAGES_PATH, "POST", self.webhooks.post_message, JSON, MAX_BODY),
            WebhookRoute(MESSAGES_PATH, "GET", self.webhooks.get_messages),
            WebhookRoute(NUMBERS_PATH, "GET", self.webhooks.get_numbers),
        ]

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.customer in self.blocked:
            raise PermanentSendError(f"{message.customer} cannot receive messages", code="blocked")
        try:
            await self.outbox.put(message)
        except RedisError as error:
            # Redis comes back; the send is tried again rather than failing the flow's step.
            raise RetryableSendError(f"cannot write to the console's outbox: {error}") from None
        return SendResult(message_id=f"console-{uuid.uuid4().hex}", status="delivered")

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        try:
            # Straight into the outbox, not through `send`: an opted-out customer must still see
            # the confirmation of their STOP.
            for message, text in replies:
                await self.outbox.put(reply_to(message, text))
        except RedisError as error:
            raise Unavailable(f"cannot answer on the console: {error}") from None
        if not received.messages:
            return json_answer({}, 202)
        message, _ = received.messages[0]
        return json_answer({"id": message.id, "conversation": message.conversation.id}, 202)
