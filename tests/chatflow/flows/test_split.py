"""`Split`: an experiment sends each customer down one branch by weight, the same one every time,
and says which in the trace, the data, the search attributes and the sinks' events."""

from collections import Counter

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, FlowDefinitionError, Say, Split
from chatflow.domain.sink import LifecycleEvent
from chatflow.flows.graph import graph_of, mermaid
from chatflow.flows.split import choose_branch
from chatflow.temporal import lifecycle
from chatflow.temporal.search_attributes import DATA
from chatflow.testing import FlowTest, MemoryFlowTest


class Wording(Flow):
    wording = Split(weights={"short": 50, "long": 50})
    short = Say("Pay here: https://pay.example/1", then="done")
    long = Say("Your order is waiting for you. Pay when it suits you: https://pay.example/1", then="done")
    done = End()

    sink_keys = ("order_id",)


def customers(n: int) -> list[str]:
    return [f"+1415555{i:04d}" for i in range(n)]


def test_a_50_50_split_of_200_customers_is_even_and_each_keeps_their_branch() -> None:
    weights = {"short": 50.0, "long": 50.0}
    chosen = {c: choose_branch(weights, "wording", "wording", c) for c in customers(200)}
    counts = Counter(chosen.values())
    assert 80 <= counts["short"] <= 120 and 80 <= counts["long"] <= 120, counts
    assert all(choose_branch(weights, "wording", "wording", c) == branch for c, branch in chosen.items())


def test_a_90_10_split_of_1000_customers_keeps_to_its_weights() -> None:
    weights = {"a": 90.0, "b": 10.0}
    counts = Counter(choose_branch(weights, "offer", "offer", c) for c in customers(1000))
    assert 850 <= counts["a"] <= 950 and 50 <= counts["b"] <= 150, counts


def test_the_branch_depends_on_the_flow_and_the_step_not_only_the_customer() -> None:
    weights = {"a": 50.0, "b": 50.0}
    same = sum(
        choose_branch(weights, "wording", "wording", c) == choose_branch(weights, "reminder", "wording", c)
        for c in customers(200)
    )
    assert 60 <= same <= 140  # independent experiments: about half agree, not all


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"a": 50, "b": 0}, "weight of 'b' must be a positive number, not 0"),
        ({"a": 50, "b": -5}, "weight of 'b' must be a positive number, not -5"),
        ({"a": 50, "b": "half"}, "weight of 'b' must be a number, not 'half'"),
        ({"a": 50, "b": True}, "weight of 'b' must be a number, not True"),
        ({"a": 100}, "at least two branches"),
    ],
)
def test_bad_weights_are_refused_when_the_flow_is_defined(weights: dict[str, object], message: str) -> None:
    with pytest.raises(FlowDefinitionError, match=message):

        class Broken(Flow):
            pick = Split(weights=weights)  # type: ignore[arg-type]
            a = End()
            b = End()


def test_a_branch_that_is_not_a_step_is_refused_when_the_flow_is_defined() -> None:
    with pytest.raises(FlowDefinitionError, match="step 'pick' leads to unknown step 'c'"):

        class Broken(Flow):
            pick = Split(weights={"a": 50, "c": 50})
            a = End()
            b = End()


def test_the_graph_draws_each_branch_with_its_share() -> None:
    class Offer(Flow):
        offer = Split(weights={"discount": 3, "free_shipping": 1})
        discount = End()
        free_shipping = End()

    drawn = mermaid(graph_of(Offer))
    assert "offer --> discount: split 75 %: discount" in drawn
    assert "offer --> free_shipping: split 25 %: free_shipping" in drawn


async def test_customers_go_down_their_branch_and_the_conversation_says_which(
    skipping_env: WorkflowEnvironment,
) -> None:
    weights = Wording.steps["wording"].weights  # type: ignore[attr-defined]
    by_branch = {choose_branch(weights, "wording", "wording", c): c for c in customers(20)}
    events: list[LifecycleEvent] = []
    lifecycle.emit_to(events.append)
    try:
        for branch, customer in sorted(by_branch.items()):
            async with FlowTest(skipping_env, Wording, customer=customer) as chat:
                said = await chat.start({"order_id": f"A-{branch}"})
                assert said == [Wording.steps[branch].text]  # type: ignore[attr-defined]
                result = await chat.result()
                snapshot = await chat.settle()
                attributes = (await chat.handle.describe()).typed_search_attributes
            assert result.outcome == "completed"
            assert snapshot.data["split:wording"] == branch
            assert f"split wording: {branch} (50 %)" in [line.text for line in snapshot.trace]
            assert f"split:wording={branch}" in (attributes.get(DATA) or [])
            ended = [e for e in events if e.conversation == chat.ref.id and e.type == "conversation.ended"]
            assert [e.data for e in ended] == [{"order_id": f"A-{branch}", "split:wording": branch}]
    finally:
        lifecycle.emit_to(None)
    assert sorted(by_branch) == ["long", "short"]


async def test_a_journey_may_choose_the_branch() -> None:
    async with MemoryFlowTest(Wording) as chat:
        assert await chat.start({"order_id": "A-1", "split:wording": "long"}) == [Wording.long.text]
