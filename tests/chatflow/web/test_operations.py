"""The operations API as `chatflow web` serves it: dead letters listed with reason and time,
retried, counted in /metrics, behind the API key."""

import asyncio
import uuid
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import encode, partition_of
from conversations.demo import Demo
from tests.helpers import new_customer, running_app, started_services, stream_add
from tests.providers.conftest import TWILIO_NUMBER, make_config

API_KEY = "ops-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def message(text: str) -> InboundMessage:
    return InboundMessage(
        id=f"SM{uuid.uuid4().hex}",
        channel="sms",
        provider="twilio",
        customer=new_customer(),
        number=TWILIO_NUMBER,
        text=text,
    )


def too_large() -> float:
    return REGISTRY.get_sample_value("chatflow_dead_letters_total", {"kind": "too_large"}) or 0.0


async def test_dead_letters_are_counted_listed_and_retried(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    huge, fine = message("a" * 300 * 1024), message("hello")
    # Buffered as an older version (or a channel with a bigger body limit) would have: over the limit.
    await stream_add(redis, keys.inbox(partition_of(huge.conversation.id)), {"m": encode(huge, "demo")})
    # Put aside earlier (Temporal refused it then), to be retried now.
    fields = {"m": encode(fine, "demo"), "reason": "Temporal refused it 5 times", "kind": "refused", "partition": "0"}
    refused = await stream_add(redis, keys.inbox_dead(), fields)
    counted_before = too_large()

    async with started_services(make_config(api_key=API_KEY), [Demo], client=dev_env.client, redis=redis) as services:
        async with running_app(services) as web:
            assert (await web.get("/api/dead-letters")).status_code == 401
            assert (await web.get("/api/dead-letters", headers={"Authorization": "Bearer nope"})).status_code == 401

            async def listed() -> list[dict[str, Any]]:
                answer = await web.get("/api/dead-letters", headers=AUTH)
                assert answer.status_code == 200
                letters: list[dict[str, Any]] = answer.json()["dead_letters"]
                return letters

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while len(letters := await listed()) < 2:
                assert loop.time() < deadline, f"only {letters}"
                await asyncio.sleep(0.1)
            assert [(d["message_id"], d["kind"]) for d in letters] == [(fine.id, "refused"), (huge.id, "too_large")]
            assert "over the 262144-byte limit" in letters[1]["reason"]
            assert letters[1]["at"] and letters[1]["conversation"] == huge.conversation.id
            assert too_large() == counted_before + 1
            assert "chatflow_dead_letters_total" in (await web.get("/metrics")).text

            assert (await web.post(f"/api/dead-letters/{letters[1]['id']}/retry", headers=AUTH)).status_code == 422
            assert (await web.post("/api/dead-letters/1-0/retry", headers=AUTH)).status_code == 404
            assert (await web.post(f"/api/dead-letters/{refused}/retry")).status_code == 401
            retried = await web.post(f"/api/dead-letters/{refused}/retry", headers=AUTH)
            assert retried.status_code == 202 and retried.json()["status"] == "retried"

            handle = dev_env.client.get_workflow_handle(fine.conversation.id)
            while True:  # the app's forwarder hands it on
                try:
                    await handle.describe()
                    break
                except Exception:  # noqa: BLE001 - not yet
                    assert loop.time() < deadline, "the retried message was not forwarded"
                    await asyncio.sleep(0.1)
            assert [d["message_id"] for d in await listed()] == [huge.id]
