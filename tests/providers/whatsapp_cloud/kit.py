"""The conformance kit of the whatsapp_cloud channel (see tests/providers/conformance.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

from chatflow.domain.addresses import Address
from chatflow.domain.channel import Channel, Resources
from chatflow.domain.config import Config
from chatflow.domain.messages import OutboundMessage
from providers.whatsapp_cloud import spec
from tests.providers.conformance import Call, ChannelKit, SendFailure
from tests.providers.conftest import (
    CUSTOMER,
    GRAPH_MESSAGES_URL,
    PUBLIC_URL,
    WHATSAPP_NUMBER,
    make_config,
    meta_messages,
    meta_post,
    meta_text,
)

URL = f"{PUBLIC_URL}/webhooks/whatsapp"


def call(payload: Any, secret: str = "meta-app-secret") -> Call:
    signed = meta_post(payload, secret)
    return Call("POST", URL, signed["content"], signed["headers"])


def refusing(response: httpx.Response) -> SendFailure:
    @contextlib.asynccontextmanager
    async def failure(config: Config) -> AsyncIterator[tuple[Channel, OutboundMessage]]:
        message = OutboundMessage(
            channel="whatsapp",
            provider="whatsapp_cloud",
            number=WHATSAPP_NUMBER,
            customer=CUSTOMER,
            text="hi",
            last_inbound_at=datetime.now(UTC).isoformat(),  # within the 24-hour window
        )
        async with httpx.AsyncClient() as http:
            with respx.mock(assert_all_called=True) as api:
                api.post(GRAPH_MESSAGES_URL).mock(return_value=response)
                yield spec.build(config, Resources(http=http)), message

    return failure


def status(value: str) -> Call:
    statuses = [{"id": "wamid.OUT1", "status": value, "timestamp": "1760000000", "recipient_id": CUSTOMER[1:]}]
    return call(meta_messages(statuses=statuses))


KIT = ChannelKit(
    config=make_config,
    good=call(meta_messages(meta_text("wamid.A1", "hi"))),
    forged=call(meta_messages(meta_text("wamid.A1", "hi")), secret="not-the-app-secret"),
    bad=call("not an object"),
    customer=Address("whatsapp", CUSTOMER),
    permanent=refusing(httpx.Response(400, json={"error": {"code": 131026, "message": "undeliverable"}})),
    retryable=refusing(httpx.Response(429, text="slow down", headers={"Retry-After": "3"})),
    statuses=[(status("delivered"), "delivered"), (status("read"), "read"), (status("failed"), "failed")],
)
