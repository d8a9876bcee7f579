"""The conformance kit of the console channel (see tests/providers/conformance.py)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.domain.channel import Channel
from chatflow.domain.config import Config
from chatflow.domain.messages import OutboundMessage
from providers.console import ConsoleChannel, RedisOutbox
from tests.providers.conformance import Call, ChannelKit
from tests.providers.conftest import CONSOLE_NUMBER, CUSTOMER, PUBLIC_URL, make_config

MESSAGES = f"{PUBLIC_URL}/console/messages"


def message() -> OutboundMessage:
    return OutboundMessage(channel="console", provider="console", number=CONSOLE_NUMBER, customer=CUSTOMER, text="hi")


@contextlib.asynccontextmanager
async def blocked(config: Config) -> AsyncIterator[tuple[Channel, OutboundMessage]]:
    # The console's stand-in for a customer the provider will never reach.
    yield ConsoleChannel(numbers=config.numbers, blocked={CUSTOMER}), message()


@contextlib.asynccontextmanager
async def redis_away(config: Config) -> AsyncIterator[tuple[Channel, OutboundMessage]]:
    redis = Redis(port=1, socket_connect_timeout=1)  # nothing listens on port 1
    try:
        yield ConsoleChannel(RedisOutbox(redis), numbers=config.numbers), message()
    finally:
        await redis.aclose()


def post(body: object) -> Call:
    return Call("POST", MESSAGES, json.dumps(body).encode(), {"Content-Type": "application/json"})


KIT = ChannelKit(
    config=make_config,
    good=post({"from": CUSTOMER, "to": CONSOLE_NUMBER, "text": "hi"}),
    no_signature="the console is this machine's own channel: nobody signs what is typed on it",
    bad=post({"from": "not a number", "to": CONSOLE_NUMBER, "text": "hi"}),
    customer=Address("console", CUSTOMER),
    permanent=blocked,
    retryable=redis_away,
    statuses=[],
    no_statuses="a console message is delivered when it is sent: there is no status callback",
)
