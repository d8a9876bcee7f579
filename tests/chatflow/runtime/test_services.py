"""The worker and web app as `chatflow worker`/`web` assemble them: the channel fallback end to end."""

import asyncio
import itertools
from dataclasses import replace

import httpx
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Say
from chatflow.web.app import create_app
from chatflow.domain.addresses import ConversationRef
from chatflow.temporal.client import start_journey
from chatflow.domain.messages import OutboundMessage, SendResult
from chatflow.runtime.services import run_worker
from tests.providers.conftest import (
    CUSTOMER,
    PUBLIC_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    make_config,
    meta_messages,
    meta_post,
)


class Recording:
    """A provider that accepts everything and remembers it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[OutboundMessage] = []
        self._ids = itertools.count(1)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult(message_id=f"{self.name}-{next(self._ids)}", status="sent")


class ShippingNotice(Flow):
    notify = Say("Your parcel arrives today.")
    done = End()


async def test_a_failed_whatsapp_message_goes_again_by_sms(dev_env: WorkflowEnvironment, redis):
    config = make_config()
    config.numbers = [
        replace(b, fallback_number=TWILIO_NUMBER) if b.provider == "whatsapp_cloud" else b
        for b in config.numbers
    ]
    whatsapp, sms = Recording("wamid"), Recording("SM")
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(
            dev_env.client, [ShippingNotice], {"whatsapp_cloud": whatsapp, "twilio": sms}, stop,
            config=config, redis=redis,
        )
    )
    app = create_app(config, dev_env.client, redis=redis)
    try:
        ref = ConversationRef("whatsapp", "whatsapp_cloud", WHATSAPP_NUMBER, CUSTOMER)
        handle = await start_journey(dev_env.client, ref, "shipping_notice", {})
        await handle.result()
        assert [m.text for m in whatsapp.sent] == ["Your parcel arrives today."]

        failed = {"id": "wamid-1", "status": "failed", "timestamp": "1760000000",
                  "recipient_id": CUSTOMER[1:], "errors": [{"code": 131026, "title": "Message undeliverable"}]}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as web:
            answer = await web.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[failed])))
        assert answer.status_code == 200
        for _ in range(200):  # the sweeper runs every few seconds
            if sms.sent:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert [(m.channel, m.number, m.customer, m.text) for m in sms.sent] == [
        ("sms", TWILIO_NUMBER, CUSTOMER, "Your parcel arrives today.")
    ]
