"""Each conversation carries search attributes an operator can filter on: its flow and journey
data from the start, then its version, the step it waits at, and how it ended."""

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.common import TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.messages import InboundMessage
from chatflow.flows.registry import registry
from chatflow.temporal import search_attributes
from chatflow.temporal.client import deliver
from chatflow.temporal.replay import record, replay
from chatflow.temporal.search_attributes import (
    DATA,
    FLOW,
    OUTCOME,
    STEP,
    VERSION,
    at_start,
    data_entries,
    ensure_registered,
    first_wait,
)
from chatflow.testing import FlowTest, dev_server
from conversations.demo import Demo
from conversations.payment_recovery import PaymentRecovery
from tests.flows import Confirm, PaymentLink, SurveyV2


async def attributes(chat: FlowTest) -> TypedSearchAttributes:
    return (await chat.handle.describe()).typed_search_attributes


def indexed(found: TypedSearchAttributes) -> dict[str, Any]:
    """chatflow's own (Temporal keeps its patch markers there too)."""
    return {pair.key.name: pair.value for pair in found if pair.key.name.startswith("Chatflow")}


async def test_a_journey_is_found_by_flow_data_version_and_the_step_it_waits_at(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, PaymentLink) as chat:
        await chat.start({"order_id": "A-1001", "amount": 25, "vip": True, "items": ["x"], "note": "n" * 200})
        assert indexed(await attributes(chat)) == {
            FLOW.name: "payment_link",
            DATA.name: ["amount=25", "order_id=A-1001", "vip=true"],
            VERSION.name: "1",
            STEP.name: "ask",
        }
        await chat.event("payment_succeeded")
        found = await attributes(chat)
        assert found.get(OUTCOME) == "completed"
        assert found.get(STEP) == "paid"


async def test_the_step_follows_the_conversation(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, SurveyV2) as chat:
        await chat.send("hi")
        assert (await attributes(chat)).get(STEP) == "consent"
        await chat.send("yes")
        found = await attributes(chat)
        assert (found.get(FLOW), found.get(VERSION), found.get(STEP)) == ("survey", "2", "ask")
        assert found.get(OUTCOME) is None  # still running


async def test_a_conversation_that_ends_early_says_how(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.send("hello")
        await chat.end("the customer called instead")
        await chat.result()
        assert (await attributes(chat)).get(OUTCOME) == "cancelled"


def test_only_short_scalar_journey_data_is_indexed() -> None:
    data = {f"k{i:02}": i for i in range(30)} | {"nested": {"a": 1}}
    entries = data_entries(data)
    assert entries[:2] == ["k00=0", "k01=1"] and len(entries) == 20
    assert data_entries({"flag": False, "nested": {"a": 1}, "long": "x" * 500}) == ["flag=false"]


async def test_registering_twice_is_harmless(dev_env: WorkflowEnvironment) -> None:
    await ensure_registered(dev_env.client)
    await ensure_registered(dev_env.client)


async def test_waiting_again_at_the_same_step_costs_no_event(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Confirm) as chat:
        await chat.send("hi")
        await chat.send("maybe")  # no match: asked again, waits at the same step
        await chat.send("perhaps")
        # Temporal's own (TemporalChangeVersion, with the patch markers) aside: none of ours, the
        # starter having set them as they are (`at_start`).
        assert ours(await chat.handle.fetch_history()) == []


def ours(history: WorkflowHistory) -> list[set[str]]:
    """The upserts of chatflow's attributes in `history` (Temporal's TemporalChangeVersion aside)."""
    upserts = [
        set(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    return [fields for fields in upserts if any(name.startswith("Chatflow") for name in fields)]


async def test_the_starter_sets_what_it_can_know_and_the_first_wait_upserts_nothing(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with FlowTest(skipping_env, Demo) as chat:
        assert len(await chat.send("hi")) == 2  # the greeting, the menu
        await chat.settle()
        assert indexed(await attributes(chat)) == {FLOW.name: "demo", VERSION.name: "1", STEP.name: "menu"}
        assert ours(await chat.handle.fetch_history()) == []  # each would be a billable action
        await chat.send("bye")
        await chat.result()
        found = await attributes(chat)
        assert (found.get(STEP), found.get(OUTCOME)) == ("goodbye", "completed")
        assert ours(await chat.handle.fetch_history()) == [{STEP.name, OUTCOME.name}]
        await record(chat.handle, tmp_path / "demo.json")
    assert await replay([tmp_path / "demo.json"], [Demo]) == []  # recorded (redacted) as `chatflow record` does


def test_a_starter_foresees_the_first_wait_only_through_says() -> None:
    assert first_wait(Demo) == "menu"  # greet (a Say), then the menu
    assert first_wait(Confirm) == "ask"
    assert first_wait(PaymentRecovery) == ""  # an Http call decides the way
    assert indexed(at_start("demo", Demo)) == {FLOW.name: "demo", VERSION.name: "1", STEP.name: "menu"}
    assert indexed(at_start("payment_recovery", PaymentRecovery)) == {FLOW.name: "payment_recovery"}
    assert indexed(at_start("demo", None)) == {FLOW.name: "demo"}  # a flow this process lacks


async def test_a_namespace_without_the_attributes_still_starts_conversations() -> None:
    # A fresh server, where no worker has registered chatflow's attributes: the start with them
    # is refused, so the message starts its conversation without them.
    queue = f"unregistered-{uuid.uuid4().hex}"
    registry.deploy([Demo], queue)
    message = InboundMessage(id="SM1", channel="sms", provider="console", customer="+14155550100",
                             number="+15005550006", text="hi")  # fmt: skip
    try:
        async with dev_server() as env:
            handle = await deliver(env.client, message, "demo", task_queue=queue)
            description = await handle.describe()
            assert description.status == WorkflowExecutionStatus.RUNNING
            assert indexed(description.typed_search_attributes) == {}
            # Believed registered (a server replaced at the same address): refused, then started without.
            search_attributes._REGISTERED[(env.client.service_client.config.target_host, env.client.namespace)] = True
            other = replace(message, id="SM2", customer="+14155550101")
            handle = await deliver(env.client, other, "demo", task_queue=queue)
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            assert not await search_attributes.registered(env.client)  # asked again a minute later
    finally:
        registry.withdraw(queue)
