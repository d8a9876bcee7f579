"""Meta's WhatsApp Cloud webhooks, signed as Meta signs them, in front of a recorder."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis

from chatflow.domain import codec
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.channel import WebhookRequest
from chatflow.domain.config import Config
from chatflow.domain.errors import Forbidden
from chatflow.domain.messages import Location, Media, Reaction
from chatflow.edge.optout import HELP_TEXT, OPTED_OUT_TEXT
from providers.whatsapp_cloud.webhooks import WhatsAppCloudWebhooks
from tests.providers.conftest import (
    CUSTOMER,
    GRAPH_API,
    GRAPH_MESSAGES_URL,
    PHONE_NUMBER_ID,
    PUBLIC_URL,
    VERIFY_TOKEN,
    WHATSAPP_NUMBER,
    Recorder,
    edge_with_opt_outs,
    make_config,
    meta_messages,
    meta_post,
    meta_signature,
    meta_text,
    webhook_client,
)

URL = "/webhooks/whatsapp"
DROPPED = "whatsapp_cloud dropped "
CONVERSATION = ConversationRef("whatsapp", WHATSAPP_NUMBER, CUSTOMER).id
BSUID = "US.13491208655302741918"


def dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The parts of the POSTs that were dropped, each as its one log line (without the prefix)."""
    return [
        record.getMessage().removeprefix(DROPPED)
        for record in caplog.records
        if record.name.startswith("providers.whatsapp_cloud") and record.getMessage().startswith(DROPPED)
    ]


# -- subscription handshake ------------------------------------------------------------------------


async def test_the_verify_handshake_echoes_the_challenge(client: httpx.AsyncClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = await client.get(URL, params=params)
    assert (response.status_code, response.text) == (200, "1158201444")
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
async def test_the_handshake_with_a_wrong_token_or_mode_is_refused(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get(URL, params=params)
    assert response.status_code == 403
    assert "1" != response.text


# -- messages ----------------------------------------------------------------------------------------


async def post(client: httpx.AsyncClient, payload: Any) -> httpx.Response:
    return await client.post(URL, **meta_post(payload))


async def test_a_text_message_is_delivered_with_the_profile_name(client: httpx.AsyncClient, recorder: Recorder) -> None:
    response = await post(client, meta_messages(meta_text("wamid.A1", "Hello")))
    assert (response.status_code, response.text) == (200, "ok")
    [(message, flow)] = recorder.delivered
    assert flow == "demo"
    assert (message.id, message.channel, message.provider) == ("wamid.A1", "whatsapp", "whatsapp_cloud")
    assert (message.customer, message.number, message.text, message.profile_name) == (
        CUSTOMER,
        WHATSAPP_NUMBER,
        "Hello",
        "Ada",
    )


def message(wamid: str, kind: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"from": CUSTOMER[1:], "id": wamid, "timestamp": "1760000000", "type": kind, kind: body, **extra}


@pytest.mark.parametrize(
    ("raw", "text", "payload"),
    [
        (
            message("wamid.B", "button", {"payload": "ask_order", "text": "Track my order"}),
            "Track my order",
            "ask_order",
        ),
        (
            message(
                "wamid.C",
                "interactive",
                {"type": "button_reply", "button_reply": {"id": "opening_hours", "title": "Opening hours"}},
            ),
            "Opening hours",
            "opening_hours",
        ),
        (
            message(
                "wamid.D",
                "interactive",
                {"type": "list_reply", "list_reply": {"id": "row7", "title": "Row 7", "description": "x"}},
            ),
            "Row 7",
            "row7",
        ),
        (
            message(
                "wamid.E", "location", {"latitude": 48.85, "longitude": 2.35, "name": "Shop", "address": "1 Rue X"}
            ),
            "Location: 48.85, 2.35 (Shop, 1 Rue X)",
            "",
        ),
        (
            message(
                "wamid.F",
                "contacts",
                {},
                contacts=[{"name": {"formatted_name": "Bob"}, "phones": [{"phone": "+1 555 0101"}]}],
            ),
            "Contacts: Bob +1 555 0101",
            "",
        ),
        (message("wamid.G", "unsupported", {}, errors=[{"code": 131051}]), "", ""),
    ],
)
async def test_replies_of_every_kind_become_text_and_payload(
    client: httpx.AsyncClient, recorder: Recorder, raw: dict[str, Any], text: str, payload: str
) -> None:
    assert (await post(client, meta_messages(raw))).status_code == 200
    [delivered] = recorder.messages
    assert (delivered.text, delivered.payload) == (text, payload)


@pytest.mark.parametrize("kind", ["image", "audio", "video", "document", "sticker"])
async def test_media_arrive_as_graph_references_with_caption(
    client: httpx.AsyncClient, recorder: Recorder, kind: str
) -> None:
    body = {"id": "MEDIA123", "mime_type": "application/octet-stream", "sha256": "abc", "caption": "look"}
    assert (await post(client, meta_messages(message("wamid.M", kind, body)))).status_code == 200
    [delivered] = recorder.messages
    assert delivered.media == [
        Media(f"{GRAPH_API}/v21.0/MEDIA123", "application/octet-stream", kind, "MEDIA123", "look")
    ]
    assert delivered.text == "look"


async def test_system_messages_are_not_delivered_and_reactions_are_as_data(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    payload = meta_messages(
        message("wamid.R", "reaction", {"message_id": "wamid.OUT1", "emoji": "👍"}),
        message("wamid.S", "system", {"body": "changed number", "type": "user_changed_number"}),
        meta_text("wamid.T", "still here"),
    )
    assert (await post(client, payload)).status_code == 200
    assert [(m.id, m.text, m.reaction) for m in recorder.messages] == [
        ("wamid.R", "", Reaction("wamid.OUT1", "👍")),
        ("wamid.T", "still here", None),
    ]


async def test_one_post_with_several_entries_changes_and_messages_delivers_each_once_in_order(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    first = meta_messages(meta_text("wamid.1", "one"), meta_text("wamid.2", "two"), meta_text("wamid.1", "one"))
    second = meta_messages(
        meta_text("wamid.3", "three", sender="14155550199"),
        contacts=[{"profile": {"name": "Bo"}, "wa_id": "14155550199"}],
    )
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            first["entry"][0],
            {"id": "WABA", "changes": [*second["entry"][0]["changes"], first["entry"][0]["changes"][0]]},
        ],
    }
    assert (await post(client, payload)).status_code == 200
    assert [(m.id, m.text, m.customer, m.profile_name) for m in recorder.messages] == [
        ("wamid.1", "one", CUSTOMER, "Ada"),
        ("wamid.2", "two", CUSTOMER, "Ada"),
        ("wamid.3", "three", "+14155550199", "Bo"),
    ]


async def test_a_user_known_only_by_business_scoped_id_is_delivered_under_that_id(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    raw = {"from_user_id": BSUID, "id": "wamid.U", "timestamp": "1760000000", "type": "text", "text": {"body": "hi"}}
    payload = meta_messages(raw, contacts=[{"profile": {"name": "Ana", "username": "@ana"}, "user_id": BSUID}])
    assert (await post(client, payload)).status_code == 200
    [delivered] = recorder.messages
    assert (delivered.customer, delivered.profile_name) == (BSUID, "Ana")


async def test_the_phone_number_wins_over_the_user_id_when_both_are_given(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    raw = {**meta_text("wamid.P"), "from_user_id": BSUID}
    assert (await post(client, meta_messages(raw))).status_code == 200
    assert recorder.messages[0].customer == CUSTOMER


async def test_a_user_id_only_in_contacts_is_used(client: httpx.AsyncClient, recorder: Recorder) -> None:
    raw = {"id": "wamid.Q", "timestamp": "1760000000", "type": "text", "text": {"body": "hi"}}
    payload = meta_messages(raw, contacts=[{"profile": {"name": "Ana"}, "user_id": BSUID}])
    assert (await post(client, payload)).status_code == 200
    assert recorder.messages[0].customer == BSUID


async def test_a_message_from_nobody_is_dropped_in_one_log_line(
    client: httpx.AsyncClient, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    raw = {"id": "wamid.N", "timestamp": "1760000000", "type": "text", "text": {"body": "hi"}}
    response = await post(client, meta_messages(raw, contacts=[]))
    assert (response.status_code, response.text) == (200, "ok")
    assert recorder.delivered == []
    assert ["entry[0].changes[0].value.messages[0] sender is missing: no sender"] == [
        line.split(" (")[0] for line in dropped(caplog)
    ]


async def test_changes_of_other_fields_are_acknowledged_and_ignored(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "WABA", "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}
        ],
    }
    assert (await post(client, payload)).status_code == 200
    assert recorder.delivered == [] and recorder.reports == []


# -- answers outside any flow -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "answer"), [("STOP", OPTED_OUT_TEXT), ("help", HELP_TEXT)])
async def test_opt_out_and_help_are_answered_through_the_cloud_api_and_reach_no_flow(
    config: Config, recorder: Recorder, redis: Redis, text: str, answer: str
) -> None:
    with respx.mock(assert_all_called=False) as graph:
        sent = graph.post(GRAPH_MESSAGES_URL).mock(
            return_value=httpx.Response(200, json={"messages": [{"id": "wamid.OUT1"}]})
        )
        async with webhook_client(config, recorder, receive=edge_with_opt_outs(recorder, redis)) as client:
            response = await post(client, meta_messages(meta_text("wamid.S1", text)))
    assert (response.status_code, response.text) == (200, "ok")
    assert [json.loads(call.request.content) for call in sent.calls] == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER[1:],
            "type": "text",
            "text": {"body": answer, "preview_url": False},
        }
    ]
    assert recorder.delivered == []


async def test_an_answer_meta_refuses_still_acknowledges_the_webhook(
    config: Config, recorder: Recorder, redis: Redis
) -> None:
    # The message is taken already: failing the webhook would only have Meta send it again.
    with respx.mock(assert_all_called=False) as graph:
        graph.post(GRAPH_MESSAGES_URL).mock(return_value=httpx.Response(400, json={"error": {"code": 131026}}))
        async with webhook_client(config, recorder, receive=edge_with_opt_outs(recorder, redis)) as client:
            response = await post(client, meta_messages(meta_text("wamid.S1", "STOP")))
    assert (response.status_code, response.text) == (200, "ok")


# -- statuses ------------------------------------------------------------------------------------------


def status(wamid: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": value, "timestamp": "1760000000", "recipient_id": CUSTOMER[1:], **extra}


async def test_statuses_are_reported_in_the_order_meta_sent_them(client: httpx.AsyncClient, recorder: Recorder) -> None:
    recorder.running.add(CONVERSATION)
    payload = meta_messages(
        statuses=[
            status("wamid.OUT1", "read"),
            status("wamid.OUT1", "delivered"),  # arrives late; the workflow keeps the higher rank
            status("wamid.OUT2", "failed", errors=[{"code": 131026, "title": "Message undeliverable"}]),
            status("wamid.OUT1", "read"),  # repeated in the same POST: reported once
            status("wamid.OUT3", "deleted"),  # not a delivery status
        ]
    )
    assert (await post(client, payload)).status_code == 200
    assert [(c, u.message_id, u.status, u.error_code) for c, u in recorder.reports] == [
        (CONVERSATION, "wamid.OUT1", "read", ""),
        (CONVERSATION, "wamid.OUT1", "delivered", ""),
        (CONVERSATION, "wamid.OUT2", "failed", "131026"),
    ]
    assert recorder.reports[0][1].at == "2025-10-09T08:53:20+00:00"


async def test_a_status_for_a_conversation_keyed_by_user_id_reaches_it(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    by_user = ConversationRef("whatsapp", WHATSAPP_NUMBER, BSUID).id
    recorder.running.add(by_user)
    payload = meta_messages(statuses=[status("wamid.OUT1", "delivered", recipient_user_id=BSUID)])
    assert (await post(client, payload)).status_code == 200
    assert [c for c, _ in recorder.reports] == [by_user]


async def test_a_status_for_an_ended_conversation_is_acknowledged(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    response = await post(client, meta_messages(statuses=[status("wamid.OUT1", "delivered")]))
    assert response.status_code == 200
    assert recorder.reports == []


# -- what is refused -----------------------------------------------------------------------------------


async def test_unsigned_or_forged_posts_are_refused_before_parsing(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    body = json.dumps(meta_messages(meta_text())).encode()
    unsigned = await client.post(URL, content=body, headers={"Content-Type": "application/json"})
    other_secret = await client.post(
        URL, content=body, headers={"Content-Type": "application/json", **meta_signature(body, "not-ours")}
    )
    tampered = await client.post(
        URL, content=body.replace(b"hi", b"yo"), headers={"Content-Type": "application/json", **meta_signature(body)}
    )
    bare_hex = await client.post(
        URL,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(body)["X-Hub-Signature-256"][7:],
        },
    )
    garbage = b"{not json"
    forged_garbage = await client.post(
        URL, content=garbage, headers={"Content-Type": "application/json", **meta_signature(garbage, "x")}
    )
    assert [r.status_code for r in (unsigned, other_secret, tampered, bare_hex, forged_garbage)] == [403] * 5
    assert recorder.delivered == []


async def test_without_an_app_secret_there_is_no_whatsapp_cloud_channel_to_call(recorder: Recorder) -> None:
    async with webhook_client(make_config(WHATSAPP_APP_SECRET=""), recorder) as client:
        response = await post(client, meta_messages(meta_text()))
    assert response.status_code == 404
    assert recorder.delivered == []


async def test_without_an_app_secret_nothing_can_be_verified() -> None:
    signed = meta_post(meta_messages(meta_text()))
    request = WebhookRequest(
        "POST", PUBLIC_URL + URL, {k.lower(): v for k, v in signed["headers"].items()}, {}, signed["content"]
    )
    with pytest.raises(Forbidden, match="WHATSAPP_APP_SECRET"):
        await WhatsAppCloudWebhooks(make_config(WHATSAPP_APP_SECRET="")).receive(request)


GOOD = meta_text("wamid.GOOD", "still here")


def beside_a_good_message(*changes: dict[str, Any], entries: tuple[Any, ...] = ()) -> dict[str, Any]:
    """A POST whose first entry holds `changes` (and `entries` before it), then a good message."""
    good = meta_messages(GOOD)["entry"][0]
    return {"object": "whatsapp_business_account", "entry": [*entries, {"id": "WABA", "changes": list(changes)}, good]}


def messages_change(*messages: Any, phone_number_id: str = PHONE_NUMBER_ID, **value: Any) -> dict[str, Any]:
    change: dict[str, Any] = meta_messages(*messages, phone_number_id=phone_number_id)["entry"][0]["changes"][0]
    change["value"].update(value)
    return change


def with_value(payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    payload["entry"][0]["changes"][0]["value"].update(fields)
    return payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # Another phone number of the same app, not bound in our config: Meta must still get its 200.
        (
            beside_a_good_message(messages_change(meta_text("wamid.X"), phone_number_id="999")),
            "entry[0].changes[0]: phone_number_id '999' is not bound to a flow in the config",
        ),
        (beside_a_good_message(entries=(7,)), "entry[0] must be an object"),
        (
            beside_a_good_message(entries=({"id": "WABA", "changes": "nope"},)),
            "entry[0].changes must be a list of objects",
        ),
        (beside_a_good_message({"field": "messages", "value": []}), "entry[0].changes[0]: value must be an object"),
        (
            beside_a_good_message({"field": "messages", "value": {"messages": [meta_text("wamid.X")]}}),
            "entry[0].changes[0]: value.metadata.phone_number_id is missing",
        ),
        (
            meta_messages({"from": CUSTOMER[1:], "type": "text", "text": {"body": "no id"}}, GOOD),
            "entry[0].changes[0].value.messages[0].id is missing",
        ),
        (
            meta_messages(meta_text(sender="12"), GOOD),
            "entry[0].changes[0].value.messages[0] sender '+12' is not an E.164 phone number",
        ),
        (
            meta_messages(message("wamid.I", "image", {"mime_type": "image/png"}), GOOD),
            "entry[0].changes[0].value.messages[0].image.id is missing",
        ),
        (
            meta_messages(message("wamid.I", "image", {"id": "../../me/accounts"}), GOOD),
            "messages[0].image.id '../../me/accounts' is not a media id",
        ),
        (
            with_value(meta_messages(GOOD), messages=["not a message", GOOD]),
            "entry[0].changes[0].value.messages[0] must be an object",
        ),
        (
            meta_messages(GOOD, statuses=[{"id": "wamid.X"}]),
            "entry[0].changes[0].value.statuses[0] needs id and status",
        ),
        (
            with_value(meta_messages(GOOD), contacts="nope"),
            "entry[0].changes[0].value.contacts must be a list of objects",
        ),
        # Message ids that no store or log could take: control characters, a lone surrogate, a number.
        (
            meta_messages(meta_text("wamid.A\nforged log line"), GOOD),
            "messages[0].id 'wamid.A\\nforged log line' is not a message id",
        ),
        (meta_messages(meta_text("wamid.\ud800"), GOOD), "messages[0].id 'wamid.\\ud800' is not a message id"),
        (meta_messages({**meta_text(), "id": 12345}, GOOD), "messages[0].id 12345 is not a message id"),
        (meta_messages(meta_text("wamid." + "A" * 300), GOOD), "messages[0].id 'wamid.AAAA"),
    ],
)
async def test_a_malformed_or_unbound_part_is_dropped_in_one_log_line_and_the_rest_delivered(
    client: httpx.AsyncClient, recorder: Recorder, caplog: pytest.LogCaptureFixture, payload: Any, reason: str
) -> None:
    response = await post(client, payload)
    assert (response.status_code, response.text) == (200, "ok")
    assert [(m.id, m.text) for m in recorder.messages] == [("wamid.GOOD", "still here")]
    [line] = dropped(caplog)
    assert reason in line
    assert line.isprintable()


async def test_an_entry_list_that_is_not_one_is_dropped_in_one_log_line(
    client: httpx.AsyncClient, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    response = await post(client, {"object": "whatsapp_business_account", "entry": "nope"})
    assert (response.status_code, response.text) == (200, "ok")
    assert recorder.delivered == []
    assert dropped(caplog) == ["entry must be a list of objects"]


@pytest.mark.parametrize("payload", [[1, 2, 3], "entry", 42, None, True])
async def test_a_payload_that_is_not_an_object_gets_400(
    client: httpx.AsyncClient, recorder: Recorder, payload: Any
) -> None:
    response = await post(client, payload)
    assert response.status_code == 400
    assert "payload must be a JSON object" in response.text
    assert recorder.delivered == []


def _signed(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": content_type, **meta_signature(body)}}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"entry": "caf\xe9"}', "application/json", 400),  # not UTF-8
        (b"", "application/json", 400),
        (b"[" * 200_000 + b"]" * 200_000, "application/json", 400),  # deeper than the parser goes
        (b"entry=1", "application/x-www-form-urlencoded", 415),
        (b"{}", "text/plain", 415),
        (b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}', "application/json", 413),
    ],
)
async def test_bad_bodies_get_a_4xx_never_a_5xx(
    client: httpx.AsyncClient, recorder: Recorder, body: bytes, content_type: str, status: int
) -> None:
    response = await client.post(URL, **_signed(body, content_type))
    assert response.status_code == status, response.text
    assert recorder.delivered == []


# -- WhatsApp Flows ------------------------------------------------------------------------------------


def flow_reply(wamid: str, response_json: Any, body: str = "Sent", name: str = "flow") -> dict[str, Any]:
    """A completed WhatsApp Flow's reply, as Meta's "Receiving Flow Response" shows it."""
    return message(
        wamid,
        "interactive",
        {"type": "nfm_reply", "nfm_reply": {"name": name, "body": body, "response_json": response_json}},
        context={"from": WHATSAPP_NUMBER[1:], "id": "gBGGEiRVVgBPAgm7FUgc73noXjo"},
    )


@pytest.mark.parametrize(
    ("raw", "text", "data"),
    [
        (
            flow_reply("wamid.F1", json.dumps({"flow_token": "T1", "optional_param1": "v1", "date": "2025-10-09"})),
            "Sent",
            {"flow_token": "T1", "optional_param1": "v1", "date": "2025-10-09"},
        ),
        (
            flow_reply(
                "wamid.F2",
                json.dumps(
                    {
                        "flow_token": "T2",
                        "screen_0_Choose_0": ["0_Email", "1_SMS"],
                        "address": {"city": "Lyon", "zip": 69001},
                    }
                ),
            ),
            "Sent",
            {"flow_token": "T2", "screen_0_Choose_0": ["0_Email", "1_SMS"], "address": {"city": "Lyon", "zip": 69001}},
        ),
        (
            flow_reply(
                "wamid.F3", json.dumps({"name": "Ana", "city": "Lyon"}), body="1 Rue X, Lyon", name="address_message"
            ),
            "1 Rue X, Lyon",
            {"name": "Ana", "city": "Lyon"},
        ),
        (
            flow_reply("wamid.F4", json.dumps({"note": "caf\ud800", "n": float("nan")})),
            "Sent",
            {"note": "caf?", "n": None},
        ),
    ],
)
async def test_a_flows_answers_reach_the_flow_as_data_with_its_body_as_text(
    client: httpx.AsyncClient, recorder: Recorder, raw: dict[str, Any], text: str, data: dict[str, Any]
) -> None:
    assert (await post(client, meta_messages(raw))).status_code == 200
    [delivered] = recorder.messages
    assert (delivered.id, delivered.text, delivered.payload, delivered.data) == (raw["id"], text, "", data)


def nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {}
    for _ in range(depth):
        inner = {"x": inner}
    return inner


@pytest.mark.parametrize(
    ("response_json", "reason"),
    [
        ("{not json", "Expecting property name"),
        (json.dumps(["a", "list"]), "it is not a JSON object"),
        ("null", "it is not a JSON object"),
        (7, "it is not a JSON object"),  # not even the JSON string Meta documents
        (json.dumps(nested(40)), "nested deeper than 16 levels"),
    ],
)
async def test_a_flow_reply_whose_answers_cannot_be_read_still_reaches_the_flow_without_them(
    client: httpx.AsyncClient, recorder: Recorder, caplog: pytest.LogCaptureFixture, response_json: Any, reason: str
) -> None:
    raw = flow_reply("wamid.F9", response_json)
    assert (await post(client, meta_messages(raw))).status_code == 200
    [delivered] = recorder.messages
    assert (delivered.text, delivered.data) == ("Sent", {})
    [line] = [r.getMessage() for r in caplog.records if r.name.startswith("providers.whatsapp_cloud")]
    assert "messages[0] without its answers" in line and reason in line


# -- what is not said to the flow one-to-one -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        # Meta's group messages webhook: the message names the group it was said in.
        {**meta_text("wamid.GR1", "hello group"), "group_id": "120363025246125486"},
        {**meta_text("wamid.GR2", "reply in group"), "context": {"group_id": "120363025246125486", "id": "wamid.OUT"}},
        # Deleted (revoked) by the customer, and unsupported messages that act on another message.
        message("wamid.D1", "revoke", {"message_id": "wamid.A1"}),
        message("wamid.D2", "deleted", {}),
        message("wamid.D3", "unsupported", {"type": "pin"}, errors=[{"code": 131051, "title": "Message type unknown"}]),
        message("wamid.D4", "unsupported", {"type": "keep_in_chat"}, errors=[{"code": 131051}]),
        message("wamid.D5", "unsupported", {"type": "reaction"}, errors=[{"code": 131051}]),
        message("wamid.D6", "system", {"body": "Message deleted", "type": "message_deleted"}),
    ],
)
async def test_group_and_deleted_messages_do_not_reach_the_flow(
    client: httpx.AsyncClient, recorder: Recorder, raw: dict[str, Any]
) -> None:
    response = await post(client, meta_messages(raw, GOOD))
    assert (response.status_code, response.text) == (200, "ok")
    assert [m.id for m in recorder.messages] == ["wamid.GOOD"]


async def test_a_group_message_is_logged_in_one_line(
    client: httpx.AsyncClient, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="providers.whatsapp_cloud")
    await post(client, meta_messages({**meta_text("wamid.GR1"), "group_id": "1203630\n25246125486"}))
    assert recorder.delivered == []
    assert [r.getMessage() for r in caplog.records if r.name.startswith("providers.whatsapp_cloud")] == [
        "whatsapp_cloud ignored entry[0].changes[0].value.messages[0]: a message in group '1203630\\n25246125486'"
    ]


async def test_a_status_of_a_message_to_a_group_is_not_reported(client: httpx.AsyncClient, recorder: Recorder) -> None:
    recorder.running.add(CONVERSATION)
    payload = meta_messages(
        statuses=[
            status(
                "wamid.OUT1",
                "delivered",
                recipient_id="120363025246125486",
                recipient_type="group",
                recipient_participant_id=CUSTOMER[1:],
            ),
            status("wamid.OUT2", "delivered"),
        ]
    )
    assert (await post(client, payload)).status_code == 200
    assert [u.message_id for _, u in recorder.reports] == ["wamid.OUT2"]


# -- users known by their business-scoped user id --------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "delivered"),
    [
        ("US.ENT.11815799212886844830", True),  # a parent BSUID
        ("BR." + "a1B2" * 32, True),  # the longest Meta documents: 128 letters and digits
        ("BR." + "a1B2" * 32 + "c", False),
        ("US.1349 1208", False),
        ("@ana", False),  # a username is no key
    ],
)
async def test_business_scoped_user_ids_of_every_documented_form_and_length_are_keys(
    client: httpx.AsyncClient, recorder: Recorder, user_id: str, delivered: bool
) -> None:
    raw = {"from_user_id": user_id, "id": "wamid.U", "timestamp": "1760000000", "type": "text", "text": {"body": "hi"}}
    assert (
        await post(client, meta_messages(raw, contacts=[{"profile": {"name": "Ana"}, "user_id": user_id}]))
    ).status_code == 200
    assert [m.customer for m in recorder.messages] == ([user_id] if delivered else [])


async def test_a_status_naming_no_recipient_is_kept_by_its_message_id(client: httpx.AsyncClient) -> None:
    webhooks = WhatsAppCloudWebhooks(make_config())
    received = webhooks.parse(
        meta_messages(
            statuses=[
                {"id": "wamid.OUT1", "status": "delivered", "timestamp": "1760000000"},
                status("wamid.OUT2", "read", recipient_id="12"),
            ]
        )
    )
    assert [(r.update.message_id, r.update.status, r.conversations) for r in received.statuses] == [
        ("wamid.OUT1", "delivered", []),
        ("wamid.OUT2", "read", []),
    ]
    response = await post(client, meta_messages(statuses=[{"id": "wamid.OUT1", "status": "delivered"}]))
    assert response.status_code == 200


# -- odd shapes from a signed body: never a 5xx, never a message nothing downstream can store ---------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (message("wamid.K1", "contacts", {}, contacts=[{"name": "Bob", "phones": "+1 555 0101"}]), "Contacts: Bob"),
        (
            message("wamid.K2", "contacts", {}, contacts=[{"name": ["Bob"], "phones": [["+1 555 0101"], 7, None]}]),
            "Contacts: ",
        ),
        (
            message("wamid.K3", "contacts", {}, contacts=[{"name": {"formatted_name": 7}, "phones": 5}, "x", 3]),
            "Contacts: 7",
        ),
        (message("wamid.K4", "contacts", {}, contacts={"name": "Bob"}), "Contacts: "),
        (message("wamid.K5", "text", {"body": {"nested": ["x"]}}), ""),
        (message("wamid.K6", "text", {"body": 42}), "42"),
        (message("wamid.K7", "text", {"body": "caf\ud800 ok"}), "caf? ok"),
        ({**meta_text("wamid.K8"), "text": "not an object"}, ""),
        (message("wamid.K9", "location", {"latitude": [1], "longitude": None, "name": {"x": 1}}), "Location: , "),
        (message("wamid.KA", "interactive", {"type": ["button_reply"], "button_reply": "x"}), ""),
        ({**meta_text("wamid.KB", "hi"), "from": 14155550100, "timestamp": {"x": 1}}, "hi"),
    ],
)
async def test_odd_shapes_are_read_as_far_as_they_go(
    client: httpx.AsyncClient, recorder: Recorder, raw: dict[str, Any], text: str
) -> None:
    contacts = [{"profile": ["not", "an", "object"], "wa_id": 14155550100}, "junk"]
    response = await post(client, with_value(meta_messages(raw), contacts=contacts))
    assert (response.status_code, response.text) == (200, "ok")
    [delivered] = recorder.messages
    assert (delivered.customer, delivered.text, delivered.profile_name) == (CUSTOMER, text, "")
    codec.dumps(delivered).encode("utf-8")  # what the edge stores in Redis


async def test_a_phone_number_id_given_as_a_number_is_read(client: httpx.AsyncClient, recorder: Recorder) -> None:
    payload = meta_messages(meta_text("wamid.N1"))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = int(PHONE_NUMBER_ID)
    assert (await post(client, payload)).status_code == 200
    assert [m.id for m in recorder.messages] == ["wamid.N1"]


async def test_an_image_and_a_location_reach_the_flow_as_data(client: httpx.AsyncClient, recorder: Recorder) -> None:
    # The bodies of Meta's webhook reference for an image and a location message.
    image = message(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
        "image",
        {
            "caption": "my receipt",
            "mime_type": "image/jpeg",
            "sha256": "WBaC0nYd8HkBe3jGh5w2xrGyr5pGnEXx2wkoI6sqaVE=",
            "id": "2754859441498128",
        },
    )
    place = message(
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMQA=",
        "location",
        {
            "address": "1 Hacker Way, Menlo Park, CA 94025",
            "latitude": 37.483307,
            "longitude": -122.148981,
            "name": "Main Street Beach",
            "url": "https://www.facebook.com",
        },
    )
    assert (await post(client, meta_messages(image, place))).status_code == 200
    photo, shared = recorder.messages
    assert photo.media == [
        Media(f"{GRAPH_API}/v21.0/2754859441498128", "image/jpeg", "image", "2754859441498128", "my receipt")
    ]
    assert shared.location == Location(
        37.483307, -122.148981, "Main Street Beach", "1 Hacker Way, Menlo Park, CA 94025"
    )
    assert shared.text == "Location: 37.483307, -122.148981 (Main Street Beach, 1 Hacker Way, Menlo Park, CA 94025)"
    for delivered in (photo, shared):  # as the edge's buffer stores and reads it
        assert codec.loads_inbound(codec.dumps(delivered)) == delivered
