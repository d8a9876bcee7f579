"""Twilio's inbound and status webhooks, signed as Twilio signs them, in front of a recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.channel import WebhookRequest
from chatflow.domain.config import Config
from chatflow.domain.errors import Forbidden
from chatflow.domain.messages import InboundMessage, Location, Media
from chatflow.edge.optout import HELP_TEXT, OPTED_IN_TEXT, OPTED_OUT_TEXT
from providers.twilio.webhooks import Signatures, TwilioWebhooks
from tests.providers.conftest import (
    ACCOUNT_SID,
    CUSTOMER,
    PUBLIC_URL,
    TWILIO_NUMBER,
    Recorder,
    edge_with_opt_outs,
    make_config,
    twilio_inbound,
    twilio_post,
    webhook_client,
)

INBOUND = f"{PUBLIC_URL}/webhooks/twilio"
STATUS = f"{PUBLIC_URL}/webhooks/twilio/status"


async def test_sms_is_delivered_to_the_numbers_flow_and_answered_with_empty_twiml(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await client.post(INBOUND, **twilio_post(INBOUND, twilio_inbound(body="Hello there")))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    [(message, flow)] = recorder.delivered
    assert flow == "demo"
    assert (message.id, message.channel, message.provider) == ("SM" + "1" * 32, "sms", "twilio")
    assert (message.customer, message.number, message.text) == (CUSTOMER, TWILIO_NUMBER, "Hello there")
    assert message.received_at


async def test_whatsapp_through_twilio_strips_prefixes_and_keeps_button_profile_and_media(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    fields = twilio_inbound(
        body="Track my order",
        From=f"whatsapp:{CUSTOMER}",
        To=f"whatsapp:{TWILIO_NUMBER}",
        ButtonPayload="ask_order",
        ProfileName="Ada",
        WaId=CUSTOMER[1:],
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/media/ME2",
        MediaContentType1="audio/ogg",
    )
    response = await client.post(INBOUND, **twilio_post(INBOUND, fields))

    assert response.status_code == 200
    [message] = recorder.messages
    assert (message.channel, message.customer, message.number) == ("whatsapp", CUSTOMER, TWILIO_NUMBER)
    assert (message.payload, message.profile_name, message.text) == ("ask_order", "Ada", "Track my order")
    assert message.media == [
        Media("https://api.twilio.com/media/ME1", "image/jpeg", "image", caption="Track my order"),
        Media("https://api.twilio.com/media/ME2", "audio/ogg", "audio"),
    ]


async def test_numbers_are_normalised_to_e164(client: httpx.AsyncClient, recorder: Recorder) -> None:
    fields = twilio_inbound(From="+1 (415) 555-0100", To="+1 500-555-0006")
    assert (await client.post(INBOUND, **twilio_post(INBOUND, fields))).status_code == 200
    assert (recorder.messages[0].customer, recorder.messages[0].number) == (CUSTOMER, TWILIO_NUMBER)


async def test_a_shared_whatsapp_location_arrives_as_text(client: httpx.AsyncClient, recorder: Recorder) -> None:
    fields = twilio_inbound(
        body="",
        From=f"whatsapp:{CUSTOMER}",
        To=f"whatsapp:{TWILIO_NUMBER}",
        Latitude="48.85",
        Longitude="2.35",
        Label="Shop",
    )
    assert (await client.post(INBOUND, **twilio_post(INBOUND, fields))).status_code == 200
    assert recorder.messages[0].text == "Location: 48.85, 2.35 (Shop)"
    assert recorder.messages[0].location == Location(48.85, 2.35, "Shop")


async def test_a_keyword_starts_its_own_flow(client: httpx.AsyncClient, recorder: Recorder) -> None:
    await client.post(INBOUND, **twilio_post(INBOUND, twilio_inbound(body="join please")))
    assert recorder.delivered[0][1] == "signup"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},  # forged
    ],
)
async def test_unsigned_or_forged_requests_are_refused(
    client: httpx.AsyncClient, recorder: Recorder, headers: dict[str, str]
) -> None:
    response = await client.post(
        INBOUND,
        content=urlencode(twilio_inbound()).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.text
    assert recorder.delivered == []


async def test_a_signature_with_another_token_or_for_other_fields_is_refused(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    other_token = await client.post(INBOUND, **twilio_post(INBOUND, twilio_inbound(), token="someone-else"))
    signed = twilio_post(INBOUND, twilio_inbound(body="pay 10"))
    tampered = await client.post(
        INBOUND, content=urlencode(twilio_inbound(body="pay 1000")).encode(), headers=signed["headers"]
    )
    assert (other_token.status_code, tampered.status_code) == (403, 403)
    assert recorder.delivered == []


async def test_behind_a_proxy_the_signature_covers_the_public_url(recorder: Recorder) -> None:
    # Twilio calls https://chat.example.com; the proxy forwards to http://10.0.0.5:8000.
    config = make_config(public_url="https://chat.example.com/chatflow")
    public = "https://chat.example.com/chatflow/webhooks/twilio?tenant=7"
    async with webhook_client(config, recorder, base_url="http://10.0.0.5:8000") as client:
        ok = await client.post("/webhooks/twilio?tenant=7", **twilio_post(public, twilio_inbound()))
        signed_for_internal = await client.post(
            "/webhooks/twilio?tenant=7",
            **twilio_post("http://10.0.0.5:8000/webhooks/twilio?tenant=7", twilio_inbound()),
        )
    assert (ok.status_code, signed_for_internal.status_code) == (200, 403)
    assert len(recorder.delivered) == 1


async def test_without_a_public_url_the_request_url_is_what_is_signed(recorder: Recorder) -> None:
    config = make_config(public_url="")
    async with webhook_client(config, recorder, base_url="http://localhost:8000") as client:
        response = await client.post(
            "/webhooks/twilio", **twilio_post("http://localhost:8000/webhooks/twilio", twilio_inbound())
        )
    assert response.status_code == 200


async def test_without_an_auth_token_there_is_no_twilio_channel_to_call(recorder: Recorder) -> None:
    async with webhook_client(make_config(TWILIO_AUTH_TOKEN=""), recorder) as client:
        response = await client.post(INBOUND, **twilio_post(INBOUND, twilio_inbound()))
    assert response.status_code == 404
    assert recorder.delivered == []


async def test_without_an_auth_token_nothing_can_be_verified() -> None:
    fields = twilio_inbound()
    signed = twilio_post(INBOUND, fields)
    request = WebhookRequest(
        "POST", INBOUND, {k.lower(): v for k, v in signed["headers"].items()}, {}, signed["content"]
    )
    with pytest.raises(Forbidden, match="TWILIO_AUTH_TOKEN"):
        await TwilioWebhooks(make_config(TWILIO_AUTH_TOKEN="")).inbound(request)


def test_twilios_documented_example_is_verified() -> None:
    # Twilio's "Validating requests" example: auth token 12345, this URL, these POST fields.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    fields = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    signatures = Signatures("12345")
    assert signatures.valid(url, fields, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert signatures.valid("https://mycompany.com:443/myapp.php?foo=1&bar=2", fields, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not signatures.valid(url, {**fields, "Digits": "1235"}, "GvWf1cFY/Q7PnoempGyD5oXAezc=")
    assert not Signatures("12346").valid(url, fields, "GvWf1cFY/Q7PnoempGyD5oXAezc=")


@pytest.mark.parametrize(
    "url",
    [
        INBOUND,
        "https://chat.example.com/webhooks/twilio",
        "https://chat.example.com:443/webhooks/twilio?tenant=7&x=%20y",
        "http://10.0.0.5:8000/webhooks/twilio",
        "http://localhost/webhooks/twilio/status",
    ],
)
@pytest.mark.parametrize(
    "fields",
    [
        twilio_inbound(),
        twilio_inbound(body="Ça coûte 10 € 🙂", ProfileName="Zoë", MediaUrl0="https://api.twilio.com/m?a=1&b=2"),
        {},
    ],
)
def test_signatures_are_judged_as_twilios_sdk_judges_them(url: str, fields: dict[str, str]) -> None:
    """The check is chatflow's own (the SDK's costs the web process ten times as much per
    webhook): for every URL form (port or not, query) and every signature, the same verdict."""
    sdk = RequestValidator("the-token")
    other_port = url.replace("chat.example.com:443", "chat.example.com").replace(
        "https://chat.example.com/", "https://chat.example.com:443/"
    )
    candidates = [
        sdk.compute_signature(url, fields),
        sdk.compute_signature(other_port, fields),
        sdk.compute_signature(url.replace("http", "https", 1), fields),
        RequestValidator("another-token").compute_signature(url, fields),
        sdk.compute_signature(url, {**fields, "Body": "tampered"}),
        sdk.compute_signature(url, fields)[:-1],
        "",
        "bm90IGEgc2lnbmF0dXJl",
        "é" * 28,  # a header that is not even ASCII
    ]
    verdicts = [Signatures("the-token").valid(url, fields, signature) for signature in candidates]
    assert verdicts == [sdk.validate(url, fields, signature) for signature in candidates]
    assert verdicts[:2] == [True, True]


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        (twilio_inbound(To="+15005550999"), 404, "not bound"),
        ({k: v for k, v in twilio_inbound().items() if k not in ("MessageSid", "SmsMessageSid")}, 400, "MessageSid"),
        ({k: v for k, v in twilio_inbound().items() if k != "From"}, 400, "From"),
        (twilio_inbound(From="not-a-number"), 400, "From"),
        (twilio_inbound(NumMedia="lots"), 400, "NumMedia"),
    ],
)
async def test_bad_fields_get_a_clear_4xx_and_nothing_is_delivered(
    client: httpx.AsyncClient, recorder: Recorder, fields: dict[str, str], status: int, reason: str
) -> None:
    response = await client.post(INBOUND, **twilio_post(INBOUND, fields))
    assert response.status_code == status
    assert reason in response.text
    assert recorder.delivered == []


def _signed_headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "X-Twilio-Signature": "c2lnbmVk"}


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"MessageSid": "SM1"}', "application/json", 415),
        (b"MessageSid=SM1", "multipart/form-data; boundary=x", 415),
        (b"MessageSid=SM1", "", 415),
        (b"Body=caf\xe9&MessageSid=SM1", "application/x-www-form-urlencoded", 400),  # Latin-1, not UTF-8
        (b"Body=caf%E9&MessageSid=SM1", "application/x-www-form-urlencoded", 400),  # same, percent-encoded
        (b"this is not a form", "application/x-www-form-urlencoded", 400),
        (b"Body=a&Body=b", "application/x-www-form-urlencoded", 400),
        (b"Body=" + b"x" * 70_000, "application/x-www-form-urlencoded", 413),
    ],
)
async def test_malformed_requests_get_a_4xx_never_a_5xx(
    client: httpx.AsyncClient, recorder: Recorder, content: bytes, content_type: str, status: int
) -> None:
    response = await client.post(INBOUND, content=content, headers=_signed_headers(content_type))
    assert response.status_code == status, response.text
    assert response.text
    assert recorder.delivered == []


async def test_an_oversize_body_without_content_length_is_refused(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # streamed: no Content-Length to trust
        for _ in range(100):
            yield b"x" * 1024

    response = await client.post(
        INBOUND, content=chunks(), headers=_signed_headers("application/x-www-form-urlencoded")
    )
    assert response.status_code == 413
    assert recorder.delivered == []


async def test_a_failing_hand_over_asks_twilio_to_retry(config: Config, recorder: Recorder) -> None:
    async def unreachable(message: InboundMessage, flow: str) -> None:
        raise ConnectionError("temporal is down")

    recorder.deliver = unreachable  # type: ignore[method-assign]
    async with webhook_client(config, recorder) as client:
        response = await client.post(INBOUND, **twilio_post(INBOUND, twilio_inbound()))
    assert response.status_code == 503
    assert "temporal is down" in response.text


# -- answers outside any flow -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "answers"),
    [
        (["STOP"], [OPTED_OUT_TEXT]),
        (["stop", "unsubscribe"], [OPTED_OUT_TEXT, ""]),  # confirmed once
        (["STOP", "START"], [OPTED_OUT_TEXT, OPTED_IN_TEXT]),
        (["HELP"], [HELP_TEXT]),
    ],
)
async def test_opt_out_and_help_are_answered_in_the_twiml_and_reach_no_flow(
    config: Config, recorder: Recorder, redis: Redis, texts: list[str], answers: list[str]
) -> None:
    async with webhook_client(config, recorder, receive=edge_with_opt_outs(recorder, redis)) as client:
        for i, (text, answer) in enumerate(zip(texts, answers, strict=True)):
            fields = twilio_inbound(sid=f"SM{i:032d}", body=text)
            response = await client.post(INBOUND, **twilio_post(INBOUND, fields))
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/xml")
            if answer:
                assert response.text.endswith(f"<Response><Message>{answer}</Message></Response>")
            else:
                assert response.text.endswith("<Response/>")
    assert recorder.delivered == []


async def test_an_opted_out_customer_reaches_no_flow_until_start(
    config: Config, recorder: Recorder, redis: Redis
) -> None:
    async with webhook_client(config, recorder, receive=edge_with_opt_outs(recorder, redis)) as client:
        for i, text in enumerate(["STOP", "hello?", "START", "hello"]):
            await client.post(INBOUND, **twilio_post(INBOUND, twilio_inbound(sid=f"SM{i:032d}", body=text)))
    assert [message.text for message in recorder.messages] == ["hello"]


# -- status callbacks ------------------------------------------------------------------------------


def status_fields(status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": "SM" + "9" * 32,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": TWILIO_NUMBER,
        "To": CUSTOMER,
        **extra,
    }


SMS_CONVERSATION = ConversationRef("sms", TWILIO_NUMBER, CUSTOMER).id


@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "read"])
async def test_statuses_are_reported_to_the_conversation(
    client: httpx.AsyncClient, recorder: Recorder, status: str
) -> None:
    recorder.running.add(SMS_CONVERSATION)
    response = await client.post(STATUS, **twilio_post(STATUS, status_fields(status)))
    assert response.status_code == 200
    [(conversation, update)] = recorder.reports
    assert conversation == SMS_CONVERSATION
    assert (update.message_id, update.status, update.error_code) == ("SM" + "9" * 32, status, "")


@pytest.mark.parametrize("status", ["failed", "undelivered"])
async def test_failures_carry_twilios_error_code(client: httpx.AsyncClient, recorder: Recorder, status: str) -> None:
    recorder.running.add(SMS_CONVERSATION)
    await client.post(STATUS, **twilio_post(STATUS, status_fields(status, ErrorCode="30003")))
    assert (recorder.reports[0][1].status, recorder.reports[0][1].error_code) == (status, "30003")


async def test_whatsapp_statuses_go_to_the_whatsapp_conversation(client: httpx.AsyncClient, recorder: Recorder) -> None:
    whatsapp = ConversationRef("whatsapp", TWILIO_NUMBER, CUSTOMER).id
    recorder.running.add(whatsapp)
    fields = status_fields("read", From=f"whatsapp:{TWILIO_NUMBER}", To=f"whatsapp:{CUSTOMER}")
    await client.post(STATUS, **twilio_post(STATUS, fields))
    assert [conversation for conversation, _ in recorder.reports] == [whatsapp]


async def test_a_status_for_an_ended_conversation_or_without_rank_is_acknowledged(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    ended = await client.post(STATUS, **twilio_post(STATUS, status_fields("delivered")))
    recorder.running.add(SMS_CONVERSATION)
    unranked = await client.post(STATUS, **twilio_post(STATUS, status_fields("canceled")))
    assert (ended.status_code, unranked.status_code) == (200, 200)
    assert recorder.reports == []


async def test_status_callbacks_are_verified_too(client: httpx.AsyncClient, recorder: Recorder) -> None:
    recorder.running.add(SMS_CONVERSATION)
    signed_for_inbound = twilio_post(INBOUND, status_fields("delivered"))
    response = await client.post(STATUS, **signed_for_inbound)
    missing = await client.post(
        STATUS,
        **twilio_post(
            STATUS, {k: v for k, v in status_fields("sent").items() if k not in ("MessageStatus", "SmsStatus")}
        ),
    )
    assert (response.status_code, missing.status_code) == (403, 400)
    assert recorder.reports == []


# -- status callbacks as Twilio's docs show them, without To (or From) --------------------------------

SID = "SM" + "9" * 32
# Twilio's documented status callback: no To; a WhatsApp one names the customer in ChannelToAddress.
DOCUMENTED_SMS = {
    "AccountSid": ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "From": TWILIO_NUMBER,
    "MessageSid": SID,
    "MessageStatus": "sent",
    "SmsSid": SID,
    "SmsStatus": "sent",
}
DOCUMENTED_WHATSAPP = {
    "AccountSid": ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "ChannelInstallSid": "XE" + "0" * 32,
    "ChannelPrefix": "whatsapp",
    "ChannelStatusMessage": "[]",
    "ChannelToAddress": CUSTOMER,
    "EventType": "READ",
    "From": f"whatsapp:{TWILIO_NUMBER}",
    "MessageSid": SID,
    "MessageStatus": "read",
    "SmsSid": SID,
    "SmsStatus": "read",
}
WHATSAPP_CONVERSATION = ConversationRef("whatsapp", TWILIO_NUMBER, CUSTOMER).id


def without(fields: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in fields.items() if name not in names}


@pytest.mark.parametrize(
    ("fields", "conversations"),
    [
        # No To and no ChannelToAddress: the customer is unknown, the status still the message's.
        (DOCUMENTED_SMS, []),
        (without(DOCUMENTED_WHATSAPP, "ChannelToAddress"), []),
        (DOCUMENTED_WHATSAPP, [WHATSAPP_CONVERSATION]),
        ({**DOCUMENTED_SMS, "To": CUSTOMER}, [SMS_CONVERSATION]),
        # No From: our number is the one Twilio number of the config on that channel (SMS)...
        (without({**DOCUMENTED_SMS, "To": CUSTOMER}, "From"), [SMS_CONVERSATION]),
        # ...and unknown where the config has none (or several) on it.
        (without(DOCUMENTED_WHATSAPP, "From"), []),
        ({**DOCUMENTED_SMS, "To": "not a number"}, []),
        (
            {**DOCUMENTED_WHATSAPP, "To": "whatsapp:US.13491208655302741918"},
            [ConversationRef("whatsapp", TWILIO_NUMBER, "US.13491208655302741918").id],
        ),
    ],
)
async def test_a_status_is_kept_by_its_message_sid_with_the_conversations_its_fields_name(
    client: httpx.AsyncClient, recorder: Recorder, fields: dict[str, str], conversations: list[str]
) -> None:
    signed = twilio_post(STATUS, fields)
    request = WebhookRequest(
        "POST", STATUS, {k.lower(): v for k, v in signed["headers"].items()}, {}, signed["content"]
    )
    received = await TwilioWebhooks(make_config()).status(request)
    [report] = received.statuses
    assert (report.update.message_id, report.update.status, report.conversations) == (
        SID,
        fields["MessageStatus"],
        conversations,
    )

    recorder.running.update({SMS_CONVERSATION, WHATSAPP_CONVERSATION, *conversations})
    response = await client.post(STATUS, **signed)
    assert response.status_code == 200, response.text
    assert [(c, u.message_id) for c, u in recorder.reports] == [(c, SID) for c in conversations[:1]]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (without(DOCUMENTED_SMS, "MessageSid", "SmsSid"), "MessageSid"),
        ({**DOCUMENTED_SMS, "MessageSid": "SM1\nforged", "SmsSid": "SM1\nforged"}, "is not a message id"),
    ],
)
async def test_a_status_without_a_message_sid_to_key_it_is_refused(
    client: httpx.AsyncClient, recorder: Recorder, fields: dict[str, str], reason: str
) -> None:
    response = await client.post(STATUS, **twilio_post(STATUS, fields))
    assert response.status_code == 400
    assert reason in response.text
    assert recorder.reports == []


# -- WhatsApp users known by their business-scoped user id (BSUID) --------------------------------------

BSUID = "US.13491208655302741918"
PARENT_BSUID = "US.ENT.11815799212886844830"
LONGEST_BSUID = "BR." + "a1B2" * 32  # Meta: the country, a period and up to 128 letters and digits


@pytest.mark.parametrize(
    ("fields", "customer"),
    [
        ({"From": f"whatsapp:{BSUID}"}, BSUID),
        ({"From": f"whatsapp:{PARENT_BSUID}"}, PARENT_BSUID),
        ({"From": f"whatsapp:{LONGEST_BSUID}"}, LONGEST_BSUID),
        # A username is no key (users change it): the BSUID beside it is.
        ({"From": "whatsapp:ana.lopez_22", "ExternalUserId": BSUID}, BSUID),
        ({"From": "whatsapp:", "ExternalUserId": BSUID}, BSUID),
        # The phone number wins, so a conversation started by phone stays the one.
        ({"From": f"whatsapp:{CUSTOMER}", "ExternalUserId": BSUID}, CUSTOMER),
    ],
)
async def test_a_whatsapp_sender_known_by_business_scoped_user_id_is_delivered_under_it(
    client: httpx.AsyncClient, recorder: Recorder, fields: dict[str, str], customer: str
) -> None:
    form = twilio_inbound(To=f"whatsapp:{TWILIO_NUMBER}", ProfileName="Ana", **fields)
    response = await client.post(INBOUND, **twilio_post(INBOUND, form))
    assert response.status_code == 200, response.text
    [message] = recorder.messages
    assert (message.channel, message.customer, message.profile_name) == ("whatsapp", customer, "Ana")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"From": "whatsapp:ana.lopez_22"}, "From 'ana.lopez_22' is neither a phone number nor a WhatsApp user id"),
        ({"From": "whatsapp:" + LONGEST_BSUID + "c"}, "is neither a phone number nor a WhatsApp user id"),
        ({"From": "whatsapp:US.1349 1208"}, "is neither a phone number nor a WhatsApp user id"),
        ({"From": BSUID, "To": TWILIO_NUMBER}, "From"),  # SMS has no user ids
        ({"MessageSid": "SM1\x00", "SmsMessageSid": "SM1\x00"}, "is not a message id"),
        ({"MessageSid": "SMé", "SmsMessageSid": "SMé"}, "is not a message id"),
    ],
)
async def test_senders_and_ids_that_are_neither_get_400_naming_the_field(
    client: httpx.AsyncClient, recorder: Recorder, fields: dict[str, str], reason: str
) -> None:
    form = twilio_inbound(**{"To": f"whatsapp:{TWILIO_NUMBER}", **fields})
    response = await client.post(INBOUND, **twilio_post(INBOUND, form))
    assert response.status_code == 400
    assert reason in response.text
    assert recorder.delivered == []
