"""HTTP side of the console channel: customers type, the bot's messages are read by long-poll.

    POST /console/messages            {"from": "+14155550100", "to": "+15005550006", "text": "hi"}
    GET  /console/messages?customer=+14155550100&after=0&wait=25
    GET  /console/numbers             the numbers bound with provider "console"

A console message goes the same way as a webhook's: an InboundMessage, routed by the number it
was sent to, handed to the app's `deliver`. Nothing here needs an account, so `chatflow chat`,
curl and tests can talk to any flow bound to a console number.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatflow.domain.config import Config, e164
from chatflow.domain.addresses import conversation_id
from chatflow.domain.messages import InboundMessage, OutboundMessage
from providers.console import START, ConsoleOutbox

if TYPE_CHECKING:
    from chatflow.edge.inbound import Receive

MAX_BODY = 16 * 1024
MAX_WAIT = 30.0


def answer_to(message: InboundMessage, text: str) -> OutboundMessage:
    """A message back to the sender of `message`, from the number it wrote to."""
    return OutboundMessage(
        channel=message.channel,
        provider=message.provider,
        number=message.number,
        customer=message.customer,
        text=text,
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def console_routes(config: Config, receive: Receive, outbox: ConsoleOutbox | None) -> list[Route]:
    async def post_message(request: Request) -> JSONResponse:
        if "application/json" not in request.headers.get("content-type", ""):
            return _error(415, "send JSON: content-type application/json")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        try:
            fields = json.loads(body)
        except ValueError:
            return _error(400, "body is not valid JSON")
        if not isinstance(fields, dict):
            return _error(400, 'body must be an object {"from", "to", "text"}')
        for key in ("from", "to", "text"):
            if not isinstance(fields.get(key), str):
                return _error(400, f"{key!r} must be a string")
        try:
            customer = e164(fields["from"], what="from")
            number = e164(fields["to"], what="to")
        except ValueError as error:
            return _error(400, str(error))
        binding = config.binding(number, "console")
        if binding is None:
            return _error(404, f"{number} is not bound with provider console in the config")
        message = InboundMessage(
            id=f"console-{uuid.uuid4().hex}",
            channel=binding.channel,
            provider="console",
            customer=customer,
            number=number,
            text=fields["text"],
            received_at=datetime.now(UTC).isoformat(),
        )
        try:
            verdict = await receive(binding, message)
            if verdict.reply and outbox is not None:  # opt-out confirmation, help
                await outbox.put(answer_to(message, verdict.reply))
        except Exception as error:  # noqa: BLE001 - the caller may retry; never a 500
            return _error(503, f"cannot hand the message on: {error}")
        return JSONResponse(
            {"id": message.id, "conversation": conversation_id(binding.channel, number, customer)},
            status_code=202,
        )

    async def get_messages(request: Request) -> JSONResponse:
        if outbox is None:
            return _error(501, "console messages are readable only with Redis (CHATFLOW_REDIS_URL)")
        try:
            customer = e164(request.query_params.get("customer", ""), what="customer")
            wait = min(float(request.query_params.get("wait", "0")), MAX_WAIT)
            lines, cursor = await outbox.read(customer, request.query_params.get("after", START), wait)
        except ValueError as error:
            return _error(400, str(error))
        except RedisError as error:
            return _error(503, f"cannot read the console's messages: {error}")
        return JSONResponse({"messages": [asdict(line) for line in lines], "next": cursor})

    async def get_numbers(request: Request) -> JSONResponse:
        numbers = [
            {"number": b.number, "flow": b.flow, "channel": b.channel}
            for b in config.numbers
            if b.provider == "console"
        ]
        return JSONResponse({"numbers": numbers})

    return [
        Route("/console/messages", post_message, methods=["POST"]),
        Route("/console/messages", get_messages, methods=["GET"]),
        Route("/console/numbers", get_numbers, methods=["GET"]),
    ]
