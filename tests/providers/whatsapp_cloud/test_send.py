"""Sending through the WhatsApp Cloud API, mocked at the HTTP layer with respx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import Location, Media, Option, OutboundMessage
from providers.whatsapp_cloud import WhatsAppCloudChannel
from tests.providers.conftest import CUSTOMER, GRAPH_MESSAGES_URL, WHATSAPP_NUMBER, make_config


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def sent(graph: respx.MockRouter) -> respx.Route:
    ids = iter(range(1, 100))
    return graph.post(GRAPH_MESSAGES_URL).mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": CUSTOMER[1:], "wa_id": CUSTOMER[1:]}],
                "messages": [{"id": f"wamid.OUT{next(ids)}"}],
            },
        )
    )


@pytest.fixture
async def provider() -> AsyncIterator[WhatsAppCloudChannel]:
    async with httpx.AsyncClient() as http:
        yield WhatsAppCloudChannel(make_config(), http)


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def outbound(text: str = "Hello", *, last_inbound_at: str | None = None, **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        channel="whatsapp",
        provider="whatsapp_cloud",
        number=WHATSAPP_NUMBER,
        customer=fields.pop("customer", CUSTOMER),
        text=text,
        last_inbound_at=ago(minutes=5) if last_inbound_at is None else last_inbound_at,
        **fields,
    )


def bodies(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def options(count: int, title: str = "Option") -> list[Option]:
    return [Option(f"id{i}", f"{title} {i}", description=f"about {i}") for i in range(1, count + 1)]


async def test_text_goes_to_the_numbers_phone_number_id_with_the_bearer_token(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    result = await provider.send(outbound("Hello"))

    assert (result.message_id, result.status) == ("wamid.OUT1", "accepted")
    request = sent.calls.last.request
    assert request.headers["authorization"] == "Bearer meta-access-token"
    assert bodies(sent) == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER[1:],
            "type": "text",
            "text": {"body": "Hello", "preview_url": False},
        }
    ]


async def test_up_to_three_choices_are_reply_buttons_with_titles_cut_to_20(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    await provider.send(outbound("Pick one", options=options(3, title="A very long button title")))
    [body] = bodies(sent)
    assert body["type"] == "interactive"
    interactive = body["interactive"]
    assert (interactive["type"], interactive["body"]) == ("button", {"text": "Pick one"})
    assert interactive["action"]["buttons"][0] == {
        "type": "reply",
        "reply": {"id": "id1", "title": "A very long button t"},
    }
    assert len(interactive["action"]["buttons"]) == 3


async def test_four_to_ten_choices_are_a_list_with_titles_cut_to_24(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    await provider.send(outbound("Pick one", options=options(10, title="A rather long list row title")))
    interactive = bodies(sent)[0]["interactive"]
    assert interactive["type"] == "list"
    rows = interactive["action"]["sections"][0]["rows"]
    assert len(rows) == 10
    assert rows[0] == {"id": "id1", "title": "A rather long list row t", "description": "about 1"}
    assert len(interactive["action"]["button"]) <= 20


async def test_more_than_ten_choices_fall_back_to_a_numbered_menu(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    await provider.send(outbound("Pick one", options=options(11)))
    [body] = bodies(sent)
    assert body["type"] == "text"
    assert body["text"]["body"].splitlines()[-1] == "11. Option 11"


async def test_media_carries_the_text_as_caption(provider: WhatsAppCloudChannel, sent: respx.Route) -> None:
    await provider.send(
        outbound(
            "Your receipt",
            media=[Media("https://cdn.example.com/r.pdf"), Media("https://cdn.example.com/p.jpg", "image/jpeg")],
        )
    )
    assert [(b["type"], b[b["type"]]) for b in bodies(sent)] == [
        ("document", {"link": "https://cdn.example.com/r.pdf", "caption": "Your receipt"}),
        ("image", {"link": "https://cdn.example.com/p.jpg"}),
    ]


async def test_audio_cannot_carry_a_caption_so_the_text_follows_it(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    result = await provider.send(outbound("Listen", media=[Media("https://cdn.example.com/a.ogg", "audio/ogg")]))
    assert [b["type"] for b in bodies(sent)] == ["audio", "text"]
    assert result.message_id == "wamid.OUT2"  # statuses are followed for the last part


async def test_a_customer_known_only_by_user_id_is_addressed_as_recipient(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    await provider.send(outbound(customer="US.13491208655302741918"))
    body = bodies(sent)[0]
    assert body["recipient"] == "US.13491208655302741918"
    assert "to" not in body


# Ids of their own: a time in an id differs between pytest-xdist's processes, which must collect alike.
@pytest.mark.parametrize("last_inbound_at", ["", ago(hours=24, minutes=1)], ids=["never", "24h01_ago"])
async def test_outside_the_24_hour_window_a_template_is_sent(
    provider: WhatsAppCloudChannel, sent: respx.Route, last_inbound_at: str
) -> None:
    await provider.send(outbound("Free text", last_inbound_at=last_inbound_at, template="order_update:de"))
    [body] = bodies(sent)
    assert body["type"] == "template"
    assert body["template"] == {"name": "order_update", "language": {"code": "de"}}


async def test_template_language_defaults_to_en_us(provider: WhatsAppCloudChannel, sent: respx.Route) -> None:
    await provider.send(outbound(last_inbound_at="", template="payment_failed"))
    assert bodies(sent)[0]["template"]["language"] == {"code": "en_US"}


async def test_inside_the_window_the_template_is_not_used(provider: WhatsAppCloudChannel, sent: respx.Route) -> None:
    await provider.send(outbound("Free text", last_inbound_at=ago(hours=23), template="order_update"))
    assert bodies(sent)[0]["type"] == "text"


async def test_outside_the_window_without_template_fails_permanently_without_calling_meta(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    with pytest.raises(PermanentSendError, match="24 hours") as caught:
        await provider.send(outbound(last_inbound_at=ago(hours=30)))
    assert caught.value.code == "131047"
    assert not sent.called


async def test_an_unbound_sender_number_fails_permanently(provider: WhatsAppCloudChannel, sent: respx.Route) -> None:
    message = outbound()
    message.number = "+15550009999"
    with pytest.raises(PermanentSendError, match="not bound"):
        await provider.send(message)
    assert not sent.called


def meta_error(status: int, code: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {
                "message": f"(#{code}) refused",
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": f"details of {code}"},
            }
        },
        headers=headers,
    )


@pytest.mark.parametrize(
    "code",
    [
        131026,  # message undeliverable
        131047,  # re-engagement: more than 24 hours
        131051,  # unsupported message type
        100,  # invalid parameter
        131009,  # parameter value not valid
        190,  # access token expired
    ],
)
async def test_meta_client_errors_are_permanent(
    provider: WhatsAppCloudChannel, graph: respx.MockRouter, code: int
) -> None:
    graph.post(GRAPH_MESSAGES_URL).mock(return_value=meta_error(400, code))
    with pytest.raises(PermanentSendError, match=f"details of {code}") as caught:
        await provider.send(outbound())
    assert caught.value.code == str(code)


@pytest.mark.parametrize(
    ("response", "code", "retry_after"),
    [
        (meta_error(400, 130429), "130429", None),  # throughput limit
        (meta_error(400, 131056, {"Retry-After": "30"}), "131056", 30.0),  # pair rate limit
        (meta_error(500, 131000), "131000", None),
        (httpx.Response(502, text="bad gateway"), "502", None),
        (httpx.Response(429, text="slow down", headers={"Retry-After": "3"}), "429", 3.0),
    ],
)
async def test_throttling_and_server_errors_are_retryable(
    provider: WhatsAppCloudChannel,
    graph: respx.MockRouter,
    response: httpx.Response,
    code: str,
    retry_after: float | None,
) -> None:
    graph.post(GRAPH_MESSAGES_URL).mock(return_value=response)
    with pytest.raises(RetryableSendError) as caught:
        await provider.send(outbound())
    assert (caught.value.code, caught.value.retry_after) == (code, retry_after)


async def test_network_errors_are_retryable(provider: WhatsAppCloudChannel, graph: respx.MockRouter) -> None:
    graph.post(GRAPH_MESSAGES_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(RetryableSendError, match="unreachable"):
        await provider.send(outbound())


async def test_a_location_and_a_document_are_sent_before_the_text(
    provider: WhatsAppCloudChannel, sent: respx.Route
) -> None:
    await provider.send(
        outbound(
            "Our shop, and your invoice",
            location=Location(48.85, 2.35, "Shop", "1 Rue X"),
            media=[Media("https://cdn.example.com/invoice-A-1.pdf", "application/pdf")],
        )
    )
    assert [(body["type"], body[body["type"]]) for body in bodies(sent)] == [
        ("location", {"latitude": 48.85, "longitude": 2.35, "name": "Shop", "address": "1 Rue X"}),
        ("document", {"link": "https://cdn.example.com/invoice-A-1.pdf", "caption": "Our shop, and your invoice"}),
    ]
