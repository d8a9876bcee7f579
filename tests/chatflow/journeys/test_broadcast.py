"""A broadcast's journeys keep their flow's quiet hours: started inside them, each waits for the
window and then sends once (issue 18, finding 9). On Temporal's time-skipping server, through the
journeys API as `chatflow web` serves it."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Say, SendWindow
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.temporal.records import ConversationSnapshot
from chatflow.temporal.workflow import ConversationWorkflow
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services

KEY = "the-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
NUMBER = "+15005550006"
SALE = "Our spring sale starts now!"


async def held(env: WorkflowEnvironment, conversation: str) -> ConversationSnapshot:
    """The conversation once it waits at its first step with nothing sent: held for the window."""
    handle = env.client.get_workflow_handle(conversation)
    snapshot = None
    for _ in range(600):
        try:
            snapshot = await handle.query(ConversationWorkflow.snapshot)
        except Exception:  # noqa: BLE001 - not started yet, or its first task not run yet
            snapshot = None
        if snapshot is not None and snapshot.idle and snapshot.step == "announce":
            return snapshot
        await asyncio.sleep(0.05)
    raise AssertionError(f"{conversation} never waited at announce: {snapshot}")


async def test_a_broadcast_inside_quiet_hours_sends_nothing_until_the_window_then_once(
    skipping_env: WorkflowEnvironment, redis: Redis
) -> None:
    now = await skipping_env.get_current_time()
    opens = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)  # in 1 to 2 hours
    window = SendWindow(time(opens.hour), time((opens.hour + 2) % 24))

    class Sale(Flow):
        name = "spring_sale"
        quiet_hours = window
        announce = Say(SALE)
        done = End("completed")

    binding = NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="spring_sale")
    config = Config(numbers=[binding], flow_modules=[], settings=Settings(api_key=KEY))
    customers = [new_customer() for _ in range(3)]
    conversations = [ConversationRef("sms", NUMBER, customer).id for customer in customers]
    async with started_services(config, [Sale], client=skipping_env.client, redis=redis) as services:
        bot = services.channels["console"] = RecordingChannel(services.channels["console"])
        async with running_worker(services), running_app(services) as api:
            body = {"flow": "spring_sale", "from": NUMBER, "to": customers, "data": {"timezone": "UTC"}}
            answer = await api.post("/api/broadcasts", json=body, headers=AUTH)
            assert answer.status_code == 202, answer.text
            for conversation in conversations:
                snapshot = await held(skipping_env, conversation)
                assert snapshot.transcript == []
            for _ in range(400):
                status = (await api.get(f"/api/broadcasts/{answer.json()['id']}", headers=AUTH)).json()
                if status["done"]:
                    break
                await asyncio.sleep(0.05)
            assert (status["started"], status["total"]) == (3, 3)

            # Most of the way to the window: still nothing.
            await skipping_env.sleep(timedelta(minutes=55))
            for conversation in conversations:
                await held(skipping_env, conversation)
            assert bot.sent == []

            # Past its opening: each customer gets the message, once.
            await skipping_env.sleep(timedelta(hours=1, minutes=10))
            for conversation in conversations:
                handle = skipping_env.client.get_workflow_handle(conversation)
                await handle.result()
                [turn] = (await handle.query(ConversationWorkflow.snapshot)).transcript
                assert turn.text == SALE and datetime.fromisoformat(turn.at) >= opens
            assert {customer: bot.to(customer) for customer in customers} == {c: [SALE] for c in customers}
