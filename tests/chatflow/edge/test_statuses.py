"""Delivery statuses reach the conversation that sent the message, found by the provider's message
id (recorded by the send ledger when the provider took the message), also when the status names
no conversation (Twilio's callbacks without To or From, as in Twilio's own examples) or another
one (a Meta status naming the customer by user id when we wrote to their phone number)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.messages import DeliveryUpdate, SendResult
from chatflow.edge.ledger import SENT_TTL, SendLedger, SentMessages, sent_message
from chatflow.edge.statuses import StatusRouter
from chatflow.runtime.services import Services
from conversations.demo import Demo
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import (
    ACCOUNT_SID,
    PUBLIC_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    Recorder,
    make_config,
    meta_messages,
    meta_post,
    meta_text,
    twilio_inbound,
    twilio_post,
    webhook_client,
)

KEY = "statuses-key"
CONFIG = make_config(api_key=KEY)
AUTH = {"Authorization": f"Bearer {KEY}"}
ID_PREFIX = {"twilio": "SM" + uuid.uuid4().hex, "whatsapp_cloud": "wamid." + uuid.uuid4().hex}


class Routed(Recorder):
    """The channels' routes reporting statuses through a StatusRouter, as the web app does."""

    def __init__(self, router: StatusRouter) -> None:
        super().__init__()
        self.router = router

    async def report(self, conversation: str, update: DeliveryUpdate) -> bool:
        return await self.router.report(conversation, update)


@dataclass
class Stack:
    services: Services
    web: httpx.AsyncClient  # the app, for inbound messages and the journeys API
    statuses: httpx.AsyncClient  # the channels' routes, statuses through the router
    sent: dict[str, RecordingChannel]

    def first_id(self, provider: str) -> str:
        """The id the provider gave the first message sent through it."""
        return f"{ID_PREFIX[provider]}-1"


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[Stack]:
    async with started_services(CONFIG, [Demo], client=dev_env.client, redis=redis) as services:
        sent = {name: RecordingChannel(services.channels[name], ids=ids) for name, ids in ID_PREFIX.items()}
        services.channels.update(sent)
        router = StatusRouter(services.client, sent=SentMessages(redis))
        async with (
            running_worker(services),
            running_app(services) as web,
            webhook_client(CONFIG, Routed(router), channels=services.channels) as statuses,
        ):
            web.headers.update(AUTH)
            yield Stack(services, web, statuses, sent)


async def status_of(web: httpx.AsyncClient, id: str, message_id: str, expected: str) -> str:
    """The transcript's status of `message_id` once it is `expected` (or what it is after a while)."""
    status = ""
    for _ in range(200):
        view = (await web.get(f"/api/conversations/{id}")).json()
        status = next((t["status"] for t in view.get("transcript", []) if t.get("message_id") == message_id), "")
        if status == expected:
            break
        await asyncio.sleep(0.05)
    return status


async def test_a_twilio_status_callback_without_to_or_from_reaches_the_conversation(stack: Stack) -> None:
    customer = new_customer()
    inbound = twilio_inbound(sid="SM" + uuid.uuid4().hex, From=customer)
    answer = await stack.web.post("/webhooks/twilio", **twilio_post(f"{PUBLIC_URL}/webhooks/twilio", inbound))
    assert answer.status_code == 200
    await stack.sent["twilio"].wait_for(customer, 1)
    message_id = stack.first_id("twilio")
    # Twilio's documented callback: no To, no From (we sent it, from the config's one number).
    callback = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "MessageSid": message_id,
        "MessageStatus": "delivered",
        "SmsSid": message_id,
        "SmsStatus": "delivered",
        "RawDlrDoneDate": "2511221030",
    }
    url = f"{PUBLIC_URL}/webhooks/twilio/status"
    assert (await stack.statuses.post("/webhooks/twilio/status", **twilio_post(url, callback))).status_code < 300
    id = ConversationRef("sms", TWILIO_NUMBER, customer).id
    assert await status_of(stack.web, id, message_id, "delivered") == "delivered"


async def test_a_meta_status_naming_the_customer_by_user_id_reaches_the_phone_conversation(stack: Stack) -> None:
    customer = new_customer()
    inbound = meta_messages(
        meta_text("wamid." + uuid.uuid4().hex, "hi", sender=customer[1:]),
        contacts=[{"profile": {"name": "Ada"}, "wa_id": customer[1:]}],
    )
    assert (await stack.web.post("/webhooks/whatsapp", **meta_post(inbound))).status_code == 200
    await stack.sent["whatsapp_cloud"].wait_for(customer, 1)
    message_id = stack.first_id("whatsapp_cloud")
    # A status as Meta sends it once the customer hides their number: a user id, no phone.
    status = {
        "id": message_id,
        "status": "read",
        "timestamp": "1763807400",
        "recipient_user_id": "US.13491208655302741918",
        "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "service"}},
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"},
    }
    answer = await stack.statuses.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[status])))
    assert answer.status_code == 200
    id = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer).id
    assert await status_of(stack.web, id, message_id, "read") == "read"


async def test_a_status_that_comes_before_the_ledger_records_its_send_still_reaches_the_conversation(
    stack: Stack, redis: Redis
) -> None:
    customer = new_customer()
    inbound = meta_messages(meta_text("wamid." + uuid.uuid4().hex, "hi", sender=customer[1:]))
    assert (await stack.web.post("/webhooks/whatsapp", **meta_post(inbound))).status_code == 200
    await stack.sent["whatsapp_cloud"].wait_for(customer, 1)
    message_id = stack.first_id("whatsapp_cloud")
    id = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer).id
    # The provider reports the message before the ledger has recorded who sent it: taken away
    # here until the status has arrived, as it is in the moment after the provider's answer.
    for _ in range(100):
        if await redis.getdel(sent_message(message_id)):
            break
        await asyncio.sleep(0.02)

    async def recorded_late() -> None:
        await asyncio.sleep(0.2)
        await redis.set(sent_message(message_id), id, ex=SENT_TTL)

    status = {"id": message_id, "status": "read", "timestamp": "1763807400", "recipient_user_id": "US.1349120865530"}
    late = asyncio.create_task(recorded_late())
    answer = await stack.statuses.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[status])))
    await late
    assert answer.status_code == 200
    assert await status_of(stack.web, id, message_id, "read") == "read"


async def test_a_send_the_provider_took_names_its_conversation_for_days(redis: Redis) -> None:
    key = "chat:sms:+15005550006:+14155550100/run-1/activity-3"
    await SendLedger(redis).record(key, SendResult("SM-took", "queued"))
    assert await SentMessages(redis).conversation("SM-took") == "chat:sms:+15005550006:+14155550100"
    assert timedelta(days=2) < timedelta(seconds=await redis.ttl(sent_message("SM-took"))) <= SENT_TTL
    assert await SentMessages(redis).conversation("SM-someone-elses") == ""
