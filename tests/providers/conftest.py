"""A config binding one Twilio, one WhatsApp Cloud and one console number, webhooks signed as
the providers sign them, and the channels' routes served in front of a recorder instead of Temporal."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

import providers
from chatflow.domain.channel import Channel, Resources
from chatflow.domain.config import Config, Settings, parse_config
from chatflow.domain.messages import DeliveryUpdate, InboundMessage
from chatflow.edge.dedupe import Dedupe
from chatflow.edge.inbound import InboundEdge, Receive
from chatflow.edge.optout import OptOuts
from chatflow.web.webhooks import channel_routes

PUBLIC_URL = "https://chat.example.com"
TWILIO_API = "https://twilio.test"
GRAPH_API = "https://graph.test"
ACCOUNT_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token"
APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"
TWILIO_NUMBER = "+15005550006"
WHATSAPP_NUMBER = "+15550001111"
PHONE_NUMBER_ID = "106540352242922"
CONSOLE_NUMBER = "+15005550010"
CUSTOMER = "+14155550100"
MESSAGES_URL = f"{TWILIO_API}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
GRAPH_MESSAGES_URL = f"{GRAPH_API}/v21.0/{PHONE_NUMBER_ID}/messages"

TOML = f"""
[[numbers]]
number = "{TWILIO_NUMBER}"
provider = "twilio"
channel = "sms"
flow = "demo"
keywords = {{ JOIN = "signup" }}

[[numbers]]
number = "{WHATSAPP_NUMBER}"
provider = "whatsapp_cloud"
flow = "demo"
phone_number_id = "{PHONE_NUMBER_ID}"

[[numbers]]
number = "{CONSOLE_NUMBER}"
provider = "console"
flow = "demo"
keywords = {{ JOIN = "signup" }}
"""


def make_settings(**overrides: str) -> Settings:
    """Settings with every channel's account; an override in capitals is an environment variable
    (TWILIO_AUTH_TOKEN=""), one in lower case a chatflow setting (public_url="")."""
    environment = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "CHATFLOW_TWILIO_API_URL": TWILIO_API,
        "WHATSAPP_ACCESS_TOKEN": "meta-access-token",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "CHATFLOW_WHATSAPP_API_URL": GRAPH_API,
    }
    environment.update({name: value for name, value in overrides.items() if name.isupper()})
    # Any: which of Settings' fields (each a str) the overrides name is known only when it runs.
    values: dict[str, Any] = {"public_url": PUBLIC_URL}
    values.update((name, value) for name, value in overrides.items() if not name.isupper())
    return Settings(**values, environment=environment)


def make_config(**overrides: str) -> Config:
    # Overrides apply after parsing, so a test can unset a secret the config check requires.
    config = parse_config(TOML, make_settings(), channels=providers.CHANNELS)
    config.settings = make_settings(**overrides)
    return config


@pytest.fixture
def config() -> Config:
    return make_config()


# -- signing, exactly as the providers do ---------------------------------------------------------


def twilio_post(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, Any]:
    """Keyword arguments for httpx's post: the form and Twilio's signature over URL + fields."""
    signature = RequestValidator(token).compute_signature(url, params)
    return {
        "content": urlencode(params).encode(),
        "headers": {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    }


def meta_post(payload: object, secret: str = APP_SECRET) -> dict[str, Any]:
    """Keyword arguments for httpx's post: the JSON body and Meta's HMAC-SHA256 of its raw bytes."""
    body = json.dumps(payload).encode()
    return {"content": body, "headers": {"Content-Type": "application/json", **meta_signature(body, secret)}}


def meta_signature(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """Meta's header: `sha256=` and the hex HMAC-SHA256 of the raw body with the app secret."""
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def twilio_inbound(sid: str = "SM" + "1" * 32, body: str = "hi", **fields: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "From": CUSTOMER,
        "To": TWILIO_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **fields,
    }


def meta_messages(
    *messages: dict[str, Any],
    contacts: list[dict[str, Any]] | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
    statuses: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `messages` webhook as Meta posts it, with one entry and one change."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": WHATSAPP_NUMBER[1:], "phone_number_id": phone_number_id},
    }
    if messages:
        value["contacts"] = contacts if contacts is not None else [{"profile": {"name": "Ada"}, "wa_id": CUSTOMER[1:]}]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }


def meta_text(wamid: str = "wamid.A1", text: str = "hi", sender: str = CUSTOMER[1:]) -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": "1760000000", "type": "text", "text": {"body": text}}


# -- webhooks in front of a recorder instead of Temporal ------------------------------------------


@dataclass
class Recorder:
    """Stands in for Temporal: what was delivered and reported, and which conversations exist."""

    delivered: list[tuple[InboundMessage, str]] = field(default_factory=list)
    reports: list[tuple[str, DeliveryUpdate]] = field(default_factory=list)
    running: set[str] = field(default_factory=set)

    async def deliver(self, message: InboundMessage, flow: str) -> None:
        self.delivered.append((message, flow))

    async def report(self, conversation: str, update: DeliveryUpdate) -> bool:
        if conversation not in self.running:
            return False
        self.reports.append((conversation, update))
        return True

    @property
    def messages(self) -> list[InboundMessage]:
        return [message for message, _ in self.delivered]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def edge_with_opt_outs(recorder: Recorder, redis: Redis) -> Receive:
    """The inbound edge as the web app has it: STOP, START and HELP answered outside any flow."""
    return InboundEdge(recorder.deliver, OptOuts(redis), Dedupe(redis)).receive


@contextlib.asynccontextmanager
async def webhook_client(
    config: Config,
    recorder: Recorder,
    base_url: str = PUBLIC_URL,
    *,
    receive: Receive | None = None,
    channels: dict[str, Channel] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the channels' routes as the web app serves them, the edge handing messages to
    `recorder`. The channels call provider APIs through their own httpx client: mock them with respx."""
    async with httpx.AsyncClient() as http:
        if channels is None:
            channels = providers.build_channels(config, Resources(http=http))
        routes = channel_routes(
            channels,
            receive or InboundEdge(recorder.deliver).receive,
            recorder.report,
            public_url=config.settings.public_url,
        )
        transport = httpx.ASGITransport(app=Starlette(routes=routes))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@pytest.fixture
async def client(config: Config, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    async with webhook_client(config, recorder) as client:
        yield client
