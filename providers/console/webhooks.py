"""HTTP side of the console channel: customers type, the bot's messages are read by long-poll.

    POST /console/messages            {"from": "+14155550100", "to": "+15005550006", "text": "hi"}
    GET  /console/messages?customer=+14155550100&after=0&wait=25
    GET  /console/numbers             the numbers bound with provider "console"

A console message goes the same way as a webhook's: an InboundMessage, routed by the number it
was sent to, handed to the edge. Nothing here needs an account, so `chatflow chat`, curl and
tests can talk to any flow bound to a console number; `chatflow web` serves it only when asked,
behind the API key. Each customer is a conversation and a stream in Redis: past the outbox's
`max_customers` in a day, new ones are answered 429.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError

from chatflow.domain.addresses import e164
from chatflow.domain.channel import Received, WebhookAnswer, WebhookRequest
from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import BadRequest, NotFound, TooManyRequests, Unavailable
from chatflow.domain.messages import InboundMessage
from providers._messages import received_now
from providers.console.outbox import START, ConsoleOutbox

JSON = "application/json"
MAX_BODY = 16 * 1024
MAX_WAIT = 30.0  # seconds a read may wait: below the usual proxy and client timeouts


def json_answer(value: Any, status: int = 200) -> WebhookAnswer:
    return WebhookAnswer(status, json.dumps(value, ensure_ascii=False), JSON)


class ConsoleWebhooks:
    def __init__(self, numbers: Sequence[NumberBinding], outbox: ConsoleOutbox) -> None:
        self.numbers = list(numbers)
        self.outbox = outbox

    def binding(self, number: str) -> NumberBinding | None:
        return next((b for b in self.numbers if b.number == number), None)

    async def post_message(self, request: WebhookRequest) -> Received:
        try:
            fields = json.loads(request.body)
        except (ValueError, RecursionError):  # UnicodeDecodeError included
            raise BadRequest("body is not valid JSON") from None
        if not isinstance(fields, dict):
            raise BadRequest('body must be an object {"from", "to", "text"}')
        for key in ("from", "to", "text"):
            if not isinstance(fields.get(key), str):
                raise BadRequest(f"{key!r} must be a string")
        try:
            customer = e164(fields["from"], what="from")
            number = e164(fields["to"], what="to")
        except ValueError as error:
            raise BadRequest(str(error)) from None
        binding = self.binding(number)
        if binding is None:
            raise NotFound(f"{number} is not bound with provider console in the config")
        try:
            retry_after = await self.outbox.admit(customer)
        except RedisError as error:
            raise Unavailable(f"cannot reach the console's store: {error}") from None
        if retry_after:
            # Each customer is a conversation and a stream: made-up numbers must not fill Redis.
            raise TooManyRequests(
                f"the console takes messages from {self.outbox.max_customers} customers a day; "
                f"try again in {retry_after} s, or as a customer who wrote before",
                retry_after,
            )
        message = InboundMessage(
            id=f"console-{uuid.uuid4().hex}",
            channel=binding.channel,
            provider="console",
            customer=customer,
            number=number,
            text=fields["text"],
            received_at=received_now(),
        )
        return Received(messages=[(message, binding)])

    async def get_messages(self, request: WebhookRequest) -> Received:
        query = request.query
        try:
            customer = e164(query.get("customer", ""), what="customer")
            wait = float(query.get("wait", "0"))
            if not math.isfinite(wait):
                raise ValueError(f"wait {query['wait']!r} is not a number of seconds")
            lines, cursor = await self.outbox.read(customer, query.get("after", START), min(wait, MAX_WAIT))
        except ValueError as error:
            raise BadRequest(str(error)) from None
        except RedisError as error:
            raise Unavailable(f"cannot read the console's messages: {error}") from None
        return Received(answer=json_answer({"messages": [asdict(line) for line in lines], "next": cursor}))

    async def get_numbers(self, request: WebhookRequest) -> Received:
        numbers = [{"number": b.number, "flow": b.flow, "channel": b.channel} for b in self.numbers]
        return Received(answer=json_answer({"numbers": numbers}))
