"""How the web layer serves any channel's routes (chatflow.web.webhooks), with a channel of the test's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from chatflow.domain.addresses import Address
from chatflow.domain.channel import Channel, Received, StatusReport, WebhookAnswer, WebhookRequest, WebhookRoute
from chatflow.domain.config import Config, NumberBinding
from chatflow.domain.errors import Conflict, Forbidden, TooLarge
from chatflow.domain.messages import DeliveryUpdate, InboundMessage, OutboundMessage, SendResult
from chatflow.edge.inbound import Verdict
from tests.providers.conftest import CUSTOMER, PUBLIC_URL, Recorder, make_config, webhook_client

NUMBER = "+15005550006"


@dataclass
class Echo:
    """A channel whose POST carries messages (one per line) and statuses (`status:<id>:<conversation>,...`)."""

    name: str = "echo"
    requests: list[WebhookRequest] = field(default_factory=list)
    answered: list[tuple[Received, list[tuple[InboundMessage, str]]]] = field(default_factory=list)

    def routes(self) -> Sequence[WebhookRoute]:
        return [
            WebhookRoute("/webhooks/echo", "POST", self.receive, "text/plain", 100),
            WebhookRoute("/webhooks/echo", "GET", self.read),
        ]

    async def receive(self, request: WebhookRequest) -> Received:
        self.requests.append(request)
        if request.headers.get("x-signature") != "ok":
            raise Forbidden("x-signature does not match")
        received = Received()
        binding = NumberBinding(Address("tel", NUMBER), "echo", "sms", "demo")
        for i, line in enumerate(request.body.decode().splitlines()):
            if line.startswith("status:"):
                _, message_id, conversations = line.split(":", 2)
                update = DeliveryUpdate(message_id, "delivered")
                received.statuses.append(StatusReport(update, conversations.split(",")))
            else:
                received.messages.append((InboundMessage(f"m{i}", "sms", "echo", CUSTOMER, NUMBER, line), binding))
        return received

    async def read(self, request: WebhookRequest) -> Received:
        self.requests.append(request)
        return Received(answer=WebhookAnswer(200, request.query.get("say", ""), "text/plain"))

    async def send(self, message: OutboundMessage) -> SendResult:
        return SendResult("sent-1")

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        self.answered.append((received, list(replies)))
        return WebhookAnswer(200, "|".join(text for _, text in replies), "text/plain")


SIGNED = {"content-type": "text/plain", "x-signature": "ok"}


@pytest.fixture
def echo() -> Echo:
    return Echo()


def channels(echo: Echo) -> dict[str, Channel]:
    return {"echo": echo}


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("chatflow_webhooks_total", {"provider": "echo", "outcome": outcome}) or 0.0


async def test_the_channel_sees_the_public_url_lower_case_headers_query_and_body(
    config: Config, recorder: Recorder, echo: Echo
) -> None:
    async with webhook_client(config, recorder, "http://10.0.0.5:8000", channels=channels(echo)) as client:
        await client.post(
            "/webhooks/echo?tenant=7", content=b"hi", headers={"X-Signature": "ok", "Content-Type": "text/plain"}
        )
    [request] = echo.requests
    assert (request.method, request.url, request.query, request.body) == (
        "POST",
        f"{PUBLIC_URL}/webhooks/echo?tenant=7",
        {"tenant": "7"},
        b"hi",
    )
    assert request.headers["x-signature"] == "ok"


async def test_without_a_public_url_the_channel_sees_the_url_called(recorder: Recorder, echo: Echo) -> None:
    async with webhook_client(
        make_config(public_url=""), recorder, "http://10.0.0.5:8000", channels=channels(echo)
    ) as client:
        await client.post("/webhooks/echo", content=b"hi", headers=SIGNED)
    assert echo.requests[0].url == "http://10.0.0.5:8000/webhooks/echo"


async def test_messages_go_to_the_edge_and_its_replies_to_the_channels_answer(
    config: Config, recorder: Recorder, echo: Echo
) -> None:
    async def receive(binding: NumberBinding, message: InboundMessage) -> Verdict:
        await recorder.deliver(message, binding.flow)
        return Verdict("help", reply=f"re: {message.text}") if message.text == "help" else Verdict("delivered")

    async with webhook_client(config, recorder, receive=receive, channels=channels(echo)) as client:
        response = await client.post("/webhooks/echo", content=b"hello\nhelp", headers=SIGNED)
    assert (response.status_code, response.text) == (200, "re: help")
    assert [m.text for m in recorder.messages] == ["hello", "help"]
    [(received, replies)] = echo.answered
    assert [(m.text, reply) for m, reply in replies] == [("help", "re: help")]


async def test_an_answer_of_its_own_is_given_as_it_is(config: Config, recorder: Recorder, echo: Echo) -> None:
    async with webhook_client(config, recorder, channels=channels(echo)) as client:
        response = await client.get("/webhooks/echo", params={"say": "challenge"})
    assert (response.status_code, response.text) == (200, "challenge")
    assert echo.answered == []


async def test_a_status_goes_to_the_first_of_its_conversations_that_exists(
    config: Config, recorder: Recorder, echo: Echo
) -> None:
    recorder.running.add("chat:b")
    async with webhook_client(config, recorder, channels=channels(echo)) as client:
        ok = await client.post("/webhooks/echo", content=b"status:OUT1:chat:a,chat:b,chat:c", headers=SIGNED)
        gone = await client.post("/webhooks/echo", content=b"status:OUT2:chat:x", headers=SIGNED)
    assert (ok.status_code, gone.status_code) == (200, 200)
    assert [(conversation, update.message_id) for conversation, update in recorder.reports] == [("chat:b", "OUT1")]


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"hi", {"content-type": "text/plain"}, 403, "x-signature"),
        (b"hi", {"content-type": "application/json", "x-signature": "ok"}, 415, "text/plain"),
        (b"x" * 101, SIGNED, 413, "limit"),
    ],
)
async def test_refusals_are_answered_with_their_status_and_reason(
    config: Config, recorder: Recorder, echo: Echo, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    async with webhook_client(config, recorder, channels=channels(echo)) as client:
        response = await client.post("/webhooks/echo", content=body, headers=headers)
    assert response.status_code == status
    assert says in response.json()["error"]
    assert recorder.delivered == []


async def test_an_edge_that_fails_asks_the_provider_to_retry_and_one_that_refuses_says_why(
    config: Config, recorder: Recorder, echo: Echo
) -> None:
    async def down(binding: NumberBinding, message: InboundMessage) -> Verdict:
        raise ConnectionError("temporal is down")

    async def refusing(binding: NumberBinding, message: InboundMessage) -> Verdict:
        raise Conflict("not now")

    async with webhook_client(config, recorder, receive=down, channels=channels(echo)) as client:
        failed = await client.post("/webhooks/echo", content=b"hi", headers=SIGNED)
    async with webhook_client(config, recorder, receive=refusing, channels=channels(echo)) as client:
        refused = await client.post("/webhooks/echo", content=b"hi", headers=SIGNED)
    assert (failed.status_code, refused.status_code) == (503, 409)
    assert "temporal is down" in failed.json()["error"]
    assert echo.answered == []


async def test_a_status_that_cannot_be_reported_asks_the_provider_to_retry(
    config: Config, recorder: Recorder, echo: Echo
) -> None:
    async def unreachable(conversation: str, update: DeliveryUpdate) -> bool:
        raise ConnectionError("temporal is down")

    recorder.report = unreachable  # type: ignore[method-assign]
    async with webhook_client(config, recorder, channels=channels(echo)) as client:
        response = await client.post("/webhooks/echo", content=b"status:OUT1:chat:a", headers=SIGNED)
    assert response.status_code == 503
    assert "OUT1" in response.json()["error"]


async def test_inbound_webhooks_are_counted_by_channel_and_outcome(
    config: Config, recorder: Recorder, echo: Echo
) -> None:
    before = {outcome: counted(outcome) for outcome in ("accepted", "rejected")}
    async with webhook_client(config, recorder, channels=channels(echo)) as client:
        await client.post("/webhooks/echo", content=b"hi", headers=SIGNED)
        await client.post("/webhooks/echo", content=b"hi", headers={"content-type": "text/plain"})
        await client.get("/webhooks/echo")  # a read, not a webhook
    assert counted("accepted") - before["accepted"] == 1
    assert counted("rejected") - before["rejected"] == 1


async def test_one_refused_message_of_a_batch_is_dropped_and_the_others_delivered(
    config: Config, recorder: Recorder, echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[str] = []

    async def too_large_once(binding: NumberBinding, message: InboundMessage) -> Verdict:
        if message.text == "huge":
            raise TooLarge("message huge is over the limit")
        delivered.append(message.text)
        return Verdict("delivered")

    async with webhook_client(config, recorder, receive=too_large_once, channels=channels(echo)) as client:
        batch = await client.post("/webhooks/echo", content=b"before\nhuge\nafter", headers=SIGNED)
        alone = await client.post("/webhooks/echo", content=b"huge", headers=SIGNED)
    assert batch.status_code == 200 and delivered == ["before", "after"]
    assert "dropped message m1 of a batch" in caplog.text
    assert alone.status_code == 413  # a single message is refused with its reason, as before
