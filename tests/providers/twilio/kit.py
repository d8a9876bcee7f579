"""The conformance kit of the twilio channel (see tests/providers/conformance.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import respx

from chatflow.domain.addresses import Address
from chatflow.domain.channel import Channel, Resources
from chatflow.domain.config import Config
from chatflow.domain.messages import OutboundMessage
from providers.twilio import spec
from tests.providers.conformance import Call, ChannelKit, SendFailure
from tests.providers.conftest import (
    CUSTOMER,
    MESSAGES_URL,
    PUBLIC_URL,
    TWILIO_NUMBER,
    make_config,
    twilio_inbound,
    twilio_post,
)

INBOUND = f"{PUBLIC_URL}/webhooks/twilio"
STATUS = f"{PUBLIC_URL}/webhooks/twilio/status"


def call(url: str, fields: dict[str, str], token: str = "twilio-auth-token") -> Call:
    signed = twilio_post(url, fields, token)
    return Call("POST", url, signed["content"], signed["headers"])


def refusing(response: httpx.Response) -> SendFailure:
    @contextlib.asynccontextmanager
    async def failure(config: Config) -> AsyncIterator[tuple[Channel, OutboundMessage]]:
        message = OutboundMessage(channel="sms", provider="twilio", number=TWILIO_NUMBER, customer=CUSTOMER, text="hi")
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=True) as api:
                api.post(MESSAGES_URL).mock(return_value=response)
                yield spec.build(config, Resources(http=http)), message

    return failure


def status(value: str) -> Call:
    fields = {"MessageSid": "SM" + "9" * 32, "MessageStatus": value, "From": TWILIO_NUMBER, "To": CUSTOMER}
    return call(STATUS, fields)


KIT = ChannelKit(
    config=make_config,
    good=call(INBOUND, twilio_inbound()),
    forged=call(INBOUND, twilio_inbound(), token="not-the-auth-token"),
    bad=call(INBOUND, twilio_inbound(From="not a number")),
    customer=Address("tel", CUSTOMER),
    permanent=refusing(httpx.Response(400, json={"code": 21211, "message": "invalid To"})),
    retryable=refusing(httpx.Response(503, json={"code": 20503, "message": "unavailable"})),
    statuses=[(status("delivered"), "delivered"), (status("undelivered"), "undelivered"), (status("read"), "read")],
)
