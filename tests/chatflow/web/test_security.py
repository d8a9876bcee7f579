"""The security review's reproductions (issue 18), attacked from outside as the review did: each
test failed on the code the review ran and passes now.

The web app is served as `chatflow web` serves it (Services, the Redis edge, a real Temporal);
webhooks are signed exactly as the provider signs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.web.body import MAX_DEPTH
from tests.flows import FLOWS
from tests.helpers import new_customer, running_app, started_services

KEY = "the-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
NUMBER = "+15005550006"


def config(api_key: str = KEY) -> Config:
    return Config(
        numbers=[NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="parrot", rate=50.0)],
        flow_modules=[],
        settings=Settings(api_key=api_key),
    )


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with started_services(config(), FLOWS, client=dev_env.client, redis=redis) as services:
        async with running_app(services) as http:
            yield http


# -- 8. deep JSON ---------------------------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [MAX_DEPTH, 500, 950])
async def test_deeply_nested_json_in_journey_data_is_refused_with_a_reason(api: httpx.AsyncClient, levels: int) -> None:
    customer = new_customer()
    # The data object is one level, the body another: `levels` arrays inside make it deeper than allowed.
    body = f'{{"flow": "payment", "to": "{customer}", "from": "{NUMBER}", "data": {{"x": {nested(levels)}}}}}'
    answer = await api.post("/api/conversations", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == f"the body nests JSON deeper than {MAX_DEPTH} levels"
    assert (await api.get("/api/conversations", params={"flow": "payment"}, headers=AUTH)).status_code == 200


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/conversations/chat:sms:+15005550006:+14155550100/events", '{{"name": "x", "data": {deep}}}'),
        ("/api/broadcasts", '{{"flow": "payment", "from": "+15005550006", "to": ["+14155550100"], "data": {deep}}}'),
        ("/api/digests", '{{"flow": "payment", "from": "+15005550006", "to": "+14155550100", "event": {deep}}}'),
        ("/api/conversations/chat:sms:+15005550006:+14155550100/replies", '{{"operator": {deep}, "text": "x"}}'),
    ],
)
async def test_every_json_route_refuses_deep_json(api: httpx.AsyncClient, path: str, body: str) -> None:
    answer = await api.post(
        path, content=body.format(deep=nested(950)), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "deeper than" in answer.json()["error"]


async def test_json_as_deep_as_allowed_is_taken(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    data = '{"x": ' + nested(MAX_DEPTH - 2) + "}"  # body, data, then arrays: MAX_DEPTH levels in all
    body = f'{{"flow": "payment", "to": "{customer}", "from": "{NUMBER}", "data": {data}}}'
    answer = await api.post("/api/conversations", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
