"""`chatflow templates sync` as a user runs it (the CLI app, in-process so that respx can stand in
for the Graph API and Twilio's Content API): the shipped payment_recovery's templates checked
against the approved ones, read in the shapes of Meta's and Twilio's documented responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from typer.testing import CliRunner, Result

from chatflow.runtime.cli import app

WABA_ID = "102290129340398"
ACCOUNT_SID = "AC" + "a" * 32
TEMPLATES_URL = f"https://graph.facebook.com/v21.0/{WABA_ID}/message_templates"
CONTENT_URL = "https://content.twilio.com/v1/ContentAndApprovals"
CREATE_URL = "https://content.twilio.com/v1/Content"
ENV = {
    "WHATSAPP_ACCESS_TOKEN": "EAAJB-token",
    "WHATSAPP_APP_SECRET": "secret",
    "WHATSAPP_VERIFY_TOKEN": "verify",
    "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID,
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "CHATFLOW_WHATSAPP_API_URL": "",
    "CHATFLOW_TWILIO_CONTENT_URL": "",
}
CONFIG = """
[flows]
modules = [{modules}]

[[numbers]]
number = "+15550001111"
provider = "whatsapp_cloud"
flow = "{flow}"
phone_number_id = "106540352242922"

[[numbers]]
number = "+15005550006"
provider = "twilio"
channel = "whatsapp"
flow = "{flow}"
"""

# Two entries of Meta's "Get all templates" example (template management reference), verbatim:
# templates of the account that no flow declares.
RESERVATION_CONFIRMATION: dict[str, Any] = {
    "name": "reservation_confirmation",
    "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://scontent.whatsapp.net/v/t61..."]}},
        {
            "type": "BODY",
            "text": "*You're all set!*\n\nYour reservation for {{number_of_guests}} at Lucky Shrub Eatery on {{day}}, "
            "{{date}}, at {{time}}, is confirmed. See you then!",
            "example": {
                "body_text_named_params": [
                    {"param_name": "number_of_guests", "example": "4"},
                    {"param_name": "day", "example": "Saturday"},
                    {"param_name": "date", "example": "August 30th, 2025"},
                    {"param_name": "time", "example": "7:30 pm"},
                ]
            },
        },
        {"type": "FOOTER", "text": "Lucky Shrub Eatery: The Luckiest Eatery in Town!"},
        {
            "type": "BUTTONS",
            "buttons": [
                {
                    "type": "URL",
                    "text": "Change reservation",
                    "url": "https://www.luckyshrubeater.com/reservations",
                },
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+16467043595"},
                {"type": "QUICK_REPLY", "text": "Cancel reservation"},
            ],
        },
    ],
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "id": "1387372356726668",
}
COUPON_REMINDER: dict[str, Any] = {
    "name": "coupon_expiration_reminder_number_vars",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Act fast, {{1}}!", "example": {"header_text": ["Pablo"]}},
        {
            "type": "BODY",
            "text": "Just a quick reminder—your exclusive coupon code, {{1}}, *expires in only {{2}} days!*",
            "example": {"body_text": [["SUMMER20", "10"]]},
        },
        {"type": "FOOTER", "text": "Lucky Shrub Succulents"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "See deals", "url": "https://www.luckyshrub.com/deals"},
                {"type": "QUICK_REPLY", "text": "Unsubscribe"},
            ],
        },
    ],
    "language": "en",
    "status": "APPROVED",
    "category": "MARKETING",
    "sub_category": "CUSTOM",
    "id": "1304694804498707",
}

# payment_recovery's templates: name, body text (English).
PAYMENT_TEMPLATES = {
    "payment_switched_to_cod": "Your card payment for order {{1}} didn't go through: it is now cash on delivery.",
    "payment_failed": "Your payment for order {{1}} failed. You can pay again here: {{2}}",
    "payment_reminder": "Reminder: order {{1}} is waiting for payment. Pay here: {{2}}",
    "payment_received": "Payment received, thank you! Order {{1}} is confirmed.",
    "order_cancelled_unpaid": "We didn't receive payment, so order {{1}} has been cancelled.",
}


def meta_template(name: str, text: str, *, language: str = "en", status: str = "APPROVED") -> dict[str, Any]:
    """A positional template as Meta lists it (the shape of the example above)."""
    count = text.count("{{")
    return {
        "name": name,
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "BODY", "text": text, "example": {"body_text": [[f"sample {i}" for i in range(1, count + 1)]]}}
        ],
        "language": language,
        "status": status,
        "category": "UTILITY",
        "id": str(abs(hash(name)) % 10**15),
    }


def content(sid: str, name: str, text: str, *, status: str = "approved", reason: str = "") -> dict[str, Any]:
    """A content of /v1/ContentAndApprovals, in the shape of Twilio's documented response."""
    return {
        "language": "en",
        "date_updated": "2023-01-13T23:33:46Z",
        "variables": {str(i): f"sample {i}" for i in range(1, text.count("{{") + 1)},
        "friendly_name": name,
        "account_sid": ACCOUNT_SID,
        "sid": sid,
        "date_created": "2023-01-13T23:33:46Z",
        "types": {"twilio/text": {"body": text}},
        "approval_requests": {
            "category": "UTILITY",
            "status": status,
            "rejection_reason": reason,
            "name": name,
            "content_type": "twilio/text",
            "allow_category_change": False,
        },
    }


def sid(n: int) -> str:
    return "HX" + f"{n:x}" * 32


def meta_pages(templates: list[dict[str, Any]]) -> Any:
    """Meta's paging: the first two templates on page one, `paging.next` to the rest."""

    def respond(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer EAAJB-token"
        if request.url.params.get("after") == "QVFIU2":
            return httpx.Response(
                200, json={"data": templates[2:], "paging": {"cursors": {"before": "QVFIU1", "after": "QVFIU2"}}}
            )
        assert "components" in request.url.params["fields"]
        nxt = f"{TEMPLATES_URL}?fields=name,language,status,category,components&limit=100&after=QVFIU2"
        return httpx.Response(
            200,
            json={"data": templates[:2], "paging": {"cursors": {"before": "QVFIU0", "after": "QVFIU2"}, "next": nxt}},
        )

    return respond


def twilio_pages(contents: list[dict[str, Any]]) -> Any:
    """Twilio's paging: one content a page, `meta.next_page_url` to the next."""

    def respond(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("Page", "0"))
        last = page + 1 >= len(contents)
        url = f"{CONTENT_URL}?PageSize=1&Page={page}"
        meta = {
            "page": page,
            "page_size": 1,
            "first_page_url": f"{CONTENT_URL}?PageSize=1&Page=0",
            "previous_page_url": None,
            "url": url,
            "next_page_url": None if last else f"{CONTENT_URL}?PageSize=1&Page={page + 1}&PageToken=PT{page}",
            "key": "contents",
        }
        return httpx.Response(200, json={"contents": contents[page : page + 1], "meta": meta})

    return respond


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def sync(
    tmp_path: Path,
    *args: str,
    modules: str = '"conversations.payment_recovery"',
    flow: str = "payment_recovery",
    **env: str,
) -> Result:
    path = tmp_path / "chatflow.toml"
    path.write_text(CONFIG.format(modules=modules, flow=flow))
    return CliRunner().invoke(app, ["templates", "sync", "--config", str(path), *args], env={**ENV, **env})


def all_approved() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    meta = [RESERVATION_CONFIRMATION, COUPON_REMINDER] + [meta_template(n, t) for n, t in PAYMENT_TEMPLATES.items()]
    twilio = [content(sid(i + 1), n, t) for i, (n, t) in enumerate(PAYMENT_TEMPLATES.items())]
    return meta, twilio


def test_sync_passes_when_every_declared_template_is_approved_as_declared(
    tmp_path: Path, api: respx.MockRouter
) -> None:
    meta, twilio = all_approved()
    graph = api.get(TEMPLATES_URL).mock(side_effect=meta_pages(meta))
    contents = api.get(CONTENT_URL).mock(side_effect=twilio_pages(twilio))
    done = sync(tmp_path)
    assert done.exit_code == 0, done.output
    assert done.stdout == "every template the flows declare is approved as declared\n"
    assert graph.call_count == 2 and contents.call_count == len(twilio)  # every page read


def test_sync_names_the_flow_step_template_and_what_differs(tmp_path: Path, api: respx.MockRouter) -> None:
    meta, twilio = all_approved()
    meta = [t for t in meta if t["name"] != "payment_failed"]  # never submitted to Meta
    for template in meta:
        if template["name"] == "payment_reminder":
            template["language"] = "en_US"
        if template["name"] == "payment_received":
            template["status"] = "PENDING"
        if template["name"] == "order_cancelled_unpaid":
            template["components"][0]["text"] = "Order {{1}} was cancelled on {{2}}."
    twilio[0] = content(sid(1), "payment_switched_to_cod", "Order {{1}}", status="rejected", reason="INVALID_FORMAT")
    twilio = [c for c in twilio if c["friendly_name"] != "payment_reminder"]
    api.get(TEMPLATES_URL).mock(side_effect=meta_pages(meta))
    api.get(CONTENT_URL).mock(side_effect=twilio_pages(twilio))
    done = sync(tmp_path)
    assert done.exit_code == 1, done.output
    cloud, twilio_ = "whatsapp_cloud template", "twilio template"
    assert done.stdout.splitlines() == [
        f"payment_recovery.send_link: {cloud} payment_failed:en: no template of that name in WhatsApp Business "
        f"Account {WABA_ID}",
        f"payment_recovery.remind: {cloud} payment_reminder:en: no en version (the account has en_US)",
        f"payment_recovery.confirm_paid: {cloud} payment_received:en: status is PENDING, not APPROVED",
        f"payment_recovery.order_expired: {cloud} order_cancelled_unpaid:en: body takes 2 parameters "
        "({{1}}, {{2}}), the step gives 1",
        # Version 1, still running conversations, confirms the payment in a step of its own.
        f"payment_recovery.paid: {cloud} payment_received:en: status is PENDING, not APPROVED",
        f"payment_recovery.confirm_cash_on_delivery: {twilio_} payment_switched_to_cod:en: content {sid(1)}: "
        "WhatsApp approval is REJECTED (INVALID_FORMAT)",
        f"payment_recovery.remind: {twilio_} payment_reminder:en: no content_sid, and no content of that name and "
        "language in the Twilio account",
    ]
    assert "7 problem(s)" in done.stderr


NAMED_FLOW = '''
from chatflow import Button, End, Flow, Say, Template


class Booking(Flow):
    """Confirms a booking with Meta's documented named template, and a Twilio content by SID."""

    confirm = Say(
        "Booked for {guests}",
        template=Template(
            "reservation_confirmation",
            header_media="image",
            header=["{photo}"],
            body={"number_of_guests": "{guests}", "day": "{day}", "date": "{date}", "hour": "{time}"},
            buttons=[Button(0, "{code}")],
        ),
    )
    coupon = Say(
        "Code {code}",
        template=Template(
            "coupon_expiration_reminder_number_vars",
            language="en",
            header=["{name}"],
            body=["{code}", "{days}"],
            content_sid="HX" + "9" * 32,
        ),
    )
    # Its language chosen from the data: any approved language of that name will do.
    remind = Say(
        "Code {code}",
        template=Template(
            "coupon_expiration_reminder_number_vars", language="{lang}", header=["{name}"], body=["{code}", "{days}"]
        ),
    )
    done = End("completed")
'''


def test_named_parameters_media_headers_buttons_and_content_variables_are_compared(
    tmp_path: Path, api: respx.MockRouter
) -> None:
    (tmp_path / "booking_flows.py").write_text(NAMED_FLOW)
    api.get(TEMPLATES_URL).mock(side_effect=meta_pages([RESERVATION_CONFIRMATION, COUPON_REMINDER]))
    coupon = content("HX" + "9" * 32, "coupon_expiration_reminder_number_vars", "Act fast {{1}}: {{2}} for {{3}} days")
    api.get(CONTENT_URL).mock(side_effect=twilio_pages([coupon]))
    done = sync(tmp_path, modules='"booking_flows"', flow="booking")
    assert done.exit_code == 1, done.output
    assert done.stdout.splitlines() == [
        "booking.confirm: whatsapp_cloud template reservation_confirmation:en_US: body takes {{number_of_guests}}, "
        "{{day}}, {{date}}, {{time}}, the step gives {{number_of_guests}}, {{day}}, {{date}}, {{hour}}",
        "booking.confirm: whatsapp_cloud template reservation_confirmation:en_US: button 0 is not a url button "
        "that takes a parameter",
        "booking.confirm: twilio template reservation_confirmation:en_US: no content_sid, and no content of that "
        "name and language in the Twilio account",
        f"booking.coupon: twilio template coupon_expiration_reminder_number_vars:en: content {'HX' + '9' * 32} takes "
        "variables {{1}}, {{2}}, {{3}}, the step gives {{1}}, {{2}}",
        f"booking.remind: twilio template coupon_expiration_reminder_number_vars:{{lang}}: content {'HX' + '9' * 32} "
        "takes variables {{1}}, {{2}}, {{3}}, the step gives {{1}}, {{2}}",
    ]


POLYGLOT_FLOW = '''
from chatflow import End, Flow, Say, Template


class Polyglot(Flow):
    """Reminds in English, or in Spanish to Spanish-speaking customers."""

    remind = Say("Pay {order}", template=Template("pay_now", language="en", languages=["es"], body=["{order}"]))
    done = End("completed")
'''


def test_each_language_a_template_declares_is_checked(tmp_path: Path, api: respx.MockRouter) -> None:
    (tmp_path / "polyglot_flows.py").write_text(POLYGLOT_FLOW)
    api.get(TEMPLATES_URL).mock(side_effect=meta_pages([meta_template("pay_now", "Pay {{1}}")]))
    api.get(CONTENT_URL).mock(side_effect=twilio_pages([content(sid(1), "pay_now", "Pay {{1}}")]))
    done = sync(tmp_path, modules='"polyglot_flows"', flow="polyglot")
    assert done.exit_code == 1, done.output
    assert done.stdout.splitlines() == [
        "polyglot.remind: whatsapp_cloud template pay_now:es: no es version (the account has en)",
        "polyglot.remind: twilio template pay_now:es: no content_sid, and no content of that name and language in "
        "the Twilio account",
    ]


@pytest.mark.parametrize(
    ("unset", "says"),
    [
        ("WHATSAPP_BUSINESS_ACCOUNT_ID", "error: WHATSAPP_BUSINESS_ACCOUNT_ID is not set"),
        ("TWILIO_AUTH_TOKEN", "error: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set"),
    ],
)
def test_a_missing_account_id_or_credential_is_one_error_line(
    tmp_path: Path, api: respx.MockRouter, unset: str, says: str
) -> None:
    meta, twilio = all_approved()
    api.get(TEMPLATES_URL).mock(side_effect=meta_pages(meta))
    api.get(CONTENT_URL).mock(side_effect=twilio_pages(twilio))
    done = sync(tmp_path, **{unset: ""})
    assert done.exit_code == 2
    assert done.stderr.startswith(says) and len(done.stderr.splitlines()) == 1


def test_an_api_refusing_the_token_is_one_error_line(tmp_path: Path, api: respx.MockRouter) -> None:
    error = {
        "error": {
            "message": "Error validating access token: Session has expired",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
            "fbtrace_id": "AbCdEf",
        }
    }
    api.get(TEMPLATES_URL).mock(return_value=httpx.Response(401, json=error))
    done = sync(tmp_path)
    assert done.exit_code == 2
    assert done.stderr == (
        "error: the Graph API answered 401 (190): Error validating access token: Session has expired\n"
    )


def test_create_makes_the_quick_reply_content_the_demo_menu_needs_once(tmp_path: Path, api: respx.MockRouter) -> None:
    api.get(TEMPLATES_URL).mock(side_effect=meta_pages([]))
    created: list[dict[str, Any]] = []

    def create(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        created.append(body)
        # Twilio's documented answer to a create, with this content's own fields.
        return httpx.Response(
            201,
            json={
                "sid": sid(7),
                "account_sid": ACCOUNT_SID,
                "url": f"https://content.twilio.com/v1/Content/{sid(7)}",
                "date_created": "2015-07-30T19:00:00Z",
                "date_updated": "2015-07-30T19:00:00Z",
                "links": {
                    "approval_create": f"https://content.twilio.com/v1/Content/{sid(7)}/ApprovalRequests/whatsapp",
                    "approval_fetch": f"https://content.twilio.com/v1/Content/{sid(7)}/ApprovalRequests",
                },
                **body,
            },
        )

    api.post(CREATE_URL).mock(side_effect=create)
    listed = api.get(CONTENT_URL).mock(side_effect=twilio_pages([]))
    done = sync(tmp_path, "--create", modules='"conversations.demo"', flow="demo")
    # The demo's templates are not in the (empty) accounts: problems, but the content is made.
    assert done.exit_code == 1
    assert f"created Twilio content chatflow_quick_reply_3 ({sid(7)}) for demo.menu" in done.stderr
    [body] = created
    assert body["friendly_name"] == "chatflow_quick_reply_3"
    assert body["types"] == {
        "twilio/quick-reply": {
            "body": "{{1}}",
            "actions": [
                {"title": "{{2}}", "id": "{{3}}"},
                {"title": "{{4}}", "id": "{{5}}"},
                {"title": "{{6}}", "id": "{{7}}"},
            ],
        }
    }
    assert set(body["variables"]) == {str(i) for i in range(1, 8)}

    # Once it exists, a sync finds it and creates nothing, and without --create only says so.
    with_it = {"sid": sid(7), "friendly_name": "chatflow_quick_reply_3", "language": "en", "types": body["types"]}
    listed.mock(side_effect=twilio_pages([with_it]))
    again = sync(tmp_path, "--create", modules='"conversations.demo"', flow="demo")
    assert len(created) == 1 and "created" not in again.stderr
    listed.mock(side_effect=twilio_pages([]))
    told = sync(tmp_path, modules='"conversations.demo"', flow="demo")
    assert len(created) == 1
    assert "demo.menu: choices go as a numbered menu on Twilio WhatsApp until `chatflow templates sync --create`" in (
        told.stderr
    )
