"""Recorded histories (`chatflow record`, committed for the replay check) hold no phone number,
no data and no header, are written decrypted, and still replay."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, Http, If, Say, Wait, anything, hours
from chatflow.domain.errors import ChatflowError
from chatflow.runtime.testing import record_histories
from chatflow.temporal.client import connect
from chatflow.temporal.redact import Redactor
from chatflow.temporal.replay import prepared, record, replay
from chatflow.testing import FlowTest
from tests.chatflow.temporal.business_api import business_api
from tests.chatflow.temporal.histories import history_text


def lookup(api: str) -> type[Flow]:
    class Lookup(Flow):
        name = "lookup"
        defaults = {"api": api}
        hello = Say("Hello {name}, about order {order_id}.")
        ask = Ask("Which order?", branches={anything: "look_up"}, save_as="order")
        look_up = Http("GET", "{api}/orders/{order}", headers={"X-Customer": "{customer_id}"}, save_as="found")
        done = End("completed", "Order {order} found for {name}.")

    return Lookup


async def test_a_recorded_history_holds_no_number_data_or_header_and_still_replays(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with business_api() as api:
        flow = lookup(api.url)
        async with FlowTest(skipping_env, flow, http_allow=[api.host]) as chat:
            await chat.start({"name": "Ana Pereira", "order_id": "Z-981", "customer_id": "cust-5521"})
            assert await chat.send("Z-981") == ["Order Z-981 found for Ana Pereira."]
            await record(chat.handle, tmp_path / "lookup-v1.json")
            customer = chat.ref.customer
    assert api.requests[0].headers["x-customer"] == "cust-5521"
    shown = history_text(WorkflowHistory.from_json("lookup", (tmp_path / "lookup-v1.json").read_text()))
    for personal in ("Ana Pereira", "cust-5521", customer, customer[1:], "/orders/Z-981"):
        assert personal not in shown, personal
    assert "Z-981" in shown  # what the customer wrote is kept: the flow decides on it
    assert await replay([tmp_path / "lookup-v1.json"], [flow]) == []


class Tiers(Flow):
    name = "tiers"
    check = If(lambda data: data["tier"] == "gold", then="gold", otherwise="other")
    gold = Wait(timeout=hours(1), on_timeout="other", events={"go": "other"})  # a timer only gold members get
    other = End("completed", "Welcome.")


async def test_a_history_whose_decisions_depend_on_redacted_data_is_not_written_redacted(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, Tiers) as chat:
        await chat.start({"tier": "gold"})
        assert await chat.skip(hours(2)) == ["Welcome."]
        history = await chat.handle.fetch_history()
    with pytest.raises(ChatflowError, match="does not replay once redacted.*--no-redact"):
        await prepared(history, None, redact=Redactor(), flows=[Tiers])
    kept = await prepared(history, None, redact=None, flows=[Tiers])
    assert "gold" in history_text(kept)


async def test_chatflow_record_writes_encrypted_histories_decrypted_and_redacted(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = {"CHATFLOW_PAYLOAD_KEY": f"k1:{base64.b64encode(os.urandom(32)).decode()}"}
    target = dev_env.client.service_client.config.target_host
    client = await connect(address=target, namespace=dev_env.client.namespace, env=env)

    class Greeting(Flow):
        name = "greeting_recorded"
        ask = Ask("Your name?", branches={anything: "bye"}, save_as="who")
        bye = End("completed", "Bye {who}.")

    async with FlowTest(WorkflowEnvironment.from_client(client), Greeting) as chat:
        await chat.send("hi")
        assert await chat.send("Rui") == ["Bye Rui."]
        customer = chat.ref.customer
    [written] = await record_histories(client, "greeting_recorded", tmp_path, flows=[Greeting])
    shown = history_text(WorkflowHistory.from_json("g", written.path.read_text()))
    assert "binary/encrypted" not in shown and customer[1:] not in shown
    assert await replay([written.path], [Greeting]) == []  # no key needed
