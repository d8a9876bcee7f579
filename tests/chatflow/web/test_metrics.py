"""The web app's Prometheus metrics: each channel's inbound webhooks counted by outcome."""

from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from conversations.demo import Demo
from tests.helpers import new_customer, running_app, started_services
from tests.providers.conftest import (
    CONSOLE_NUMBER,
    PUBLIC_URL,
    TWILIO_NUMBER,
    make_config,
    meta_messages,
    meta_post,
    twilio_inbound,
    twilio_post,
)

WEBHOOKS = "chatflow_webhooks_total"
URL = f"{PUBLIC_URL}/webhooks/twilio"


def sample(name: str, labels: dict[str, str], text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def total(name: str, text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


async def test_webhooks_are_counted_by_provider_and_outcome_and_metrics_parse(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        async with running_app(services) as http:
            before = (await http.get("/metrics")).text
            accepted = await http.post(URL, **twilio_post(URL, twilio_inbound("SM" + "5" * 32, "hi", From=customer)))
            forged = twilio_post(URL, twilio_inbound("SM" + "6" * 32, "hi", From=customer), token="not-the-token")
            rejected = await http.post(URL, **forged)
            after = (await http.get("/metrics")).text

    assert (accepted.status_code, rejected.status_code) == (200, 403)
    for outcome in ("accepted", "rejected"):
        labels = {"provider": "twilio", "outcome": outcome}
        assert sample(WEBHOOKS, labels, after) == sample(WEBHOOKS, labels, before) + 1
    families = {f.name for f in text_string_to_metric_families(after)}
    assert {
        "chatflow_webhooks",
        "chatflow_webhook_duration_seconds",
        "chatflow_sends",
        "chatflow_active_conversations",
    } <= families


async def test_only_inbound_posts_count_as_webhooks(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    customer = new_customer()
    status = {"MessageSid": "SM" + "7" * 32, "MessageStatus": "delivered", "From": TWILIO_NUMBER, "To": customer}
    status_url = f"{URL}/status"
    read = {"id": "wamid.R1", "status": "read", "timestamp": "1760000000", "recipient_id": customer[1:]}
    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        async with running_app(services) as http:
            before = (await http.get("/metrics")).text
            answers = [
                await http.post(status_url, **twilio_post(status_url, status)),
                await http.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[read]))),
                await http.post("/console/messages", json={"from": customer, "to": CONSOLE_NUMBER, "text": "hi"}),
                await http.get("/console/messages", params={"customer": customer}),  # a read: not counted
                await http.post("/webhooks/twilioX"),  # no channel's route: not counted
            ]
            after = (await http.get("/metrics")).text

    assert [a.status_code for a in answers] == [200, 200, 202, 200, 404]
    for provider in ("twilio", "whatsapp_cloud", "console"):
        labels = {"provider": provider, "outcome": "accepted"}
        assert sample(WEBHOOKS, labels, after) == sample(WEBHOOKS, labels, before) + 1, provider
    assert total(WEBHOOKS, after) == total(WEBHOOKS, before) + 3
