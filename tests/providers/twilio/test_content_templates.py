"""Templates on Twilio WhatsApp: outside the 24-hour window the Content template goes (ContentSid and
ContentVariables, as Twilio's Content API documents them), mocked at the HTTP layer with respx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from chatflow import Template
from chatflow.domain.errors import PermanentSendError
from chatflow.domain.messages import OutboundMessage
from providers.twilio import TwilioChannel
from tests.providers.conftest import ACCOUNT_SID, CUSTOMER, MESSAGES_URL, TWILIO_NUMBER, make_config

CONTENT_SID = "HX" + "b" * 32
DATA = {"order_id": "A-1042", "payment_link": "https://pay.example.com/A-1042"}
PAYMENT_FAILED = Template(
    "payment_failed", language="en", body=["{order_id}", "{payment_link}"], content_sid=CONTENT_SID
)
# Twilio's error body for free text outside the window (its error 63016).
OUTSIDE_WINDOW = httpx.Response(
    400,
    json={
        "code": 63016,
        "message": "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
        "more_info": "https://www.twilio.com/docs/errors/63016",
        "status": 400,
    },
)


@pytest.fixture
def twilio_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def provider() -> AsyncIterator[TwilioChannel]:
    async with httpx.AsyncClient() as http:
        yield TwilioChannel(make_config(), http)


def created(sid: str = "MM" + "a" * 32) -> httpx.Response:
    return httpx.Response(201, json={"sid": sid, "status": "queued", "account_sid": ACCOUNT_SID})


def outbound(template: Template | None, last_inbound_at: str = "") -> OutboundMessage:
    rendered = template.render(DATA) if template is not None else None
    return OutboundMessage(
        "whatsapp",
        "twilio",
        TWILIO_NUMBER,
        CUSTOMER,
        "Your payment for order A-1042 failed",
        template=rendered.label if rendered else "",
        last_inbound_at=last_inbound_at,
        template_message=rendered,
    )


def form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


async def test_a_customer_who_never_wrote_gets_the_content_template_with_its_variables(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    await provider.send(outbound(PAYMENT_FAILED))
    sent = form(route.calls.last.request)
    assert "Body" not in sent
    assert sent["ContentSid"] == [CONTENT_SID]
    assert json.loads(sent["ContentVariables"][0]) == {"1": "A-1042", "2": "https://pay.example.com/A-1042"}
    assert sent["To"] == [f"whatsapp:{CUSTOMER}"]


async def test_named_variables_are_sent_by_name(provider: TwilioChannel, twilio_api: respx.MockRouter) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    declared = Template("payment_failed", content_sid=CONTENT_SID, variables={"order": "{order_id}"})
    await provider.send(outbound(declared))
    assert json.loads(form(route.calls.last.request)["ContentVariables"][0]) == {"order": "A-1042"}


async def test_inside_the_window_the_text_goes(provider: TwilioChannel, twilio_api: respx.MockRouter) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=created())
    await provider.send(outbound(PAYMENT_FAILED, (datetime.now(UTC) - timedelta(hours=1)).isoformat()))
    sent = form(route.calls.last.request)
    assert sent["Body"] == ["Your payment for order A-1042 failed"]
    assert "ContentSid" not in sent


async def test_free_text_refused_with_63016_goes_again_as_the_content_template(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(side_effect=[OUTSIDE_WINDOW, created("MM" + "c" * 32)])
    result = await provider.send(outbound(PAYMENT_FAILED, (datetime.now(UTC) - timedelta(hours=1)).isoformat()))
    assert result.message_id == "MM" + "c" * 32
    first, second = (form(call.request) for call in route.calls)
    assert "Body" in first and second["ContentSid"] == [CONTENT_SID]


async def test_63016_without_a_content_template_is_a_permanent_failure(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    route = twilio_api.post(MESSAGES_URL).mock(return_value=OUTSIDE_WINDOW)
    with pytest.raises(PermanentSendError) as refused:
        await provider.send(outbound(None))
    assert refused.value.code == "63016" and route.call_count == 1
