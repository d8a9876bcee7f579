"""Hypothesis against the doors test_webhook_fuzz does not try: the console channel's
(`POST /console/messages` with any JSON or bytes, `GET /console/messages` and
`GET /console/numbers` with any query) and Meta's subscription handshake (`GET
/webhooks/whatsapp`), plus Twilio status callbacks of any fields, signed as Twilio signs them.
No input gets a 5xx: a clear 4xx, or what the door answers to good input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

import providers
from chatflow.domain.channel import Resources
from chatflow.domain.config import Config
from chatflow.edge.inbound import InboundEdge
from chatflow.web.webhooks import channel_routes
from tests.providers.conftest import (
    ACCOUNT_SID,
    CONSOLE_NUMBER,
    CUSTOMER,
    PUBLIC_URL,
    TWILIO_TOKEN,
    VERIFY_TOKEN,
    Recorder,
    make_config,
)

EXAMPLES = 300  # per door: about 1500 requests in all
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
TWILIO_STATUS = f"{PUBLIC_URL}/webhooks/twilio/status"

NUMBERS = st.sampled_from([CUSTOMER, CONSOLE_NUMBER, "+521551234567", "14155550100", "+1", "", "whatsapp:+14155550100"])
TEXTS = st.one_of(NUMBERS, st.text(max_size=40), st.sampled_from(["STOP", "start", "HELP", "١٢", "²", "NaN", "-1e9"]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=12,
)
CONSOLE_MESSAGE = st.fixed_dictionaries(
    {},
    optional={"from": JSON | NUMBERS, "to": JSON | NUMBERS, "text": JSON | TEXTS, "payload": JSON, "id": JSON | TEXTS},
)
QUERY_KEYS = st.sampled_from(["customer", "after", "wait", "hub.mode", "hub.verify_token", "hub.challenge"]) | st.text(
    max_size=8
)
QUERY_VALUES = TEXTS | st.sampled_from(["subscribe", VERIFY_TOKEN, "0", "0-0", "$", "inf", "-inf", "1e400"])
STATUS_KEYS = st.sampled_from(
    ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "To", "From", "ErrorCode", "ChannelToAddress", "AccountSid"]
) | st.text(max_size=8)
STATUS_VALUES = TEXTS | st.sampled_from(["SM" + "a" * 32, "delivered", "read", "failed", "undelivered", "30008"])


@dataclass
class Web:
    """The channels' routes as the web app serves them, called from hypothesis's synchronous
    examples through a portal to an event loop of their own."""

    portal: BlockingPortal
    client: httpx.AsyncClient

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(partial(self.client.get, path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(partial(self.client.post, path, **kwargs))


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    config: Config = make_config()
    recorder = Recorder(running={f"chat:console:{CONSOLE_NUMBER}:{CUSTOMER}"})
    with start_blocking_portal() as portal:
        channels = providers.build_channels(config, Resources(http=httpx.AsyncClient()))
        routes = channel_routes(channels, InboundEdge(recorder.deliver).receive, recorder.report, public_url=PUBLIC_URL)
        # An app that raises answers 500, as uvicorn would: counted, not raised here.
        transport = httpx.ASGITransport(app=Starlette(routes=routes), raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)
        yield Web(portal, client)
        portal.call(client.aclose)


def no_long_poll(query: dict[str, str]) -> dict[str, str]:
    """A read that may wait would wait up to 30 s for nobody: keep its waits tiny (the rest as drawn)."""
    try:
        if float(query.get("wait", "0")) > 0.01:
            query["wait"] = "0.01"
    except ValueError:
        pass
    return query


@FUZZ
@given(
    body=st.one_of(CONSOLE_MESSAGE, JSON).map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]),
)
def test_no_console_message_gets_a_5xx(web: Web, body: bytes, content_type: str) -> None:
    answer = web.post("/console/messages", content=body, headers={"content-type": content_type} if content_type else {})
    assert answer.status_code < 500, (body, answer.text)


@FUZZ
@given(
    path=st.sampled_from(["/console/messages", "/console/numbers", "/webhooks/whatsapp"]),
    query=st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=4),
)
def test_no_read_or_handshake_gets_a_5xx(web: Web, path: str, query: dict[str, str]) -> None:
    answer = web.get(path, params=no_long_poll(query))
    assert answer.status_code < 500, (path, query, answer.text)


@FUZZ
@given(fields=st.dictionaries(STATUS_KEYS, STATUS_VALUES, max_size=8), base=st.booleans())
def test_no_signed_twilio_status_callback_gets_a_5xx(web: Web, fields: dict[str, str], base: bool) -> None:
    form: dict[str, Any] = (
        {"AccountSid": ACCOUNT_SID, "MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered"} if base else {}
    )
    form.update(fields)
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(TWILIO_STATUS, form)
    answer = web.post("/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code < 500, (form, answer.text)
    assert answer.status_code != 403, "signed as Twilio signs: never refused as forged"
