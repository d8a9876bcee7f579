"""WhatsApp's 24-hour window per customer and number, recorded at the edge and read by every send."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from redis.asyncio import Redis

from chatflow import Template
from chatflow.domain.addresses import ID_KEY, Address
from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage, OutboundMessage
from chatflow.edge import keys
from chatflow.edge.dedupe import Dedupe, deduped
from chatflow.edge.inbound import InboundEdge
from chatflow.edge.optout import OptOuts
from chatflow.edge.send_guard import SendGuard
from chatflow.edge.windows import ServiceWindows
from providers.whatsapp_cloud import WhatsAppCloudChannel
from tests.providers.conftest import GRAPH_MESSAGES_URL, WHATSAPP_NUMBER, make_config

WROTE, NEVER_WROTE = "+14155550100", "+14155550199"
BINDING = NumberBinding(Address("whatsapp", WHATSAPP_NUMBER), "whatsapp_cloud", "whatsapp", "demo")
PAYMENT_FAILED = Template("payment_failed", language="en", body=["{order_id}"])


def inbound(customer: str, received_at: datetime, channel: str = "whatsapp") -> InboundMessage:
    return InboundMessage(
        id=uuid.uuid4().hex,
        channel=channel,
        provider="whatsapp_cloud",
        customer=customer,
        number=WHATSAPP_NUMBER,
        text="hello",
        received_at=received_at.isoformat(),
    )


def journey_message(customer: str) -> OutboundMessage:
    """What a journey's first step sends: its conversation has never seen the customer write."""
    template = PAYMENT_FAILED.render({"order_id": "A-1"})
    return OutboundMessage(
        "whatsapp",
        "whatsapp_cloud",
        WHATSAPP_NUMBER,
        customer,
        "Your payment for order A-1 failed",
        template=template.label,
        template_message=template,
    )


async def noop(message: InboundMessage, flow: str) -> None:
    pass


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def cloud() -> AsyncIterator[WhatsAppCloudChannel]:
    async with httpx.AsyncClient() as http:
        yield WhatsAppCloudChannel(make_config(), http)


async def test_a_journey_to_a_customer_who_wrote_an_hour_ago_sends_free_text_and_one_who_never_wrote_the_template(
    redis: Redis, graph: respx.MockRouter, cloud: WhatsAppCloudChannel
) -> None:
    windows = ServiceWindows(redis)
    dedupe = Dedupe(redis)
    edge = InboundEdge(deduped(noop, dedupe), OptOuts(redis), dedupe, windows=windows)
    await edge.receive(BINDING, inbound(WROTE, datetime.now(UTC) - timedelta(hours=1)))
    sent = graph.post(GRAPH_MESSAGES_URL).mock(
        return_value=httpx.Response(200, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.X"}]})
    )
    guard = SendGuard(OptOuts(redis), windows=windows)
    for customer in (WROTE, NEVER_WROTE):
        message = journey_message(customer)
        await guard.before_send(message)  # as the send activity does before the provider
        await cloud.send(message)
    first, second = (json.loads(call.request.content) for call in sent.calls)
    assert first["type"] == "text" and first["text"]["body"] == "Your payment for order A-1 failed"
    assert second["type"] == "template" and second["template"]["name"] == "payment_failed"


async def test_the_window_is_kept_until_24_hours_after_the_message(redis: Redis) -> None:
    windows = ServiceWindows(redis)
    at = datetime.now(UTC) - timedelta(hours=1)
    await windows.record(inbound(WROTE, at))
    ttl_ms = await redis.pttl(keys.service_window(WHATSAPP_NUMBER, WROTE))
    assert timedelta(hours=22, minutes=59) < timedelta(milliseconds=ttl_ms) <= timedelta(hours=23)
    assert await windows.last_inbound(WHATSAPP_NUMBER, WROTE) == at.isoformat()


async def test_a_message_arriving_late_does_not_move_the_window_back(redis: Redis) -> None:
    windows = ServiceWindows(redis)
    later = datetime.now(UTC) - timedelta(minutes=5)
    await windows.record(inbound(WROTE, later))
    await windows.record(inbound(WROTE, later - timedelta(hours=3)))
    assert await windows.last_inbound(WHATSAPP_NUMBER, WROTE) == later.isoformat()


async def test_a_conversations_own_later_message_is_kept_and_sms_has_no_window(redis: Redis) -> None:
    windows = ServiceWindows(redis)
    await windows.record(inbound(WROTE, datetime.now(UTC) - timedelta(hours=5)))
    await windows.record(inbound(NEVER_WROTE, datetime.now(UTC), channel="sms"))
    assert await windows.last_inbound(WHATSAPP_NUMBER, NEVER_WROTE) == ""
    message = journey_message(WROTE)
    message.last_inbound_at = own = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await windows.widen(message)
    assert message.last_inbound_at == own


async def test_with_an_id_key_the_window_is_kept_under_the_customers_token(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ID_KEY, base64.b64encode(os.urandom(32)).decode())
    windows = ServiceWindows(redis)
    at = datetime.now(UTC) - timedelta(hours=1)
    await windows.record(inbound(WROTE, at))
    assert await windows.last_inbound(WHATSAPP_NUMBER, WROTE) == at.isoformat()
    names = [name async for name in redis.scan_iter("*")]
    assert names and not [name for name in names if WROTE[1:] in str(name)]
