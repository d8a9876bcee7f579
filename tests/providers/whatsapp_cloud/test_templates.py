"""Templates with parameters through the Cloud API (Meta's documented request bodies), mocked at
the HTTP layer with respx: outside the window the declared template goes, with its components."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from chatflow import Button, Template
from chatflow.domain.messages import OutboundMessage
from providers.whatsapp_cloud import WhatsAppCloudChannel
from tests.providers.conftest import CUSTOMER, GRAPH_MESSAGES_URL, WHATSAPP_NUMBER, make_config

DATA = {"order_id": "A-1042", "payment_link": "https://pay.example.com/A-1042", "name": "Ana"}
PAYMENT_FAILED = Template("payment_failed", language="en", body=["{order_id}", "{payment_link}"])


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def provider() -> AsyncIterator[WhatsAppCloudChannel]:
    async with httpx.AsyncClient() as http:
        yield WhatsAppCloudChannel(make_config(), http)


def accepted(wamid: str = "wamid.OUT1") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": CUSTOMER[1:], "wa_id": CUSTOMER[1:]}],
            "messages": [{"id": wamid}],
        },
    )


def outbound(template: Template, last_inbound_at: str = "", text: str = "Free text") -> OutboundMessage:
    rendered = template.render(DATA)
    return OutboundMessage(
        "whatsapp",
        "whatsapp_cloud",
        WHATSAPP_NUMBER,
        CUSTOMER,
        text,
        template=rendered.label,
        last_inbound_at=last_inbound_at,
        template_message=rendered,
    )


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


async def test_a_customer_who_never_wrote_gets_the_template_with_the_order_and_link(
    provider: WhatsAppCloudChannel, graph: respx.MockRouter
) -> None:
    sent = graph.post(GRAPH_MESSAGES_URL).mock(return_value=accepted())
    await provider.send(outbound(PAYMENT_FAILED))
    assert bodies(sent) == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER[1:],
            "type": "template",
            "template": {
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
            },
        }
    ]


async def test_named_parameters_an_image_header_and_buttons_become_components(
    provider: WhatsAppCloudChannel, graph: respx.MockRouter
) -> None:
    sent = graph.post(GRAPH_MESSAGES_URL).mock(return_value=accepted())
    declared = Template(
        "order_shipped",
        language="en_US",
        header=["https://cdn.example.com/{order_id}.jpg"],
        header_media="image",
        body={"customer_name": "{name}", "order_id": "{order_id}"},
        buttons=["track/{order_id}", Button(1, "STOP-{order_id}", kind="quick_reply")],
    )
    await provider.send(outbound(declared))
    [body] = bodies(sent)
    assert body["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/A-1042.jpg"}}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "customer_name", "text": "Ana"},
                {"type": "text", "parameter_name": "order_id", "text": "A-1042"},
            ],
        },
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "track/A-1042"}]},
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "STOP-A-1042"}],
        },
    ]


async def test_inside_the_window_the_text_goes_not_the_template(
    provider: WhatsAppCloudChannel, graph: respx.MockRouter
) -> None:
    sent = graph.post(GRAPH_MESSAGES_URL).mock(return_value=accepted())
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await provider.send(outbound(PAYMENT_FAILED, last_inbound_at=an_hour_ago))
    [body] = bodies(sent)
    assert body["type"] == "text" and body["text"]["body"] == "Free text"


@pytest.mark.parametrize("code", [131047, 131026])
async def test_free_text_refused_as_outside_the_window_goes_again_as_its_template(
    provider: WhatsAppCloudChannel, graph: respx.MockRouter, code: int
) -> None:
    # Meta's error body for a re-engagement message (its Cloud API error codes page).
    refusal = httpx.Response(
        400,
        json={
            "error": {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": code,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": "Message failed to send because more than 24 hours have passed since the "
                    "customer last replied to this number.",
                },
                "fbtrace_id": "AbCdEfGh123",
            }
        },
    )
    sent = graph.post(GRAPH_MESSAGES_URL).mock(side_effect=[refusal, accepted("wamid.TEMPLATE")])
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    result = await provider.send(outbound(PAYMENT_FAILED, last_inbound_at=an_hour_ago))
    assert result.message_id == "wamid.TEMPLATE"
    assert [body["type"] for body in bodies(sent)] == ["text", "template"]
    assert bodies(sent)[1]["template"]["name"] == "payment_failed"
