"""Nothing wedges: a buffered message Temporal cannot take is put aside (the dead letters), shown,
and can be retried, without blocking the messages behind it or reaching a conversation twice."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Say
from chatflow.domain.errors import Invalid, NotFound
from chatflow.domain.messages import InboundMessage
from chatflow.domain.tasks import stop_tasks
from chatflow.edge import keys
from chatflow.edge.buffer import BufferedDelivery, Forwarder, encode
from chatflow.edge.dead_letters import list_dead_letters, retry_dead_letter
from chatflow.edge.delivery import MAX_MESSAGE_BYTES
from chatflow.temporal.worker import build_worker
from providers.console import ConsoleChannel, Outbox
from tests.helpers import new_customer, stream_add

NUMBER = "+15005550006"


def message(customer: str, text: str) -> InboundMessage:
    return InboundMessage(
        id=f"SM-{uuid.uuid4().hex}", channel="sms", provider="console", customer=customer, number=NUMBER, text=text
    )


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


class Noted(Flow):
    thanks = Say("Noted.")
    done = End("completed")


async def test_messages_temporal_cannot_take_are_put_aside_and_the_next_one_moves(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    client, task_queue = dev_env.client, f"dead-{uuid.uuid4().hex}"
    # Buffered by an older version, or by a channel with a bigger body limit: Temporal answers
    # RESOURCE_EXHAUSTED for 5 MB (gRPC's limit), which looks like "try later" and was retried for ever.
    huge = message(new_customer(), "a" * 5_000_000)
    # A conversation id over Temporal's length limit: INVALID_ARGUMENT, every time.
    refused = message("+1" + "5" * 1200, "hi")
    behind = message(new_customer(), "still here")
    stream = keys.inbox(0)
    await redis.xadd(stream, {"m": encode(huge, "parrot")})
    await redis.xadd(stream, {"m": encode(refused, "parrot")})
    await BufferedDelivery(redis, partitions=1)(behind, "parrot")

    counted: list[str] = []
    forwarder = asyncio.create_task(
        Forwarder(redis, client, partitions=1, task_queue=task_queue, on_dead_letter=counted.append).run()
    )
    try:

        async def drained() -> bool:
            return await redis.xlen(stream) == 0

        await wait_until(drained)
    finally:
        await stop_tasks([forwarder])

    assert (await client.get_workflow_handle(behind.conversation.id).describe()).run_id  # it moved on
    letters = await list_dead_letters(redis)
    assert [(d.message_id, d.kind) for d in letters] == [(huge.id, "too_large"), (refused.id, "refused")]
    assert f"over the {MAX_MESSAGE_BYTES}-byte limit" in letters[0].reason
    assert "INVALID_ARGUMENT" in letters[1].reason
    for letter in letters:
        at = datetime.fromisoformat(letter.at)
        assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert counted == ["too_large", "refused"]
    with pytest.raises(Invalid):
        await retry_dead_letter(redis, letters[0].id)  # too large: retrying cannot help


async def test_a_dead_letter_retried_twice_reaches_its_conversation_once(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    client, task_queue, customer = dev_env.client, f"dead-{uuid.uuid4().hex}", new_customer()
    hello = message(customer, "hello")
    # The same dead letter twice: a retry that crashed between re-buffering and deleting it, or
    # two operators pressing retry. Either copy may reach Temporal; the conversation ends at once.
    fields = {"m": encode(hello, "noted"), "reason": "Temporal refused it", "kind": "refused", "partition": "0"}
    first = await stream_add(redis, keys.inbox_dead(), fields)
    second = await stream_add(redis, keys.inbox_dead(), fields)
    assert [d.id for d in await list_dead_letters(redis)] == [first, second]

    outbox = Outbox()
    async with build_worker(client, [Noted], {"console": ConsoleChannel(outbox)}, task_queue=task_queue):
        forwarder = asyncio.create_task(Forwarder(redis, client, partitions=1, task_queue=task_queue).run())
        try:
            await retry_dead_letter(redis, first, partitions=1)
            handle = client.get_workflow_handle(hello.conversation.id)

            async def ended() -> bool:
                try:
                    return (await handle.describe()).close_time is not None
                except Exception:  # noqa: BLE001 - not started yet
                    return False

            await wait_until(ended)
            run = (await handle.describe()).run_id
            await retry_dead_letter(redis, second, partitions=1)

            async def drained() -> bool:
                return await redis.xlen(keys.inbox(0)) == 0

            await wait_until(drained)
            await asyncio.sleep(1.0)  # a second conversation, had one started, would have answered by now
        finally:
            await stop_tasks([forwarder])
    assert [m.text for m in outbox.sent[customer]] == ["Noted."]
    assert (await handle.describe()).run_id == run
    assert await list_dead_letters(redis) == []
    with pytest.raises(NotFound):
        await retry_dead_letter(redis, first)
    with pytest.raises(NotFound):
        await retry_dead_letter(redis, "not-an-id")


@pytest.mark.parametrize("id", ["²", "1-²", "99999999999999999999999-0", "1-", "-1", "x"])
async def test_an_id_redis_would_not_take_is_no_dead_letter(redis: Redis, id: str) -> None:
    with pytest.raises(NotFound, match="no dead letter"):
        await retry_dead_letter(redis, id)
