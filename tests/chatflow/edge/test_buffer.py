import asyncio
import uuid
from collections import defaultdict
from pathlib import Path

from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.messages import InboundMessage, Media
from chatflow.edge import keys
from chatflow.edge.buffer import BufferedDelivery, Forwarder, decode, encode
from chatflow.runtime.binaries import temporal_cli
from chatflow.runtime.processes import free_port
from chatflow.temporal.worker import build_worker
from providers.console import ConsoleChannel, Outbox
from tests.flows import FLOWS

NUMBER = "+15005550006"


async def start_temporal(port: int, db: Path) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), port=port, dev_server_database_filename=str(db)
    )


def message(customer: str, text: str, id: str) -> InboundMessage:
    return InboundMessage(id=id, channel="sms", provider="console", customer=customer, number=NUMBER, text=text)


def test_a_buffered_message_comes_back_as_it_went_in():
    original = InboundMessage(
        id="wamid.1", channel="whatsapp", provider="whatsapp_cloud", customer="+14155550100",
        number=NUMBER, text="hi", media=[Media("https://x/y.jpg", "image/jpeg")], payload="b1",
    )
    assert decode(encode(original, "demo")) == (original, "demo")


async def test_a_repeated_message_is_buffered_once(redis: Redis):
    buffer = BufferedDelivery(redis, partitions=1)
    await buffer(message("+14155550100", "hi", "SM-a"), "parrot")
    await buffer(message("+14155550100", "hi", "SM-a"), "parrot")
    assert await redis.xlen(keys.inbox(0)) == 1


async def wait_for(predicate, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_messages_sent_while_temporal_is_down_are_all_handled_once_in_order(redis: Redis, tmp_path: Path):
    port, db = free_port(), tmp_path / "temporal.db"
    task_queue = f"buffer-{uuid.uuid4().hex}"
    outbox = Outbox()
    channels = {"console": ConsoleChannel(outbox)}
    customers = [f"+1415555{i:04d}" for i in range(5)]
    buffer = BufferedDelivery(redis, partitions=4)

    env = await start_temporal(port, db)
    client = await Client.connect(f"127.0.0.1:{port}")
    forwarder = asyncio.create_task(Forwarder(redis, client, partitions=4, task_queue=task_queue).run())
    try:
        # One conversation is already running when Temporal goes away.
        async with build_worker(client, FLOWS, channels, task_queue=task_queue):
            await buffer(message(customers[0], "before", "SM-before"), "parrot")
            await wait_for(lambda: len(outbox.sent[customers[0]]) == 1)
        await env.shutdown()

        sent: dict[str, list[str]] = defaultdict(list)
        for n in range(10):
            for customer in customers:
                text = f"{customer[-1]}-{n}"
                await buffer(message(customer, text, f"SM-{customer}-{n}"), "parrot")
                sent[customer].append(text)
                if n % 3 == 0:  # the provider retries some webhooks
                    await buffer(message(customer, text, f"SM-{customer}-{n}"), "parrot")
        assert sum(len(texts) for texts in sent.values()) == 50

        env = await start_temporal(port, db)
        async with build_worker(client, FLOWS, channels, task_queue=task_queue):
            expected = {c: [f"got {t}" for t in sent[c]] for c in customers}
            expected[customers[0]].insert(0, "got before")
            await wait_for(
                lambda: all(len(outbox.sent[c]) >= len(expected[c]) for c in customers)
            )
            await asyncio.sleep(0.5)  # a duplicate, had one slipped through, would show by now
            said = {c: [m.text for m in outbox.sent[c]] for c in customers}
        assert said == expected
        assert [await redis.xlen(keys.inbox(p)) for p in range(4)] == [0] * 4
    finally:
        forwarder.cancel()
        await env.shutdown()
