"""Choices on Twilio WhatsApp: quick replies (up to 3) and list pickers (up to 10) through the
account's content of that shape, looked up in Twilio's Content API (its documented list
response) and filled in by ContentVariables; the numbered menu on SMS and when no such content
exists. A tap comes back in Twilio's signed webhook as ButtonPayload / ListId and picks the choice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from chatflow.domain.messages import Media, Option, OutboundMessage
from conversations.demo import Demo
from providers.twilio import TwilioChannel
from providers.twilio.content import STALE_AFTER, Shape
from tests.providers.conftest import (
    ACCOUNT_SID,
    CUSTOMER,
    MESSAGES_URL,
    PUBLIC_URL,
    TWILIO_NUMBER,
    Recorder,
    make_config,
    twilio_inbound,
    twilio_post,
)

CONTENTS_URL = "https://content.twilio.com/v1/ContentAndApprovals"
INBOUND = f"{PUBLIC_URL}/webhooks/twilio"
QUICK_REPLY_3 = "HX" + "3" * 32
LIST_PICKER_5 = "HX" + "5" * 32
LIST_PICKER_5_DESCRIBED = "HX" + "d" * 32
PAYMENT_FAILED = "HX" + "f" * 32
MENU = [Option("1", "Opening hours"), Option("2", "Track my order"), Option("3", "Talk to a person")]
SIZES = [Option(str(i), f"Size {size}", f"{size} cm") for i, size in enumerate((36, 38, 40, 42, 44), start=1)]


def listed(sid: str, shape: Shape | None = None, **fields: Any) -> dict[str, Any]:
    """A content of /v1/ContentAndApprovals as Twilio's documented response has it."""
    content = shape.content() if shape is not None else {}
    return {
        "language": "en",
        "date_updated": "2023-01-13T23:33:46Z",
        "date_created": "2023-01-13T23:33:46Z",
        "account_sid": ACCOUNT_SID,
        "sid": sid,
        "variables": content.get("variables", {}),
        "friendly_name": content.get("friendly_name", ""),
        "types": content.get("types", {}),
        "approval_requests": {
            "name": "",
            "category": "",
            "content_type": "",
            "status": "unsubmitted",
            "rejection_reason": "",
            "allow_category_change": True,
        },
        **fields,
    }


def page(*contents: dict[str, Any]) -> httpx.Response:
    meta = {
        "page": 0,
        "page_size": 500,
        "first_page_url": f"{CONTENTS_URL}?PageSize=500&Page=0",
        "previous_page_url": None,
        "next_page_url": None,
        "url": f"{CONTENTS_URL}?PageSize=500&Page=0",
        "key": "contents",
    }
    return httpx.Response(200, json={"contents": list(contents), "meta": meta})


ACCOUNT = page(
    listed(QUICK_REPLY_3, Shape("quick-reply", 3)),
    listed(LIST_PICKER_5, Shape("list-picker", 5)),
    listed(LIST_PICKER_5_DESCRIBED, Shape("list-picker", 5, described=True)),
    listed(
        PAYMENT_FAILED,
        friendly_name="payment_failed",
        types={"twilio/text": {"body": "Your payment for order {{1}} failed. Pay here: {{2}}"}},
        approval_requests={
            "name": "payment_failed",
            "category": "UTILITY",
            "content_type": "twilio/text",
            "status": "approved",
            "rejection_reason": "",
            "allow_category_change": False,
        },
    ),
)


@pytest.fixture
def twilio_api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(MESSAGES_URL).mock(
            return_value=httpx.Response(201, json={"sid": "MM" + "a" * 32, "status": "queued"})
        )
        yield router


@pytest.fixture
async def provider() -> AsyncIterator[TwilioChannel]:
    async with httpx.AsyncClient() as http:
        yield TwilioChannel(make_config(), http)


def whatsapp(text: str, options: list[Option], **fields: Any) -> OutboundMessage:
    return OutboundMessage("whatsapp", "twilio", TWILIO_NUMBER, CUSTOMER, text, options=options, **fields)


def sent(router: respx.MockRouter) -> dict[str, list[str]]:
    return parse_qs(router.routes[0].calls.last.request.content.decode())


async def test_three_choices_go_as_quick_replies_filled_in_by_content_variables(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    contents = twilio_api.get(CONTENTS_URL).mock(return_value=ACCOUNT)
    await provider.send(whatsapp("What can I do for you?", MENU))
    form = sent(twilio_api)
    assert "Body" not in form and form["ContentSid"] == [QUICK_REPLY_3]
    assert json.loads(form["ContentVariables"][0]) == {
        "1": "What can I do for you?",
        "2": "Opening hours",
        "3": "1",
        "4": "Track my order",
        "5": "2",
        "6": "Talk to a person",
        "7": "3",
    }
    await provider.send(whatsapp("Anything else?", MENU))
    assert contents.call_count == 1  # looked up once, then kept


async def test_more_choices_go_as_a_list_picker_with_descriptions_when_each_has_one(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    twilio_api.get(CONTENTS_URL).mock(return_value=ACCOUNT)
    await provider.send(whatsapp("Which size?", SIZES))
    form = sent(twilio_api)
    assert form["ContentSid"] == [LIST_PICKER_5_DESCRIBED]
    variables = json.loads(form["ContentVariables"][0])
    assert [variables[str(n)] for n in range(1, 5)] == ["Which size?", "Size 36", "1", "36 cm"]
    await provider.send(whatsapp("Which size?", [Option(o.id, o.title) for o in SIZES]))
    assert sent(twilio_api)["ContentSid"] == [LIST_PICKER_5]


async def test_the_numbered_menu_stays_for_sms_media_and_an_account_without_the_content(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    contents = twilio_api.get(CONTENTS_URL).mock(return_value=page())
    menu = "What can I do for you?\n\n1. Opening hours\n2. Track my order\n3. Talk to a person"
    await provider.send(whatsapp("What can I do for you?", MENU))
    assert sent(twilio_api)["Body"] == [menu] and "ContentSid" not in sent(twilio_api)
    sms = OutboundMessage("sms", "twilio", TWILIO_NUMBER, CUSTOMER, "What can I do for you?", options=MENU)
    await provider.send(sms)
    assert sent(twilio_api)["Body"] == [menu]
    contents.mock(return_value=ACCOUNT)
    pictured = whatsapp("What can I do for you?", MENU, media=[Media("https://shop.example/menu.jpg")])
    await provider.send(pictured)
    assert sent(twilio_api)["Body"] == [menu]
    # One look-up in all: an account without the content is not asked again at every send.
    assert contents.call_count == 1


async def test_a_template_without_content_sid_goes_as_the_content_approved_under_its_name(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    from chatflow import Template

    twilio_api.get(CONTENTS_URL).mock(return_value=ACCOUNT)
    declared = Template("payment_failed", language="en", body=["{order_id}", "{link}"])
    rendered = declared.render({"order_id": "A-1042", "link": "https://pay.example.com/A-1042"})
    await provider.send(whatsapp("Your payment failed", [], template_message=rendered))
    form = sent(twilio_api)
    assert form["ContentSid"] == [PAYMENT_FAILED]
    assert json.loads(form["ContentVariables"][0]) == {"1": "A-1042", "2": "https://pay.example.com/A-1042"}


@pytest.mark.parametrize(
    ("tap", "chosen"),
    [
        # A quick reply: its title in ButtonText (and Body), its id in ButtonPayload.
        ({"Body": "Track my order", "ButtonText": "Track my order", "ButtonPayload": "2"}, "ask_order"),
        # A list picker's row: ListTitle and ListId.
        ({"Body": "Talk to a person", "ListTitle": "Talk to a person", "ListId": "3"}, "handoff"),
    ],
)
async def test_a_tap_comes_back_signed_and_picks_its_choice(
    client: httpx.AsyncClient, recorder: Recorder, tap: dict[str, str], chosen: str
) -> None:
    fields = twilio_inbound(
        sid="SM" + "7" * 32,
        From=f"whatsapp:{CUSTOMER}",
        To=f"whatsapp:{TWILIO_NUMBER}",
        ProfileName="Ada",
        WaId=CUSTOMER[1:],
        MessageType="interactive" if "ListId" in tap else "button",
        OriginalRepliedMessageSid="MM" + "a" * 32,
        **tap,
    )
    response = await client.post(INBOUND, **twilio_post(INBOUND, fields))
    assert response.status_code == 200
    [message] = recorder.messages
    assert message.payload == tap.get("ButtonPayload", tap.get("ListId"))
    picked = Demo.steps["menu"].choices.pick(message)  # type: ignore[attr-defined]
    assert picked is not None and picked.goto == chosen


async def test_content_created_meanwhile_is_found_once_the_look_up_is_stale(
    provider: TwilioChannel, twilio_api: respx.MockRouter
) -> None:
    contents = twilio_api.get(CONTENTS_URL).mock(return_value=page())
    await provider.send(whatsapp("What can I do for you?", MENU))
    assert "Body" in sent(twilio_api)
    # `chatflow templates sync --create` made it since; the look-up is older than STALE_AFTER.
    contents.mock(return_value=ACCOUNT)
    assert provider.contents.fetched_at is not None
    provider.contents.fetched_at -= STALE_AFTER + 1
    await provider.send(whatsapp("What can I do for you?", MENU))
    assert sent(twilio_api)["ContentSid"] == [QUICK_REPLY_3] and contents.call_count == 2
