"""No input on a provider's door makes a 5xx: thousands of generated webhooks, signed as the
providers sign them, from the real payload shapes with parts replaced by whatever JSON (or form
values) can hold: nulls, numbers, lists, nested objects, control characters, lone surrogates,
phone numbers in every form, user ids, usernames.

The webhooks go through the real inbound edge (which encodes each message to check its size, as
it will to store it), in front of a recorder that encodes what it is given as Redis and Temporal
will. A message nothing downstream could store would be a 503 here, which Meta and Twilio retry
for days. Meta's door answers 200 to every signed JSON object (bad parts are dropped, not the
POST); Twilio's door answers 200 or a 4xx.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import asdict
from typing import Any

from chatflow.domain import codec
from chatflow.domain.config import Config
from chatflow.domain.messages import DeliveryUpdate, InboundMessage
from tests.providers.conftest import (
    ACCOUNT_SID,
    CUSTOMER,
    PHONE_NUMBER_ID,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    Recorder,
    meta_messages,
    meta_post,
    twilio_inbound,
    twilio_post,
    webhook_client,
)

SEED = 20251009
META_PAYLOADS = 2500
TWILIO_FORMS = 1500
META = "/webhooks/whatsapp"
TWILIO_INBOUND = "https://chat.example.com/webhooks/twilio"
TWILIO_STATUS = "https://chat.example.com/webhooks/twilio/status"
BSUID = "US.13491208655302741918"
MAX_DEPTH = 200


class StoringRecorder(Recorder):
    """A recorder that encodes each message and status the way Redis and Temporal will."""

    async def deliver(self, message: InboundMessage, flow: str) -> None:
        codec.dumps(message).encode("utf-8")
        json.dumps(asdict(message), ensure_ascii=False, allow_nan=False).encode("utf-8")
        await super().deliver(message, flow)

    async def report(self, conversation: str, update: DeliveryUpdate) -> bool:
        json.dumps([conversation, asdict(update)], ensure_ascii=False, allow_nan=False).encode("utf-8")
        self.reports.append((conversation, update))
        return True


# -- what a field can be --------------------------------------------------------------------------

STRINGS = [
    "",
    " ",
    "hi",
    "STOP",
    "wamid.A1",
    "wamid.\n",
    "SM\x00",
    "\ud800",
    "caf\udcff",
    "\x1b[31mred",
    "\u202e",
    "👍",
    "5215512345678",
    "525512345678",
    "5491123456789",
    "549111523456789",
    "14155550100",
    "12",
    "+14155550100",
    "whatsapp:+5215512345678",
    "whatsapp:+14155550100",
    BSUID,
    "US.ENT.11815799212886844830",
    "BR." + "a" * 129,
    "@ana",
    "ana.lopez_22",
    PHONE_NUMBER_ID,
    "999",
    WHATSAPP_NUMBER,
    "text",
    "interactive",
    "nfm_reply",
    "image",
    "contacts",
    "revoke",
    "unsupported",
    "group",
    "delivered",
    "read",
    "failed",
    "sent",
    "1760000000",
    "-1",
    "99999999999999999999999",
    "NaN",
    '{"flow_token": "T", "a": [1, {"b": null}]}',
    "{not json",
    "[1, 2]",
    "../../me",
    "%00",
    "x" * 1500,
]


def value(rng: random.Random, depth: int = 0) -> Any:
    """Anything a JSON field could hold."""
    roll = rng.random()
    if roll < 0.45 or depth > 4:
        return (
            rng.choice(STRINGS)
            if rng.random() < 0.8
            else "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(8)))
        )
    if roll < 0.6:
        return rng.choice([None, True, False, 0, -1, 7, 2**64, 1.5, -0.0, 1e308, float("nan"), float("inf")])
    if roll < 0.8:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if roll < 0.95:
        return {
            rng.choice(["id", "type", "from", "body", "name", "phones", "phone", "x"]): value(rng, depth + 1)
            for _ in range(rng.randrange(4))
        }
    nested: Any = rng.choice(STRINGS)
    for _ in range(rng.randrange(20, 60)):  # deep, though not deeper than JSON parsers go
        nested = [nested] if rng.random() < 0.5 else {"x": nested}
    return nested


# -- Meta -------------------------------------------------------------------------------------------


def meta_templates() -> list[dict[str, Any]]:
    """Real shapes of Meta's messages webhooks (Cloud API webhook reference)."""
    sender = CUSTOMER[1:]

    def msg(kind: str, body: Any, **extra: Any) -> dict[str, Any]:
        return {
            "from": sender,
            "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
            "timestamp": "1760000000",
            "type": kind,
            kind: body,
            **extra,
        }

    messages = [
        msg("text", {"body": "Hello"}),
        msg("button", {"payload": "ask_order", "text": "Track my order"}, context={"from": sender, "id": "wamid.OUT"}),
        msg("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}),
        msg("interactive", {"type": "list_reply", "list_reply": {"id": "row7", "title": "Row 7", "description": "x"}}),
        msg(
            "interactive",
            {
                "type": "nfm_reply",
                "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"flow_token": "T1", "a": "b"}'},
            },
        ),
        msg("image", {"id": "1234567890", "mime_type": "image/jpeg", "sha256": "abc", "caption": "look"}),
        msg("location", {"latitude": 48.85, "longitude": 2.35, "name": "Shop", "address": "1 Rue X"}),
        msg(
            "contacts",
            {},
            contacts=[
                {
                    "name": {"formatted_name": "Bob", "first_name": "Bob"},
                    "phones": [{"phone": "+1 555 0101", "wa_id": "15550101", "type": "CELL"}],
                }
            ],
        ),
        msg("reaction", {"message_id": "wamid.OUT", "emoji": "👍"}),
        msg("unsupported", {"type": "poll_creation"}, errors=[{"code": 131051, "title": "Message type unknown"}]),
        {**msg("text", {"body": "in a group"}), "group_id": "120363025246125486"},
        {"from_user_id": BSUID, "id": "wamid.U", "timestamp": "1760000000", "type": "text", "text": {"body": "hi"}},
    ]
    statuses: list[dict[str, Any]] = [
        {
            "id": "wamid.OUT1",
            "status": "delivered",
            "timestamp": "1760000000",
            "recipient_id": sender,
            "conversation": {"id": "c1", "origin": {"type": "service"}},
            "pricing": {"billable": True},
        },
        {
            "id": "wamid.OUT2",
            "status": "failed",
            "timestamp": "1760000000",
            "recipient_id": sender,
            "errors": [{"code": 131026, "title": "Message undeliverable"}],
        },
        {"id": "wamid.OUT3", "status": "read", "recipient_user_id": BSUID},
    ]
    contacts = [{"profile": {"name": "Ada", "username": "@ada"}, "wa_id": sender, "user_id": BSUID}]
    return [meta_messages(m, contacts=contacts) for m in messages] + [meta_messages(statuses=statuses)]


# What a field Meta sends may hold instead: text no encoder takes, control characters, no text at all.
TRICKY = [
    "\ud800",
    "caf\udcff",
    "wamid.\n",
    "\x00",
    "\x1b[31mred",
    "\u202e",
    "",
    "12",
    7,
    7.5,
    True,
    None,
    [],
    {},
    [[1]],
    {"x": 1},
]


def paths(node: Any) -> list[tuple[Any, ...]]:
    """Where each part of `node` is, itself first (without recursion: parts may nest deeply)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), node)]
    while stack:
        at, part = stack.pop()
        found.append(at)
        children = part.items() if isinstance(part, dict) else enumerate(part) if isinstance(part, list) else ()
        stack.extend(((*at, key), child) for key, child in children)
    return found


def lookup(node: Any, at: tuple[Any, ...]) -> Any:
    for step in at:
        node = node[step]
    return node


def mutated(rng: random.Random, payload: Any) -> Any:
    """`payload` with a few of its parts (fields and the objects and lists around them) replaced,
    removed, or given company."""
    payload = json.loads(json.dumps(payload))
    for _ in range(rng.randrange(1, 5)):
        every = [at for at in paths(payload) if at]
        if max((len(at) for at in every), default=0) > MAX_DEPTH:
            break  # deep enough: deeper than JSON parsers go is a body that is not JSON (400)
        if not every or rng.random() < 0.02:
            payload = value(rng)  # not even an object: the one thing Meta's door refuses
            continue
        leaves = [at for at in every if not isinstance(lookup(payload, at), dict | list)]
        nodes = [at for at in every if isinstance(lookup(payload, at), dict | list)]
        at = rng.choice(leaves if leaves and (not nodes or rng.random() < 0.5) else nodes)
        parent = lookup(payload, at[:-1])
        action = rng.random()
        if at in nodes and action < 0.3:
            parent[at[-1]] = rng.choice([None, True, 0, 7, 7.5, "", "x", "\ud800"])  # an object or list that is not one
        elif action < 0.35:
            parent[at[-1]] = copy.deepcopy(rng.choice(TRICKY))
        elif action < 0.7:
            parent[at[-1]] = value(rng)
        elif action < 0.8 and isinstance(parent, dict):
            del parent[at[-1]]
        elif isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), value(rng) if rng.random() < 0.5 else parent[at[-1]])
        else:
            parent[rng.choice(["group_id", "context", "errors", "from_user_id", "extra"])] = value(rng)
    return payload


async def test_no_signed_meta_webhook_gets_a_5xx_and_every_object_gets_200(config: Config) -> None:
    rng = random.Random(SEED)
    templates = meta_templates()
    recorder = StoringRecorder()
    wrong: list[tuple[int, str, str]] = []
    async with webhook_client(config, recorder) as client:
        for _ in range(META_PAYLOADS):
            payload = mutated(rng, rng.choice(templates))
            response = await client.post(META, **meta_post(payload))
            expected = 200 if isinstance(payload, dict) else 400
            if response.status_code != expected:
                wrong.append((response.status_code, response.text[:200], json.dumps(payload)[:400]))
    assert wrong == []
    assert len(recorder.delivered) > META_PAYLOADS // 4  # the fuzz kept real messages flowing too
    assert recorder.reports


# -- Twilio -----------------------------------------------------------------------------------------

FORM_VALUES = [
    "",
    "hi",
    "STOP",
    CUSTOMER,
    TWILIO_NUMBER,
    f"whatsapp:{CUSTOMER}",
    f"whatsapp:{TWILIO_NUMBER}",
    "whatsapp:+5215512345678",
    "+5215512345678",
    "whatsapp:+549111523456789",
    f"whatsapp:{BSUID}",
    BSUID,
    "whatsapp:US.ENT.11815799212886844830",
    "whatsapp:ana.lopez_22",
    "whatsapp:",
    "whatsapp:@ana",
    "not-a-number",
    "+1 (415) 555-0100",
    "SM" + "1" * 32,
    "SM1\n",
    "SM\x00",
    "é",
    "👍",
    "\x1b[31m",
    "\u202e",
    "0",
    "-3",
    "10",
    "999999999999999999999",
    "lots",
    "https://api.twilio.com/media/ME1",
    "image/jpeg",
    "whatsapp",
    "48.85",
    "delivered",
    "read",
    "failed",
    "undelivered",
    "canceled",
    "30003",
    "x" * 3000,
]
FIELDS = [
    "From",
    "To",
    "Body",
    "MessageSid",
    "SmsMessageSid",
    "SmsSid",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "ButtonPayload",
    "ProfileName",
    "WaId",
    "Latitude",
    "Longitude",
    "Label",
    "ExternalUserId",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ChannelPrefix",
    "ChannelToAddress",
]


def twilio_form(rng: random.Random, template: dict[str, str]) -> dict[str, str]:
    form = dict(template)
    for _ in range(rng.randrange(1, 6)):
        name = rng.choice(FIELDS)
        if rng.random() < 0.2:
            form.pop(name, None)
        elif rng.random() < 0.8:
            form[name] = rng.choice(FORM_VALUES)
        else:
            form[name] = "".join(
                chr(rng.choice([rng.randrange(0x20), rng.randrange(0xD800)])) for _ in range(rng.randrange(12))
            )
    return form


async def test_no_signed_twilio_webhook_gets_a_5xx(config: Config) -> None:
    rng = random.Random(SEED)
    inbound = [
        twilio_inbound(),
        twilio_inbound(From=f"whatsapp:{CUSTOMER}", To=f"whatsapp:{TWILIO_NUMBER}", WaId=CUSTOMER[1:]),
    ]
    status = [
        {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "From": TWILIO_NUMBER,
            "MessageSid": "SM" + "9" * 32,
            "MessageStatus": "delivered",
            "SmsSid": "SM" + "9" * 32,
            "SmsStatus": "delivered",
            "To": CUSTOMER,
        }
    ]
    recorder = StoringRecorder()
    wrong: list[tuple[str, int, str, dict[str, str]]] = []
    async with webhook_client(config, recorder) as client:
        for i in range(TWILIO_FORMS):
            url, templates, allowed = (
                (TWILIO_INBOUND, inbound, {200, 400, 404}) if i % 3 else (TWILIO_STATUS, status, {200, 400})
            )
            form = twilio_form(rng, rng.choice(templates))
            response = await client.post(url, **twilio_post(url, form))
            if response.status_code not in allowed:
                wrong.append((url, response.status_code, response.text[:200], form))
        for _ in range(100):  # bodies that are not even form data, whatever their signature
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "c2lnbmVk"}
            response = await client.post(TWILIO_INBOUND, content=body, headers=headers)
            if not 400 <= response.status_code < 500:
                wrong.append((TWILIO_INBOUND, response.status_code, response.text[:200], {"body": repr(body)}))
    assert wrong == []
    assert len(recorder.delivered) > TWILIO_FORMS // 10
    assert recorder.reports
