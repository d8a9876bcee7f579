"""With CHATFLOW_PAYLOAD_KEY, Temporal holds conversations encrypted: a client without the key
(Temporal's UI, its CLI) sees no customer's words; the codec server shows them to callers with
the API key, from the UI's origin."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, anything
from chatflow.temporal.client import connect, started_flow
from chatflow.temporal.converter import codec
from chatflow.temporal.redact import payloads
from chatflow.temporal.search_attributes import REGISTERED
from chatflow.testing import FlowTest
from chatflow.web.codec_server import codec_app
from tests.chatflow.temporal.histories import history_text

UI = "http://localhost:8233"
API_KEY = "codec-test-key"
NICKNAME = "Blue Falcon 77"


class Nickname(Flow):
    ask = Ask("What shall we call your card?", branches={anything: "thanks"}, save_as="nick")
    thanks = End("completed", "Thanks, {nick}.")


@dataclass
class Recorded:
    history: WorkflowHistory  # fetched by a client without the key, as Temporal's UI fetches it
    env: dict[str, str]


@pytest.fixture
async def recorded(dev_env: WorkflowEnvironment) -> AsyncIterator[Recorded]:
    env = {"CHATFLOW_PAYLOAD_KEY": f"k1:{base64.b64encode(os.urandom(32)).decode()}"}
    target = dev_env.client.service_client.config.target_host
    client = await connect(address=target, namespace=dev_env.client.namespace, env=env)
    async with FlowTest(WorkflowEnvironment.from_client(client), Nickname) as chat:
        assert await chat.send("hi") == ["What shall we call your card?"]
        assert await chat.send(NICKNAME) == [f"Thanks, {NICKNAME}."]
        history = await dev_env.client.get_workflow_handle(chat.ref.id).fetch_history()
    yield Recorded(history, env)


# Not payloads of chatflow's: search attributes (Temporal indexes them as they are; the SDK's own
# TemporalChangeVersion too), its patch markers (a flow's name and version) and its local
# activities' marker data (ids, times).
UNENCRYPTED = {*REGISTERED, "TemporalChangeVersion", "patch-data", "data"}


def payloads_to_decode(history: WorkflowHistory) -> list[Payload]:
    return [payload for event in history.events for name, payload in payloads(event) if name not in UNENCRYPTED]


async def test_a_run_encrypted_under_a_key_this_process_lacks_is_listed_with_its_flow(
    recorded: Recorded, dev_env: WorkflowEnvironment
) -> None:
    # The dashboard and the journeys API list every run of the namespace: one whose memo they
    # cannot decode (a retired key, another deployment's runs) names its flow all the same.
    query = f"WorkflowId = '{recorded.history.workflow_id}'"
    runs = [execution async for execution in dev_env.client.list_workflows(query)]
    assert runs
    with pytest.raises(KeyError, match="encoding"):
        await runs[0].memo()
    assert [await started_flow(run) for run in runs] == [Nickname.name]


async def test_a_history_holds_every_payload_encrypted_and_no_customers_words(recorded: Recorded) -> None:
    found = payloads_to_decode(recorded.history)
    assert found and all(payload.metadata["encoding"] == b"binary/encrypted" for payload in found)
    assert NICKNAME not in history_text(recorded.history)


@pytest.fixture
async def codec_server(recorded: Recorded) -> AsyncIterator[httpx.AsyncClient]:
    found = codec(recorded.env)
    assert found is not None
    app = codec_app(found, api_key=API_KEY, origins=[UI])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as http:
        yield http


def body(found: list[Payload]) -> str:
    return json_format.MessageToJson(Payloads(payloads=found))


async def test_the_codec_server_decodes_them_for_the_ui_and_the_cli(
    recorded: Recorded, codec_server: httpx.AsyncClient
) -> None:
    found = payloads_to_decode(recorded.history)
    answer = await codec_server.post(
        "/decode",
        content=body(found),
        headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}", "origin": UI},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == UI
    decoded = json_format.Parse(answer.text, Payloads()).payloads
    assert len(decoded) == len(found)
    assert all(payload.metadata["encoding"] == b"json/plain" for payload in decoded)
    assert any(NICKNAME in payload.data.decode() for payload in decoded)
    # And back: /encode gives payloads that decode again (the CLI's `--codec-endpoint` uses both).
    encoded = await codec_server.post(
        "/api/encode",
        content=answer.text,
        headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
    )
    again = json_format.Parse(encoded.text, Payloads()).payloads
    assert all(payload.metadata["encoding"] == b"binary/encrypted" for payload in again)


async def test_the_codec_server_asks_for_the_key_and_answers_only_the_uis_origin(
    recorded: Recorded, codec_server: httpx.AsyncClient
) -> None:
    content = body(payloads_to_decode(recorded.history)[:1])
    for authorization in ("", "Bearer wrong"):
        refused = await codec_server.post(
            "/decode", content=content, headers={"content-type": "application/json", "authorization": authorization}
        )
        assert refused.status_code == 401
        assert NICKNAME not in refused.text and "CHATFLOW_API_KEY" in refused.json()["error"]
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-namespace",
    }
    allowed = await codec_server.options("/decode", headers={"origin": UI, **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == UI
    other = await codec_server.options("/decode", headers={"origin": "https://evil.example", **preflight})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    bad = await codec_server.post(
        "/decode", content=b"{", headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}
    )
    assert bad.status_code == 400 and "payloads" in json.loads(bad.text)["error"]
