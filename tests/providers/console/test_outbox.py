"""The console's outbox, in memory and in Redis: what the bot sent, read by cursor and long-poll."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from chatflow.domain.errors import PermanentSendError
from chatflow.domain.messages import Media, Option, OutboundMessage
from providers.console import LATEST, ConsoleChannel, ConsoleOutbox, Outbox, RedisOutbox

CUSTOMER = "+14155550100"


def message(text: str, options: list[Option] | None = None) -> OutboundMessage:
    return OutboundMessage("console", "console", "+15005550006", CUSTOMER, text, options=options or [])


@pytest.fixture(params=["memory", "redis"])
def outbox(request: pytest.FixtureRequest) -> ConsoleOutbox:
    # Redis clients decode responses, as every client of chatflow's does.
    return Outbox() if request.param == "memory" else RedisOutbox(request.getfixturevalue("redis"))


async def test_reads_in_order_from_a_cursor_and_renders_choices(outbox: ConsoleOutbox) -> None:
    channel = ConsoleChannel(outbox)
    await channel.send(message("Hi"))
    await channel.send(message("Pick one", [Option("1", "Yes"), Option("2", "No")]))
    lines, cursor = await outbox.read(CUSTOMER)
    assert [line.text for line in lines] == ["Hi", "Pick one\n\n1. Yes\n2. No"]
    assert lines[1].options == ["Yes", "No"]
    assert lines[-1].cursor == cursor
    assert await outbox.read(CUSTOMER, cursor) == ([], cursor)
    await channel.send(message("Bye"))
    lines, _ = await outbox.read(CUSTOMER, cursor)
    assert [line.text for line in lines] == ["Bye"]
    assert await outbox.read("+14155550199") == ([], "0")


async def test_a_long_poll_returns_when_the_bot_speaks(outbox: ConsoleOutbox) -> None:
    _, cursor = await outbox.read(CUSTOMER, LATEST)
    reading = asyncio.create_task(outbox.read(CUSTOMER, cursor, wait=30))
    await asyncio.sleep(0.1)
    assert not reading.done()
    await outbox.put(message("Later"))
    lines, _ = await reading
    assert [line.text for line in lines] == ["Later"]


async def test_latest_skips_history(outbox: ConsoleOutbox) -> None:
    await outbox.put(message("Old"))
    _, cursor = await outbox.read(CUSTOMER, LATEST)
    await outbox.put(message("New"))
    lines, _ = await outbox.read(CUSTOMER, cursor)
    assert [line.text for line in lines] == ["New"]


async def test_a_cursor_it_never_gave_is_refused(outbox: ConsoleOutbox) -> None:
    with pytest.raises(ValueError):
        await outbox.read(CUSTOMER, "nonsense")


async def test_the_in_memory_outbox_keeps_the_harness_api() -> None:
    channel = ConsoleChannel(Outbox())
    await channel.send(message("Hi"))
    assert [m.text for m in channel.outbox.sent[CUSTOMER]] == ["Hi"]  # type: ignore[attr-defined]


async def test_blocked_customers_fail_permanently() -> None:
    channel = ConsoleChannel(blocked={CUSTOMER})
    with pytest.raises(PermanentSendError):
        await channel.send(message("Hi"))


async def test_a_message_comes_back_whole_from_redis(redis: Redis) -> None:
    outbox = RedisOutbox(redis)
    sent = OutboundMessage(
        "console",
        "console",
        "+15005550006",
        CUSTOMER,
        "Grüße 👋",
        options=[Option("a", "Yes", "sure")],
        media=[Media("https://cdn.example.com/1.png", "image/png")],
    )
    await outbox.put(sent)
    [line], cursor = await outbox.read(CUSTOMER)
    assert (line.text, line.options, line.number, line.cursor) == (
        "Grüße 👋\n\n1. Yes",
        ["Yes"],
        "+15005550006",
        cursor,
    )


async def test_every_key_the_redis_outbox_writes_expires(redis: Redis) -> None:
    outbox = RedisOutbox(redis, ttl=timedelta(hours=1))
    await outbox.admit(CUSTOMER)
    await outbox.put(message("Hi"))
    keys = await redis.keys("chatflow:console*")
    assert len(keys) == 2  # the customer's stream and who wrote lately
    for key in keys:
        assert 0 < await redis.ttl(key) <= 3600, key


@pytest.fixture(params=["memory", "redis"])
def three_customers(request: pytest.FixtureRequest) -> ConsoleOutbox:
    if request.param == "memory":
        return Outbox(max_customers=3)
    return RedisOutbox(request.getfixturevalue("redis"), max_customers=3)


async def test_at_most_max_customers_may_write(three_customers: ConsoleOutbox) -> None:
    outbox = three_customers
    customers = [f"+1415555{n:04d}" for n in range(5)]
    assert [await outbox.admit(c) for c in customers[:3]] == [0, 0, 0]
    refused = await outbox.admit(customers[3])
    assert 0 < refused <= 24 * 3600  # seconds until the oldest one's place is free
    assert await outbox.admit(customers[0]) == 0  # one who wrote before still may


async def test_a_waiting_reader_is_woken_by_a_message_put_by_another_process(redis: Redis, valkey_url: str) -> None:
    reader = RedisOutbox(redis)
    other = Redis.from_url(valkey_url, decode_responses=True)  # the worker's own client
    try:
        _, cursor = await reader.read(CUSTOMER, LATEST)
        reading = asyncio.create_task(reader.read(CUSTOMER, cursor, wait=30))
        while reader.waiting() == 0:
            await asyncio.sleep(0.01)
        await RedisOutbox(other).put(message("From the worker"))
        lines, _ = await reading
        assert [line.text for line in lines] == ["From the worker"]
        assert reader.waiting() == 0
    finally:
        await other.aclose()
