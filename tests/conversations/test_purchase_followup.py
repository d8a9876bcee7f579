from temporalio.testing import WorkflowEnvironment

from chatflow import hours
from chatflow.testing import FlowTest
from conversations.purchase_followup import PurchaseFollowup

PURCHASE = {"name": "Ana", "product": "the blue kettle", "opted_in": True}


async def test_waits_then_thanks_and_asks_for_a_rating(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PurchaseFollowup) as chat:
        assert await chat.start(PURCHASE) == []  # nothing before the delay
        assert await chat.skip(hours(2.1)) == [
            "Thanks for buying the blue kettle, Ana!",
            "How would you rate it, from 1 (poor) to 5 (great)?",
        ]
        assert await chat.send("5 stars!") == [
            "Wonderful, thank you! Tell a friend: they get 10% off with code FRIEND10."
        ]
        result = await chat.result()
    assert result.data["rating"] == 5


async def test_low_rating_asks_what_went_wrong(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PurchaseFollowup) as chat:
        await chat.start(PURCHASE)
        await chat.skip(hours(3))
        assert await chat.send("7") == ["Please reply with a number from 1 to 5."]
        assert await chat.send("2") == ["Sorry it wasn't great. What went wrong?"]
        assert await chat.send("It arrived dented") == [
            "Thank you for telling us. Someone from our team will get back to you."
        ]
        result = await chat.result()
    assert result.data == {**PURCHASE, "rating": 2, "feedback": "It arrived dented"}


async def test_customers_who_did_not_opt_in_get_nothing(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, PurchaseFollowup) as chat:
        await chat.start({**PURCHASE, "opted_in": False})
        assert await chat.skip(hours(3)) == []
        result = await chat.result()
    assert result.outcome == "cancelled"
    assert chat.said == []
