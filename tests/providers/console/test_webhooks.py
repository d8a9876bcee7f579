"""The console's routes: customers type by POST, read the bot's messages by long-poll, list numbers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from chatflow.domain.channel import Channel
from chatflow.domain.config import Config
from chatflow.domain.messages import OutboundMessage
from chatflow.edge.optout import OPTED_OUT_TEXT
from providers.console import ConsoleChannel, Outbox
from tests.providers.conftest import CONSOLE_NUMBER, CUSTOMER, Recorder, edge_with_opt_outs, webhook_client

MESSAGES = "/console/messages"


@pytest.fixture
def console(config: Config) -> ConsoleChannel:
    return ConsoleChannel(Outbox(), numbers=config.numbers)


@pytest.fixture
async def http(config: Config, recorder: Recorder, console: ConsoleChannel) -> AsyncIterator[httpx.AsyncClient]:
    channels: dict[str, Channel] = {"console": console}
    async with webhook_client(config, recorder, "http://test", channels=channels) as client:
        yield client


async def test_a_console_message_is_routed_by_the_number_it_was_sent_to(
    http: httpx.AsyncClient, recorder: Recorder
) -> None:
    answer = await http.post(MESSAGES, json={"from": "+1 415 555 0100", "to": CONSOLE_NUMBER, "text": "hi"})
    assert answer.status_code == 202
    assert answer.json()["conversation"] == f"chat:console:{CONSOLE_NUMBER}:{CUSTOMER}"
    message, flow = recorder.delivered[0]
    assert answer.json()["id"] == message.id
    assert (message.provider, message.channel, message.customer, message.text, flow) == (
        "console",
        "console",
        CUSTOMER,
        "hi",
        "demo",
    )
    await http.post(MESSAGES, json={"from": CUSTOMER, "to": CONSOLE_NUMBER, "text": "join now"})
    assert recorder.delivered[1][1] == "signup"


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ("not json", JSON, 400, "not valid JSON"),
        ("[]", JSON, 400, "must be an object"),
        (json.dumps({"from": CUSTOMER, "to": CONSOLE_NUMBER}), JSON, 400, "'text'"),
        (json.dumps({"from": "hello", "to": CONSOLE_NUMBER, "text": "x"}), JSON, 400, "from 'hello'"),
        (json.dumps({"from": CUSTOMER, "to": "+15005550007", "text": "x"}), JSON, 404, "not bound"),
        # A Twilio number is no console number, though the config binds it.
        (json.dumps({"from": CUSTOMER, "to": "+15005550006", "text": "x"}), JSON, 404, "not bound"),
        ("from=x", {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        ("x" * 20000, JSON, 413, "limit"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(
    http: httpx.AsyncClient, recorder: Recorder, body: str, headers: dict[str, str], status: int, says: str
) -> None:
    answer = await http.post(MESSAGES, content=body, headers=headers)
    assert answer.status_code == status
    assert says in answer.json()["error"]
    assert recorder.delivered == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"customer": "hello"},
        {"customer": CUSTOMER, "after": "x"},
        {"customer": CUSTOMER, "wait": "soon"},
        {"customer": CUSTOMER, "wait": "nan"},
    ],
)
async def test_reading_needs_a_customer_number_a_cursor_it_gave_and_seconds(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    answer = await http.get(MESSAGES, params=params)
    assert answer.status_code == 400
    assert answer.json()["error"]


async def test_what_the_bot_sends_is_read_from_a_cursor(http: httpx.AsyncClient, console: ConsoleChannel) -> None:
    start = (await http.get(MESSAGES, params={"customer": CUSTOMER, "after": "latest"})).json()
    assert start == {"messages": [], "next": "0"}
    await console.send(OutboundMessage("console", "console", CONSOLE_NUMBER, CUSTOMER, "Hello!"))
    read = (await http.get(MESSAGES, params={"customer": CUSTOMER, "after": start["next"]})).json()
    assert read == {
        "messages": [{"cursor": "1", "text": "Hello!", "options": [], "number": CONSOLE_NUMBER}],
        "next": "1",
    }


async def test_a_long_poll_answers_when_the_bot_speaks(http: httpx.AsyncClient, console: ConsoleChannel) -> None:
    reading = asyncio.create_task(http.get(MESSAGES, params={"customer": CUSTOMER, "after": "0", "wait": "30"}))
    await asyncio.sleep(0.1)
    assert not reading.done()
    await console.send(OutboundMessage("console", "console", CONSOLE_NUMBER, CUSTOMER, "Later"))
    answer = await asyncio.wait_for(reading, 5)
    assert [line["text"] for line in answer.json()["messages"]] == ["Later"]


async def test_console_numbers_are_listed(http: httpx.AsyncClient) -> None:
    assert (await http.get("/console/numbers")).json() == {
        "numbers": [{"number": CONSOLE_NUMBER, "flow": "demo", "channel": "console"}]
    }


async def test_a_stop_is_confirmed_in_the_outbox_and_reaches_no_flow(
    config: Config, recorder: Recorder, redis: Redis, console: ConsoleChannel
) -> None:
    channels: dict[str, Channel] = {"console": console}
    receive = edge_with_opt_outs(recorder, redis)
    async with webhook_client(config, recorder, "http://test", receive=receive, channels=channels) as client:
        answer = await client.post(MESSAGES, json={"from": CUSTOMER, "to": CONSOLE_NUMBER, "text": "STOP"})
        read = (await client.get(MESSAGES, params={"customer": CUSTOMER})).json()
    assert answer.status_code == 202
    assert [line["text"] for line in read["messages"]] == [OPTED_OUT_TEXT]
    assert recorder.delivered == []
