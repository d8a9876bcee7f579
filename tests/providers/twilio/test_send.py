"""Sending through Twilio: the SDK's async API over httpx, mocked at the HTTP layer with respx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import Location, Media, Option, OutboundMessage
from providers.twilio import TwilioChannel
from providers.twilio.client import HttpxTwilioClient
from tests.providers.conftest import ACCOUNT_SID, CUSTOMER, MESSAGES_URL, PUBLIC_URL, TWILIO_NUMBER, make_config


@pytest.fixture
def twilio_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def provider() -> AsyncIterator[TwilioChannel]:
    async with httpx.AsyncClient() as http:
        yield TwilioChannel(make_config(), http)


def outbound(text: str = "Hello", channel: str = "sms", **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        channel=channel, provider="twilio", number=TWILIO_NUMBER, customer=CUSTOMER, text=text, **fields
    )


def created(sid: str = "SM" + "a" * 32, status: str = "queued") -> httpx.Response:
    return httpx.Response(201, json={"sid": sid, "status": status, "account_sid": ACCOUNT_SID})


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


async def test_an_sms_goes_to_the_configured_api_url_with_auth_and_status_callback(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())

    result = await provider.send(outbound("Hello"))

    assert (result.message_id, result.status, result.segments) == ("SM" + "a" * 32, "queued", 1)
    request = route.calls.last.request
    assert request.headers["authorization"].startswith("Basic ")
    assert form(request) == {
        "To": [CUSTOMER],
        "From": [TWILIO_NUMBER],
        "Body": ["Hello"],
        "StatusCallback": [f"{PUBLIC_URL}/webhooks/twilio/status"],
    }


async def test_choices_become_a_numbered_menu_and_media_urls_are_attached(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    message = outbound(
        "Pick one",
        options=[Option("a", "Opening hours"), Option("b", "Track my order")],
        media=[Media("https://cdn.example.com/1.png"), Media("https://cdn.example.com/2.png")],
    )
    await provider.send(message)
    sent = form(route.calls.last.request)
    assert sent["Body"] == ["Pick one\n\n1. Opening hours\n2. Track my order"]
    assert sent["MediaUrl"] == ["https://cdn.example.com/1.png", "https://cdn.example.com/2.png"]


async def test_whatsapp_through_twilio_uses_whatsapp_addresses(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    result = await provider.send(outbound("x" * 400, channel="whatsapp"))
    sent = form(route.calls.last.request)
    assert (sent["To"], sent["From"]) == ([f"whatsapp:{CUSTOMER}"], [f"whatsapp:{TWILIO_NUMBER}"])
    assert result.segments == 1  # segments are an SMS matter


async def test_without_a_public_url_no_status_callback_is_asked(twilio_api: respx.MockRouter) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    async with httpx.AsyncClient() as http:
        await TwilioChannel(make_config(public_url=""), http).send(outbound())
    assert "StatusCallback" not in form(route.calls.last.request)


@pytest.mark.parametrize(("text", "segments"), [("a" * 160, 1), ("a" * 161, 2), ("é" * 200, 2), ("😀" * 36, 2)])
async def test_segments_are_recorded(
    provider: TwilioChannel, twilio_api: respx.MockRouter, text: str, segments: int
) -> None:
    twilio_api.post(MESSAGES_URL).mock(return_value=created())
    assert (await provider.send(outbound(text))).segments == segments


async def test_a_body_over_1600_characters_is_refused_before_calling_twilio(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    with pytest.raises(PermanentSendError, match="1601 characters") as caught:
        await provider.send(outbound("x" * 1601))
    assert caught.value.code == "21617"
    assert not route.called


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, 21211),  # invalid To number
        (400, 21610),  # customer replied STOP
        (400, 21614),  # not a mobile number
        (400, 21612),  # cannot route to this number
        (400, 21408),  # region not enabled
        (400, 21606),  # From is not a number of this account
        (400, 21617),  # body too long
        (400, 63016),  # WhatsApp: outside the 24-hour window
        (400, 63014),  # WhatsApp: blocked by the user
        (401, 20003),  # bad credentials
    ],
)
async def test_client_errors_are_permanent_with_twilios_code(
    provider: TwilioChannel, twilio_api: respx.MockRouter, status: int, code: int
) -> None:
    twilio_api.post(MESSAGES_URL).mock(
        return_value=httpx.Response(status, json={"code": code, "message": "refused", "status": status})
    )
    with pytest.raises(PermanentSendError, match="refused") as caught:
        await provider.send(outbound())
    assert caught.value.code == str(code)


@pytest.mark.parametrize(
    ("response", "code", "retry_after"),
    [
        (
            httpx.Response(429, json={"code": 20429, "message": "Too Many Requests"}, headers={"Retry-After": "7"}),
            "20429",
            7.0,
        ),
        (httpx.Response(500, text="oops"), "500", None),
        (
            httpx.Response(503, json={"code": 20503, "message": "unavailable"}, headers={"Retry-After": "soon"}),
            "20503",
            None,
        ),
    ],
)
async def test_throttling_and_server_errors_are_retryable_honouring_retry_after(
    provider: TwilioChannel,
    twilio_api: respx.MockRouter,
    response: httpx.Response,
    code: str,
    retry_after: float | None,
) -> None:
    twilio_api.post(MESSAGES_URL).mock(return_value=response)
    with pytest.raises(RetryableSendError) as caught:
        await provider.send(outbound())
    assert (caught.value.code, caught.value.retry_after) == (code, retry_after)


async def test_network_errors_are_retryable(provider: TwilioChannel, twilio_api: respx.MockRouter) -> None:
    twilio_api.post(MESSAGES_URL).mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(RetryableSendError, match="unreachable"):
        await provider.send(outbound())


async def test_the_http_client_only_rebases_twilios_own_api() -> None:
    async with httpx.AsyncClient() as http:
        client = HttpxTwilioClient(http, "http://localhost:4010/")
    assert (
        client.rebase("https://api.twilio.com/2010-04-01/Accounts.json")
        == "http://localhost:4010/2010-04-01/Accounts.json"
    )
    assert client.rebase("https://example.com/x") == "https://example.com/x"


async def test_a_location_on_whatsapp_goes_as_a_persistent_action(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    await provider.send(outbound("Our shop", channel="whatsapp", location=Location(48.85, 2.35, "Shop")))
    sent = form(route.calls.last.request)
    assert sent["PersistentAction"] == ["geo:48.85,2.35|Shop"] and sent["Body"] == ["Our shop"]
