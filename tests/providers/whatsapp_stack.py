"""The web app and the worker as `chatflow dev` runs them, one WhatsApp Cloud number and one Twilio
WhatsApp number (each with an SMS fallback_number on Twilio) bound to a test's flow, and the
providers' APIs mocked at the HTTP layer with respx: what the conversation sends is seen as the
calls it makes to the Graph API and to Twilio's Messages API."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx
from redis.asyncio import Redis
from temporalio.client import Client

import providers
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.config import Config, parse_config
from chatflow.flows.flow import Flow
from tests.helpers import running_app, running_worker, started_services
from tests.providers.conftest import (
    GRAPH_MESSAGES_URL,
    MESSAGES_URL,
    PHONE_NUMBER_ID,
    PUBLIC_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    make_settings,
)

KEY = "whatsapp-stack-key"
TWILIO_WHATSAPP = "+15005550009"
STATUS_URL = f"{PUBLIC_URL}/webhooks/twilio/status"
CONTENTS_URL = "https://content.twilio.com/v1/ContentAndApprovals"


def config(flow: str, **settings: str) -> Config:
    toml = f"""
[[numbers]]
number = "{WHATSAPP_NUMBER}"
provider = "whatsapp_cloud"
flow = "{flow}"
phone_number_id = "{PHONE_NUMBER_ID}"
fallback_number = "{TWILIO_NUMBER}"

[[numbers]]
number = "{TWILIO_WHATSAPP}"
provider = "twilio"
channel = "whatsapp"
flow = "{flow}"
fallback_number = "{TWILIO_NUMBER}"

[[numbers]]
number = "{TWILIO_NUMBER}"
provider = "twilio"
channel = "sms"
flow = "{flow}"
"""
    parsed = parse_config(toml, make_settings(), channels=providers.CHANNELS)
    parsed.settings = make_settings(api_key=KEY, **settings)
    return parsed


@dataclass
class Stack:
    client: Client
    redis: Redis
    web: httpx.AsyncClient
    router: respx.MockRouter
    graph: respx.Route
    twilio: respx.Route
    contents: respx.Route  # Twilio's Content API: by default, an account without content templates

    def graph_sent(self, customer: str) -> list[dict[str, Any]]:
        bodies = [json.loads(call.request.content) for call in self.graph.calls]
        return [body for body in bodies if body.get("to") == customer[1:]]

    def twilio_sent(self, customer: str) -> list[dict[str, str]]:
        forms = [{k: v[0] for k, v in parse_qs(call.request.content.decode()).items()} for call in self.twilio.calls]
        return [form for form in forms if form["To"].removeprefix("whatsapp:") == customer]

    async def until(self, what: Callable[[], Any], wanted: Callable[[Any], bool]) -> Any:
        """`what()` once `wanted` says so (or as it is after a while, for the assertion to show)."""
        seen = what()
        for _ in range(400):
            seen = what()
            if wanted(seen):
                break
            await asyncio.sleep(0.05)
        return seen

    async def view(self, conversation: ConversationRef) -> dict[str, Any]:
        answer = await self.web.get(f"/api/conversations/{conversation.id}")
        return dict(answer.json()) if answer.status_code == 200 else {}

    async def view_until(
        self, conversation: ConversationRef, wanted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        view: dict[str, Any] = {}
        for _ in range(400):
            view = await self.view(conversation)
            if view and wanted(view):
                break
            await asyncio.sleep(0.05)
        return view


def graph_accepting() -> Callable[[httpx.Request], httpx.Response]:
    """Meta's answer to a send: 200 with the message's wamid (one of its own each time)."""
    ids = itertools.count(1)
    prefix = uuid.uuid4().hex[:8]

    def respond(request: httpx.Request) -> httpx.Response:
        wamid = f"wamid.{prefix}{next(ids)}"
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": json.loads(request.content).get("to", ""), "wa_id": ""}],
                "messages": [{"id": wamid}],
            },
        )

    return respond


def twilio_creating() -> Callable[[httpx.Request], httpx.Response]:
    ids = itertools.count(1)
    prefix = uuid.uuid4().hex[:8]

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"sid": f"SM{prefix}{next(ids):024d}", "status": "queued"})

    return respond


@contextlib.asynccontextmanager
async def whatsapp_stack(
    client: Client, redis: Redis, flows: Sequence[type[Flow]], flow: str, history_limit: int = 0, **settings: str
) -> AsyncIterator[Stack]:
    with respx.mock(assert_all_called=False) as router:
        graph = router.post(GRAPH_MESSAGES_URL).mock(side_effect=graph_accepting())
        twilio = router.post(MESSAGES_URL).mock(side_effect=twilio_creating())
        empty = {"contents": [], "meta": {"page": 0, "page_size": 500, "next_page_url": None, "key": "contents"}}
        contents = router.get(CONTENTS_URL).mock(return_value=httpx.Response(200, json=empty))
        async with (
            started_services(
                config(flow, **settings), flows, client=client, redis=redis, history_limit=history_limit
            ) as services,
            running_worker(services),
            running_app(services) as web,
        ):
            web.headers.update({"Authorization": f"Bearer {KEY}"})
            yield Stack(client, redis, web, router, graph, twilio, contents)
