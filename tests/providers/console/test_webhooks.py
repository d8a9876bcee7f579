import json

import httpx
import pytest

from chatflow.web.app import create_app
from chatflow.domain.config import parse_config, Settings
from chatflow.domain.messages import InboundMessage
from providers.console import Outbox

CONFIG = parse_config(
    """
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "+15005550006"
provider = "console"
flow = "demo"
keywords = { JOIN = "signup" }
""",
    Settings(),
)


@pytest.fixture
def delivered() -> list[tuple[InboundMessage, str]]:
    return []


@pytest.fixture
async def http(dev_env, delivered):  # type: ignore[no-untyped-def]
    async def deliver(message: InboundMessage, flow: str) -> None:
        delivered.append((message, flow))

    app = create_app(CONFIG, dev_env.client, deliver=deliver, console_outbox=Outbox())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_a_console_message_is_routed_by_the_number_it_was_sent_to(http, delivered) -> None:
    answer = await http.post("/console/messages", json={"from": "+1 415 555 0100", "to": "+15005550006", "text": "hi"})
    assert answer.status_code == 202
    assert answer.json()["conversation"] == "chat:console:+15005550006:+14155550100"
    message, flow = delivered[0]
    assert (message.provider, message.channel, message.customer, message.text, flow) == (
        "console", "console", "+14155550100", "hi", "demo",
    )
    await http.post("/console/messages", json={"from": "+14155550100", "to": "+15005550006", "text": "join now"})
    assert delivered[1][1] == "signup"


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ("not json", {"content-type": "application/json"}, 400, "not valid JSON"),
        ("[]", {"content-type": "application/json"}, 400, "must be an object"),
        (json.dumps({"from": "+14155550100", "to": "+15005550006"}), {"content-type": "application/json"}, 400, "'text'"),
        (json.dumps({"from": "hello", "to": "+15005550006", "text": "x"}), {"content-type": "application/json"}, 400, "from 'hello'"),
        (json.dumps({"from": "+14155550100", "to": "+15005550007", "text": "x"}), {"content-type": "application/json"}, 404, "not bound"),
        ("from=x", {"content-type": "application/x-www-form-urlencoded"}, 415, "JSON"),
        ("x" * 20000, {"content-type": "application/json"}, 413, "larger"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(http, delivered, body, headers, status, says) -> None:
    answer = await http.post("/console/messages", content=body, headers=headers)
    assert answer.status_code == status
    assert says in answer.json()["error"]
    assert delivered == []


async def test_reading_needs_a_customer_number(http) -> None:
    assert (await http.get("/console/messages")).status_code == 400
    assert (await http.get("/console/messages", params={"customer": "+14155550100", "after": "x"})).status_code == 400


async def test_console_numbers_are_listed(http) -> None:
    assert (await http.get("/console/numbers")).json() == {
        "numbers": [{"number": "+15005550006", "flow": "demo", "channel": "console"}]
    }
