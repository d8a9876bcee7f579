"""Record the conversation histories that the replay check replays.

    python -m tests.histories.record

Run it when a flow changes on purpose under a new version, or the workflow code under a new
revision (`chatflow.temporal.constants.REVISION`), and commit the new files beside the old ones:
old histories must keep replaying for as long as conversations on them may run. Files without a
revision in their name predate revisions and local sends; `-revision0` ones were recorded by the
code just before revision 1.
"""

import asyncio
from pathlib import Path

import respx

from chatflow import hours
from chatflow.temporal.constants import REVISION
from chatflow.temporal.replay import record
from chatflow.testing import FlowTest, time_skipping
from conversations.demo import Demo
from conversations.payment_recovery import SHOP_API, PaymentRecovery

HERE = Path(__file__).parent


async def main() -> None:
    async with time_skipping() as env:
        async with FlowTest(env, Demo) as chat:
            for text in ("hello", "1", "3"):
                await chat.send(text)
            await chat.take_over()
            await chat.deliver("are you there?")  # unanswered, handed on to the menu at hand-back
            await chat.hand_back()
            for text in ("2", "A-1234", "bye"):
                await chat.send(text)
            await chat.result()
            await record(chat.handle, HERE / f"demo-v{Demo.version}-revision{REVISION}.json")

        with respx.mock(base_url=SHOP_API) as shop:
            shop.get("/customers/c-1").respond(json={"id": "c-1", "tier": "regular"})
            async with FlowTest(env, PaymentRecovery) as chat:
                journey = {"customer_id": "c-1", "order_id": "A-1", "payment_link": "https://pay.example/A-1"}
                await chat.start({**journey, "email": "c-1@example.com"})
                await chat.skip(hours(25))
                await chat.event("payment_succeeded", {"amount": 42})
                await chat.result()
                await record(chat.handle, HERE / f"payment_recovery-v{PaymentRecovery.version}-revision{REVISION}.json")


if __name__ == "__main__":
    asyncio.run(main())
