import asyncio
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Say
from chatflow.domain.messages import InboundMessage, Media
from chatflow.domain.tasks import stop_tasks
from chatflow.edge import keys
from chatflow.edge.buffer import PARTITIONS, BufferBarrier, BufferedDelivery, Forwarder, decode, encode, partition_of
from chatflow.runtime.binaries import temporal_cli
from chatflow.temporal.worker import build_worker
from providers.console import ConsoleChannel, Outbox
from tests.flows import FLOWS
from tests.helpers import new_customer, stream_entries
from tests.ports import lasting_port

NUMBER = "+15005550006"


async def start_temporal(port: int, db: Path) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), port=port, dev_server_database_filename=str(db)
    )


def message(customer: str, text: str, id: str) -> InboundMessage:
    return InboundMessage(id=id, channel="sms", provider="console", customer=customer, number=NUMBER, text=text)


def test_a_buffered_message_comes_back_as_it_went_in() -> None:
    original = InboundMessage(
        id="wamid.1",
        channel="whatsapp",
        provider="whatsapp_cloud",
        customer="+14155550100",
        number=NUMBER,
        text="hi",
        media=[Media("https://x/y.jpg", "image/jpeg")],
        payload="b1",
    )
    assert decode(encode(original, "demo")) == (original, "demo")


async def test_a_repeated_message_is_buffered_once(redis: Redis) -> None:
    buffer = BufferedDelivery(redis, partitions=1)
    await buffer(message("+14155550100", "hi", "SM-a"), "parrot")
    await buffer(message("+14155550100", "hi", "SM-a"), "parrot")
    assert await redis.xlen(keys.inbox(0)) == 1


async def wait_for(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_messages_sent_while_temporal_is_down_are_all_handled_once_in_order(redis: Redis, tmp_path: Path) -> None:
    port, db = lasting_port(), tmp_path / "temporal.db"  # Temporal is started again on it
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
            await wait_for(lambda: all(len(outbox.sent[c]) >= len(expected[c]) for c in customers))
            await asyncio.sleep(0.5)  # a duplicate, had one slipped through, would show by now
            said = {c: [m.text for m in outbox.sent[c]] for c in customers}
        assert said == expected
        assert [await redis.xlen(keys.inbox(p)) for p in range(4)] == [0] * 4
    finally:
        # Stopped for sure: a forwarder left running would keep its partitions' leases and
        # forward later tests' messages to this test's task queue.
        await stop_tasks([forwarder])
        await env.shutdown()


# -- nothing twice, nothing wedged: the forwarder's crash windows and leases --------------------


class Once(Flow):
    """Ends as soon as it has answered the message that started it."""

    thanks = Say("Thanks, noted.")
    done = End("completed")


class DiesAfterTemporalTakesIt:
    """The forwarder's Temporal client, killing its forwarder (cancelling its task, so no more of
    its code runs) the moment Temporal has taken a message: before the forwarder can delete it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.forwarder: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        await self.client.start_workflow(*args, **kwargs)
        assert self.forwarder is not None
        self.forwarder.cancel()
        await asyncio.Event().wait()  # the cancellation lands here


async def test_a_message_taken_before_its_forwarder_died_does_not_start_a_new_conversation(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    client, task_queue, customer = dev_env.client, f"once-{uuid.uuid4().hex}", new_customer()
    outbox = Outbox()
    hello = message(customer, "hello", f"SM-{uuid.uuid4().hex}")
    conversation = hello.conversation.id
    async with build_worker(client, [Once], {"console": ConsoleChannel(outbox)}, task_queue=task_queue):
        await BufferedDelivery(redis, partitions=1)(hello, "once")

        dying = DiesAfterTemporalTakesIt(client)
        first = dying.forwarder = asyncio.create_task(
            # The wrapper stands in for the client (the forwarder calls start_workflow alone).
            Forwarder(redis, cast(Client, dying), partitions=1, task_queue=task_queue).run()
        )
        await asyncio.wait({first}, timeout=30)
        assert first.done()
        assert await redis.xlen(keys.inbox(0)) == 1  # Temporal has it; the buffer still has it too

        # The conversation it started answers and ends before anyone forwards again.
        run = await client.get_workflow_handle(conversation).describe()
        assert (await client.get_workflow_handle(conversation, run_id=run.run_id).result())["outcome"] == "completed"
        assert outbox.sent[customer][0].text == "Thanks, noted."

        second = asyncio.create_task(Forwarder(redis, client, partitions=1, task_queue=task_queue).run())
        try:
            await wait_for_async(lambda: redis.xlen(keys.inbox(0)), 0, timeout=30)
            await asyncio.sleep(1.0)  # a new conversation, had one been started, would have answered by now
        finally:
            await stop_tasks([second])
    assert [m.text for m in outbox.sent[customer]] == ["Thanks, noted."]
    assert (await client.get_workflow_handle(conversation).describe()).run_id == run.run_id  # no new run


async def owners(redis: Redis, partitions: int) -> list[str | None]:
    return [cast(str | None, await redis.get(keys.inbox_owner(p))) for p in range(partitions)]


async def wait_for_async(read: Callable[[], Awaitable[object]], expected: object, timeout: float) -> float:
    """Seconds until `await read()` == `expected` (AssertionError after `timeout`)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (value := await read()) != expected:
        assert loop.time() - started < timeout, f"still {value!r} after {timeout} s, not {expected!r}"
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_a_stopped_forwarder_hands_its_partitions_over_at_once(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    task_queue, partitions = f"lease-{uuid.uuid4().hex}", 4
    before = asyncio.all_tasks()
    first = asyncio.create_task(Forwarder(redis, dev_env.client, partitions=partitions, task_queue=task_queue).run())
    second: asyncio.Task[None] | None = None
    try:
        await wait_for_async(lambda: redis.exists(*[keys.inbox_owner(p) for p in range(partitions)]), partitions, 10)
        held_by_first = set(await owners(redis, partitions))
        of_first = asyncio.all_tasks() - before  # its partitions' tasks
        second = asyncio.create_task(
            Forwarder(redis, dev_env.client, partitions=partitions, task_queue=task_queue).run()
        )
        await asyncio.sleep(0.5)
        assert set(await owners(redis, partitions)) == held_by_first  # the first still holds them

        await stop_tasks([first])  # as the web app's lifespan stops it
        assert all(task.done() for task in of_first)  # none forwards on, unseen

        async def all_moved() -> bool:
            now = await owners(redis, partitions)
            return None not in now and not set(now) & held_by_first

        took = await wait_for_async(all_moved, True, timeout=30)
        print(f"partitions of a stopped forwarder taken over in {took:.2f} s")
        assert took < 1.0, f"handed over in {took:.2f} s"
    finally:
        await stop_tasks([first] + ([second] if second else []))


async def test_a_live_forwarder_keeps_its_partitions_from_another_past_its_lease(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    task_queue, partitions = f"lease-{uuid.uuid4().hex}", 4

    def short_leased() -> Forwarder:
        return Forwarder(
            redis,
            dev_env.client,
            partitions=partitions,
            task_queue=task_queue,
            lease=timedelta(seconds=0.6),
            renew_every=timedelta(seconds=0.2),
            acquire_every=timedelta(seconds=0.05),
        )

    first = asyncio.create_task(short_leased().run())
    second: asyncio.Task[None] | None = None
    try:
        await wait_for_async(lambda: redis.exists(*[keys.inbox_owner(p) for p in range(partitions)]), partitions, 10)
        held_by_first = set(await owners(redis, partitions))
        second = asyncio.create_task(short_leased().run())
        await asyncio.sleep(3.0)  # five leases: unrenewed, they would have gone to the second
        assert set(await owners(redis, partitions)) == held_by_first
    finally:
        await stop_tasks([first] + ([second] if second else []))


async def test_the_partitions_of_a_killed_forwarder_move_on_within_two_seconds(
    dev_env: WorkflowEnvironment, redis: Redis, redis_url: str
) -> None:
    task_queue, partitions = f"lease-{uuid.uuid4().hex}", 4
    address = dev_env.client.service_client.config.target_host
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.chatflow.edge.forwarder_process", address, redis_url, task_queue, str(partitions)]
    )
    second: asyncio.Task[None] | None = None
    try:
        await wait_for_async(lambda: redis.exists(*[keys.inbox_owner(p) for p in range(partitions)]), partitions, 30)
        held_by_first = set(await owners(redis, partitions))
        second = asyncio.create_task(
            Forwarder(redis, dev_env.client, partitions=partitions, task_queue=task_queue).run()
        )
        await asyncio.sleep(1.0)
        assert set(await owners(redis, partitions)) == held_by_first  # it renews them while alive

        process.kill()  # SIGKILL: nothing of it runs any more
        await asyncio.get_running_loop().run_in_executor(None, process.wait)
        # A message for it arrives meanwhile: forwarded once the partition has moved.
        hello = message(new_customer(), "hello", f"SM-{uuid.uuid4().hex}")
        await BufferedDelivery(redis, partitions=partitions)(hello, "parrot")

        async def all_moved() -> bool:
            now = await owners(redis, partitions)
            return None not in now and not set(now) & held_by_first

        took = await wait_for_async(all_moved, True, timeout=30)
        print(f"partitions of a killed forwarder taken over in {took:.2f} s")
        assert took < 2.5, f"taken over in {took:.2f} s"
        await wait_for_async(lambda: redis.xlen(keys.inbox(partition_of(hello.conversation.id, partitions))), 0, 10)
    finally:
        process.kill()
        process.wait()
        if second is not None:
            await stop_tasks([second])


# -- the barrier a conversation waits at after a Redis outage -------------------------------------


async def test_the_barrier_waits_for_what_the_buffer_held_of_the_conversation_and_no_longer(redis: Redis) -> None:
    customer = new_customer()
    conversation = message(customer, "x", "SM-x").conversation.id
    barrier = BufferBarrier(redis, partitions=PARTITIONS)
    await asyncio.wait_for(barrier.drained(conversation), 5)  # nothing held: at once

    await BufferedDelivery(redis)(message(customer, "older", f"SM-{uuid.uuid4().hex}"), "parrot")
    stream = keys.inbox(partition_of(conversation))
    [(entry, _)] = await stream_entries(redis, stream)
    waiting = asyncio.create_task(barrier.drained(conversation))
    await asyncio.sleep(0.6)
    assert not waiting.done()  # the older message is still to be handed on
    # Buffered after the barrier began: not waited for (only what came before can be overtaken).
    await BufferedDelivery(redis)(message(customer, "newer", f"SM-{uuid.uuid4().hex}"), "parrot")
    await redis.xdel(stream, entry)  # the forwarder hands the older one on
    await asyncio.wait_for(waiting, 5)
    assert await redis.xlen(stream) == 1
    await redis.delete(stream)
