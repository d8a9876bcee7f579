"""Each conversation carries search attributes an operator can filter on: its flow and journey
data from the start, then its version, the step it waits at, and how it ended."""

from typing import Any

from temporalio.common import TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from chatflow.temporal.search_attributes import DATA, FLOW, OUTCOME, STEP, VERSION, data_entries, ensure_registered
from chatflow.testing import FlowTest
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
        history = await chat.handle.fetch_history()
    upserts = [
        set(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    # Temporal's own (TemporalChangeVersion, with the patch markers) aside, one upsert of ours.
    assert len([fields for fields in upserts if any(name.startswith("Chatflow") for name in fields)]) == 1
