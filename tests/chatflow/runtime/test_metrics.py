"""The worker's metrics: each conversation's end, by flow and outcome, counted once as it ends
(a flow that raises ends `failed`)."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Say
from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from tests.helpers import new_customer, running_app, running_worker, started_services

NUMBER = "+15005550006"
KEY = "metrics-key"
CONFIG = Config(
    numbers=[
        NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="careless", rate=50.0)
    ],
    flow_modules=[],
    settings=Settings(api_key=KEY),
)


class Careless(Flow):
    """Greets by a name nobody gave it: a flow bug."""

    optional = frozenset({"name"})  # says a journey may leave it out, and reads it anyway
    greet = Say("Hi {name}!")


class Polite(Flow):
    bye = End("completed", "Bye!")


def ended(flow: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("chatflow_conversations_ended_total", {"flow": flow, "outcome": outcome}) or 0.0


async def run_to_the_end(api: httpx.AsyncClient, flow: str) -> str:
    answer = await api.post("/api/conversations", json={"flow": flow, "to": new_customer(), "from": NUMBER})
    assert answer.status_code == 202, answer.text
    id = answer.json()["id"]
    for _ in range(400):
        view = (await api.get(f"/api/conversations/{id}")).json()
        if view["state"] == "ended":
            return str(view["outcome"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"{id} never ended: {view}")


async def test_each_conversation_end_is_counted_by_flow_and_outcome(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    # The worker `chatflow worker` runs (Services) counts them; the client has no part in it.
    failed, completed = ended("careless", "failed"), ended("polite", "completed")
    async with started_services(CONFIG, [Careless, Polite], client=dev_env.client, redis=redis) as services:
        async with running_worker(services), running_app(services) as api:
            api.headers["Authorization"] = f"Bearer {KEY}"
            assert await run_to_the_end(api, "careless") == "failed"
            assert await run_to_the_end(api, "polite") == "completed"
    assert ended("careless", "failed") == failed + 1
    assert ended("polite", "completed") == completed + 1
    assert ended("careless", "completed") == 0
