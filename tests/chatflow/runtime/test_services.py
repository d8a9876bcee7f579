"""The one wiring, `Services`, as `chatflow web` and `chatflow worker` run it: webhooks take the
Redis edge into the conversations, and the channel fallback works end to end."""

import asyncio
import logging
import uuid
from dataclasses import replace

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import Delay, End, Flow, Say, days
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import PARTITIONS, decode
from chatflow.temporal.client import start_journey
from chatflow.temporal.workflow import ConversationWorkflow
from conversations.demo import Demo
from tests.helpers import (
    RecordingChannel,
    new_customer,
    running_app,
    running_worker,
    started_services,
    stream_entries,
    web_client,
)
from tests.providers.conftest import (
    PUBLIC_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    make_config,
    meta_messages,
    meta_post,
    twilio_inbound,
    twilio_post,
)

URL = f"{PUBLIC_URL}/webhooks/twilio"
MENU = "What can I do for you?\n\n1. Opening hours\n2. Track my order\n3. Talk to a person"


async def buffered(redis: Redis) -> list[tuple[InboundMessage, str]]:
    """What waits in the Redis buffer, every partition, in order."""
    return [decode(fields["m"]) for p in range(PARTITIONS) for _, fields in await stream_entries(redis, keys.inbox(p))]


async def ever_buffered(redis: Redis) -> int:
    """Messages ever added to the buffer, forwarded (and deleted) or not."""
    streams = [keys.inbox(p) for p in range(PARTITIONS)]
    return sum([(await redis.xinfo_stream(s))["entries-added"] for s in streams if await redis.exists(s)])


async def test_a_webhook_in_the_test_app_takes_the_redis_edge_path_of_chatflow_web(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    sid = "SM" + uuid.uuid4().hex
    hello = twilio_post(URL, twilio_inbound(sid, "hello", From=customer))
    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])

        # A web tier whose forwarder is not running (or whose Temporal is away): the webhook is
        # answered once the message is in Redis, and Twilio's retry of it is dropped at the edge.
        async with web_client(services.web_app()) as web:
            first = await web.post(URL, **hello)
            retry = await web.post(URL, **hello)
        assert (first.status_code, retry.status_code) == (200, 200)
        assert await redis.exists(keys.seen(sid, keys.partition_of(ConversationRef("sms", TWILIO_NUMBER, customer).id)))
        assert [(m.id, m.customer, m.text, flow) for m, flow in await buffered(redis)] == [
            (sid, customer, "hello", "demo")
        ]

        # `chatflow web` as it runs: its forwarder drains the buffer into the conversation, and
        # `chatflow worker` answers it.
        async with running_worker(services), running_app(services) as web:
            assert await bot.wait_for(customer, 2) == ["Hi! I'm the chatflow demo bot.", MENU]
            late = await web.post(URL, **hello)  # Twilio retries once more, after it was forwarded
            handle = dev_env.client.get_workflow_handle(ConversationRef("sms", TWILIO_NUMBER, customer).id)
            snapshot = await handle.query(ConversationWorkflow.snapshot)

    assert late.status_code == 200
    assert await buffered(redis) == []  # forwarded, then deleted
    assert await ever_buffered(redis) == 1  # neither retry got past the edge
    assert snapshot.signals == 1  # the conversation was handed the message once
    assert [t.text for t in snapshot.transcript if t.direction == "in"] == ["hello"]
    assert bot.to(customer) == ["Hi! I'm the chatflow demo bot.", MENU]


class ShippingNotice(Flow):
    notify = Say("Your parcel arrives today.")
    done = End()


async def test_a_failed_whatsapp_message_goes_again_by_sms(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    config = make_config()
    config.numbers = [
        replace(b, fallback_number=TWILIO_NUMBER) if b.provider == "whatsapp_cloud" else b for b in config.numbers
    ]
    customer = new_customer()
    async with started_services(config, [ShippingNotice], client=dev_env.client, redis=redis) as services:
        whatsapp = services.channels["whatsapp_cloud"] = RecordingChannel(
            services.channels["whatsapp_cloud"], ids="wamid"
        )
        sms = services.channels["twilio"] = RecordingChannel(services.channels["twilio"], ids="SM")
        async with running_worker(services), running_app(services) as web:
            ref = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer, "whatsapp_cloud")
            handle = await start_journey(dev_env.client, ref, "shipping_notice", {}, task_queue=services.task_queue)
            await handle.result()
            assert whatsapp.to(customer) == ["Your parcel arrives today."]

            failed = {
                "id": "wamid-1",
                "status": "failed",
                "timestamp": "1760000000",
                "recipient_id": customer[1:],
                "errors": [{"code": 131026, "title": "Message undeliverable"}],
            }
            answer = await web.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[failed])))
            assert answer.status_code == 200
            await sms.wait_for(customer, 1)  # the worker's sweeper runs every few seconds
    assert [(m.channel, m.number, m.customer, m.text) for m in sms.sent] == [
        ("sms", TWILIO_NUMBER, customer, "Your parcel arrives today.")
    ]


class LateNotice(Flow):
    """Says something a day after a journey starts, with no template."""

    name = "late_notice"

    wait = Delay(days(1))
    late = Say("A day later")
    done = End("completed")


async def test_the_worker_warns_at_start_of_steps_that_would_send_free_text_outside_the_whatsapp_window(
    dev_env: WorkflowEnvironment, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with started_services(make_config(), [Demo, LateNotice], client=dev_env.client, redis=redis) as services:
        with caplog.at_level(logging.WARNING, logger="chatflow.runtime.services"):
            services.warn_outside_window()
        assert [record.getMessage() for record in caplog.records] == [
            "late_notice.late (Say) may send free text outside WhatsApp's 24-hour window (a conversation the "
            "business starts) and has no template=: wait -(next)-> late"
        ]
        caplog.clear()
        # Without a WhatsApp number, nothing to warn about.
        sms_only = replace(services.config, numbers=[b for b in services.config.numbers if b.channel != "whatsapp"])
        services.config = sms_only
        services.warn_outside_window()
        assert caplog.records == []


async def test_with_the_forwarder_in_the_worker_the_web_app_only_buffers_and_the_worker_forwards(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    config = make_config()
    config = replace(config, settings=replace(config.settings, forwarder="worker"))
    customer = new_customer()
    sid = "SM" + uuid.uuid4().hex
    async with started_services(config, [Demo], client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        # `chatflow web` as it runs, lifespan and its loops included: the message is acknowledged
        # once in Redis, and stays there (under the default the app forwards it within milliseconds).
        async with running_app(services) as web:
            answer = await web.post(URL, **twilio_post(URL, twilio_inbound(sid, "hello", From=customer)))
            await asyncio.sleep(1.0)
            waiting = [(m.id, flow) for m, flow in await buffered(redis)]
            # `chatflow worker` forwards it, and answers it.
            async with running_worker(services):
                assert await bot.wait_for(customer, 2) == ["Hi! I'm the chatflow demo bot.", MENU]
    assert answer.status_code == 200
    assert waiting == [(sid, "demo")]
    assert await buffered(redis) == []
