import asyncio

import pytest
from redis.asyncio import Redis

from chatflow.domain.messages import Option, OutboundMessage
from providers.base import PermanentSendError
from providers.console import LATEST, ConsoleOutbox, ConsoleProvider, Outbox, RedisOutbox

CUSTOMER = "+14155550100"


def message(text: str, options: list[Option] | None = None) -> OutboundMessage:
    return OutboundMessage("console", "console", "+15005550006", CUSTOMER, text, options=options or [])


@pytest.fixture(params=["memory", "redis"])
async def outbox(request: pytest.FixtureRequest) -> ConsoleOutbox:
    if request.param == "memory":
        yield Outbox()
        return
    redis = Redis.from_url(request.getfixturevalue("valkey_url"))
    yield RedisOutbox(redis)
    await redis.aclose()


async def test_reads_in_order_from_a_cursor_and_renders_choices(outbox: ConsoleOutbox) -> None:
    provider = ConsoleProvider(outbox)
    await provider.send(message("Hi"))
    await provider.send(message("Pick one", [Option("1", "Yes"), Option("2", "No")]))
    lines, cursor = await outbox.read(CUSTOMER)
    assert [line.text for line in lines] == ["Hi", "Pick one\n\n1. Yes\n2. No"]
    assert lines[1].options == ["Yes", "No"]
    assert lines[-1].cursor == cursor
    assert await outbox.read(CUSTOMER, cursor) == ([], cursor)
    await provider.send(message("Bye"))
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
    provider = ConsoleProvider(Outbox())
    await provider.send(message("Hi"))
    assert [m.text for m in provider.outbox.sent[CUSTOMER]] == ["Hi"]  # type: ignore[attr-defined]


async def test_blocked_customers_fail_permanently() -> None:
    provider = ConsoleProvider(blocked={CUSTOMER})
    with pytest.raises(PermanentSendError):
        await provider.send(message("Hi"))
