"""Bounded Redis: after a representative run (webhooks, STOP/START/HELP, journeys, a queued
journey, a broadcast, a digest), every key chatflow wrote expires, or is one of the few whose
size is bounded by design (named here with the reason)."""

import asyncio
import re

import httpx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

import providers
from chatflow.domain.config import parse_config
from chatflow.edge import keys
from tests.flows import FLOWS
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import PUBLIC_URL, TWILIO_NUMBER, make_settings, twilio_inbound, twilio_post

KEY = "s3cret"
TOML = f"""
[[numbers]]
number = "{TWILIO_NUMBER}"
provider = "twilio"
channel = "sms"
flow = "parrot"
rate = 50
"""

# Keys without a TTL, each bounded otherwise.
BOUNDED = {
    # The buffer: one stream per partition (a fixed number), drained by the forwarder as Temporal
    # takes each message; its "forwarding" mark, one per partition.
    r"chatflow:inbox:\{\d+\}": "a partition's buffer, drained",
    r"chatflow:inbox:\{\d+\}:forwarding": "one per partition",
    # The consent ledger: one member and one record per customer and scope, history capped.
    r"chatflow:optout:[^{}]+": "one member per opted-out customer",
    r"\{chatflow:optout:[^{}]+\}:(changed|consent)": "one field per customer, history capped",
    # Schedules drained by their loops (digests, the channel fallback's sweeper).
    r"chatflow:\{digest\}:due": "one member per open digest window",
    r"chatflow:fallback:due": "one member per watched WhatsApp message, swept",
}


async def test_every_key_chatflow_writes_expires_or_is_bounded(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    config = parse_config(TOML, make_settings(api_key=KEY), channels=providers.CHANNELS)
    texter, journey_customer, busy = new_customer(), new_customer(), new_customer()
    url = f"{PUBLIC_URL}/webhooks/twilio"

    async def sms(web: httpx.AsyncClient, sid: str, text: str) -> None:
        answer = await web.post(url, **twilio_post(url, twilio_inbound("SM" + sid * 32, text, From=texter)))
        assert answer.status_code == 200

    async with started_services(config, FLOWS, client=dev_env.client, redis=redis) as services:
        bot = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        async with running_worker(services), running_app(services) as web:
            await sms(web, "1", "hello")
            await bot.wait_for(texter, 1)
            for sid, word in (("2", "HELP"), ("3", "STOP"), ("4", "START"), ("5", "again")):
                await sms(web, sid, word)
            await bot.wait_for(texter, 2)
            web.headers["Authorization"] = f"Bearer {KEY}"
            journey = {"flow": "payment", "to": journey_customer, "from": TWILIO_NUMBER, "idempotency_key": "k1"}
            assert (await web.post("/api/conversations", json=journey)).status_code == 202
            busy_journey = {"flow": "payment", "to": busy, "from": TWILIO_NUMBER}
            assert (await web.post("/api/conversations", json=busy_journey)).status_code == 202
            queued = await web.post("/api/conversations", json={**busy_journey, "flow": "payment_queued"})
            assert queued.json()["status"] == "queued"
            broadcast = {"flow": "burst", "from": TWILIO_NUMBER, "to": [new_customer()], "idempotency_key": "sale"}
            assert (await web.post("/api/broadcasts", json=broadcast)).status_code == 202
            digest = {"flow": "order_digest", "to": new_customer(), "from": TWILIO_NUMBER, "event": {"update": "x"}}
            assert (await web.post("/api/digests", json=digest)).status_code == 202
            await bot.wait_for(journey_customer, 1)
            for _ in range(200):  # the broadcast done and the digest sent
                if (await web.get("/api/broadcasts/sale")).json().get("done") and not await redis.zcard(
                    keys.digest_due()
                ):
                    break
                await asyncio.sleep(0.05)

    unbounded = []
    found = []
    async for raw in redis.scan_iter(count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        found.append(key)
        if await redis.ttl(key) == -1 and not any(re.fullmatch(pattern, key) for pattern in BOUNDED):
            unbounded.append(f"{key} ({await redis.type(key)!r})")
    assert unbounded == []
    # The run wrote what it was meant to: the checks above were not of an empty database.
    assert any(key.startswith("chatflow:broadcast:") for key in found)
    assert any(key.startswith("chatflow:{queued}:") for key in found)
    assert any(key.startswith("chatflow:sent:") for key in found)
