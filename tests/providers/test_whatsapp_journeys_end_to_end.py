"""End to end on WhatsApp, as `chatflow dev` runs it: the real app and worker, a real Temporal dev
server, Valkey; payment_recovery journeys started through the journeys API from a Cloud API number
and from a Twilio WhatsApp number (the shared stack binds both, each with an SMS fallback_number);
what leaves is seen as calls to the Graph API and to Twilio's Messages API, mocked with respx.

A journey to a customer who never wrote sends the template with the order and the payment link
(Cloud: `type: template` with components; Twilio: ContentSid and ContentVariables); one to a
customer who wrote on that number (just now to another conversation, since ended; or an hour ago)
sends the free text. A refusal of the free text (Meta's 131047, Twilio's 63016) is followed by the
template, or by the SMS fallback when there is none, each in the conversation's transcript."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.messages import InboundMessage
from chatflow.edge.windows import ServiceWindows
from conversations.demo import Demo
from conversations.payment_recovery import SHOP_API, PaymentRecovery
from tests.helpers import new_customer
from tests.providers.conftest import (
    ACCOUNT_SID,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    meta_messages,
    meta_post,
    meta_text,
)
from tests.providers.whatsapp_stack import CONTENTS_URL, TWILIO_WHATSAPP, Stack, whatsapp_stack

DATA = {"customer_id": "c-7", "order_id": "A-1042", "payment_link": "https://pay.example.com/A-1042"}


PAYMENT_FAILED_SID = "HX" + "e" * 32
TEXT = "Your payment for order A-1042 failed. You can pay again here: https://pay.example.com/A-1042"
# Twilio's error body for free text outside the window (its error 63016).
OUTSIDE_WINDOW = {
    "code": 63016,
    "message": "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template.",
    "more_info": "https://www.twilio.com/docs/errors/63016",
    "status": 400,
}


def approved_contents(*names: str) -> httpx.Response:
    contents = [
        {
            "language": "en",
            "date_updated": "2023-01-13T23:33:46Z",
            "variables": {"1": "A-0001", "2": "https://pay.example.com/A-0001"},
            "friendly_name": name,
            "account_sid": ACCOUNT_SID,
            "sid": PAYMENT_FAILED_SID,
            "date_created": "2023-01-13T23:33:46Z",
            "types": {"twilio/text": {"body": "Your payment for order {{1}} failed. You can pay again here: {{2}}"}},
            "approval_requests": {
                "category": "UTILITY",
                "status": "approved",
                "rejection_reason": "",
                "name": name,
                "content_type": "twilio/text",
                "allow_category_change": False,
            },
        }
        for name in names
    ]
    meta = {
        "page": 0,
        "page_size": 500,
        "first_page_url": f"{CONTENTS_URL}?PageSize=500&Page=0",
        "previous_page_url": None,
        "url": f"{CONTENTS_URL}?PageSize=500&Page=0",
        "next_page_url": None,
        "key": "contents",
    }
    return httpx.Response(200, json={"contents": contents, "meta": meta})


def refusing_once(refusal: httpx.Response, then: Any) -> Callable[[httpx.Request], httpx.Response]:
    """The provider's answer to the first send: `refusal`; to the next ones, `then`'s."""
    answered: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        answered.append(request)
        return refusal if len(answered) == 1 else then(request)

    return respond


@contextlib.asynccontextmanager
async def payment_stack(client: Client, redis: Redis, *approved: str) -> AsyncIterator[Stack]:
    async with whatsapp_stack(client, redis, [Demo, PaymentRecovery], "demo") as stack:
        # The shop does not know the customer: the flow sends the payment link.
        stack.router.get(url__startswith=SHOP_API).mock(return_value=httpx.Response(404, json={"error": "unknown"}))
        stack.contents.mock(return_value=approved_contents(*approved))
        yield stack


async def payment_journey(stack: Stack, customer: str, number: str = TWILIO_WHATSAPP) -> None:
    started = await stack.web.post(
        "/api/conversations", json={"flow": "payment_recovery", "to": customer, "from": number, "data": DATA}
    )
    assert started.status_code in (200, 201, 202), started.text


async def wrote_an_hour_ago(redis: Redis, customer: str, number: str = TWILIO_WHATSAPP) -> None:
    """What the edge records of a WhatsApp message the customer sent to the number an hour ago."""
    message = InboundMessage(
        id=f"SM{uuid.uuid4().hex}",
        channel="whatsapp",
        provider="twilio" if number == TWILIO_WHATSAPP else "whatsapp_cloud",
        customer=customer,
        number=number,
        text="hi",
        received_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    )
    await ServiceWindows(redis).record(message)


async def test_twilio_a_journey_to_a_customer_who_never_wrote_sends_the_content_with_order_and_link(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with payment_stack(dev_env.client, redis, "payment_failed") as stack:
        await payment_journey(stack, customer)
        sent = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 1)
    [form] = sent
    assert "Body" not in form
    assert (form["From"], form["ContentSid"]) == (f"whatsapp:{TWILIO_WHATSAPP}", PAYMENT_FAILED_SID)
    assert json.loads(form["ContentVariables"]) == {"1": "A-1042", "2": "https://pay.example.com/A-1042"}


async def test_twilio_a_journey_to_a_customer_who_wrote_an_hour_ago_sends_free_text(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    await wrote_an_hour_ago(redis, customer)
    async with payment_stack(dev_env.client, redis, "payment_failed") as stack:
        await payment_journey(stack, customer)
        sent = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 1)
    [form] = sent
    assert form["Body"] == TEXT and "ContentSid" not in form


async def test_twilio_a_63016_refusal_is_followed_by_the_content_template_in_the_transcript(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    await wrote_an_hour_ago(redis, customer)  # our record says the window is open; WhatsApp's does not
    async with payment_stack(dev_env.client, redis, "payment_failed") as stack:
        stack.twilio.side_effect = refusing_once(httpx.Response(400, json=OUTSIDE_WINDOW), stack.twilio.side_effect)
        await payment_journey(stack, customer)
        sent = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 2)
        ref = ConversationRef("whatsapp", TWILIO_WHATSAPP, customer)
        view = await stack.view_until(ref, lambda v: any(t["message_id"] for t in v["transcript"]))
    refused, template = sent
    assert refused["Body"] == TEXT
    assert template["ContentSid"] == PAYMENT_FAILED_SID
    [line] = [turn for turn in view["transcript"] if turn["direction"] == "out"]
    assert line["text"] == TEXT and line["message_id"].startswith("SM") and line["status"] != "failed"


async def test_twilio_a_63016_refusal_without_the_content_goes_by_sms_in_the_transcript(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    await wrote_an_hour_ago(redis, customer)
    async with payment_stack(dev_env.client, redis) as stack:  # no content approved as payment_failed
        stack.twilio.side_effect = refusing_once(httpx.Response(400, json=OUTSIDE_WINDOW), stack.twilio.side_effect)
        await payment_journey(stack, customer)
        sent = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 2)
        ref = ConversationRef("whatsapp", TWILIO_WHATSAPP, customer)
        view = await stack.view_until(ref, lambda v: sum(t["direction"] == "out" for t in v["transcript"]) >= 2)
    refused, sms = sent
    assert refused["From"] == f"whatsapp:{TWILIO_WHATSAPP}" and refused["Body"] == TEXT
    assert (sms["From"], sms["To"], sms["Body"]) == (TWILIO_NUMBER, customer, TEXT)
    out = [turn for turn in view["transcript"] if turn["direction"] == "out"]
    # The refused WhatsApp line, then the SMS that said it, a line of its own.
    assert [(turn["text"], turn["error_code"]) for turn in out] == [(TEXT, "63016"), (TEXT, "")]
    assert out[1]["message_id"].startswith("SM") and out[1]["status"] != "failed"


async def test_cloud_a_131047_refusal_is_followed_by_the_template_in_the_transcript(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    await wrote_an_hour_ago(redis, customer, WHATSAPP_NUMBER)
    # Meta's error for free text it holds to be outside the window (re-engagement, 131047).
    reengagement = {
        "error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed since the customer "
                "last replied to this number.",
            },
            "fbtrace_id": "AbCdEfGh",
        }
    }
    async with payment_stack(dev_env.client, redis) as stack:
        stack.graph.side_effect = refusing_once(httpx.Response(400, json=reengagement), stack.graph.side_effect)
        await payment_journey(stack, customer, WHATSAPP_NUMBER)
        sent = await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) >= 2)
        ref = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer)
        view = await stack.view_until(ref, lambda v: any(t["message_id"] for t in v["transcript"]))
    refused, template = sent
    assert refused["type"] == "text" and refused["text"]["body"] == TEXT
    assert template["type"] == "template" and template["template"]["name"] == "payment_failed"
    assert [p["text"] for p in template["template"]["components"][0]["parameters"]] == [
        "A-1042",
        "https://pay.example.com/A-1042",
    ]
    [line] = [turn for turn in view["transcript"] if turn["direction"] == "out"]
    assert line["text"] == TEXT and line["message_id"].startswith("wamid.")


async def test_cloud_a_journey_to_a_customer_who_never_wrote_sends_the_template_with_order_and_link(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with payment_stack(dev_env.client, redis) as stack:
        await payment_journey(stack, customer, WHATSAPP_NUMBER)
        sent = await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) >= 1)
    [body] = sent
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


async def test_cloud_a_journey_to_a_customer_who_has_written_on_the_number_sends_free_text(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with payment_stack(dev_env.client, redis) as stack:
        wrote = meta_post(meta_messages(meta_text(f"wamid.{uuid.uuid4().hex}", "hello", sender=customer[1:])))
        assert (await stack.web.post("/webhooks/whatsapp", **wrote)).status_code == 200
        await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) >= 2)  # the demo's greeting, menu
        ref = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer)
        ended = await stack.web.delete(f"/api/conversations/{ref.id}")
        assert ended.status_code in (200, 202), ended.text
        before = len(stack.graph_sent(customer))
        for _ in range(100):  # the demo conversation has ended: a journey may start
            started = await stack.web.post(
                "/api/conversations",
                json={"flow": "payment_recovery", "to": customer, "from": WHATSAPP_NUMBER, "data": DATA},
            )
            if started.status_code != 409:
                break
            await asyncio.sleep(0.1)
        assert started.status_code in (200, 201, 202), started.text
        sent = await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) > before)
    assert sent[before]["type"] == "text"
    assert sent[before]["text"]["body"] == TEXT
