import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from chatflow.domain.addresses import ID_KEY
from chatflow.edge.digest import Digest, DigestBatch

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NUMBER = "+15005550006"


async def test_events_within_a_window_become_one_batch(redis: Redis) -> None:
    digest = Digest(redis, timedelta(minutes=10))
    assert await digest.add("order_updates", "+14155550100", NUMBER, {"item": "socks"}, T0) == 1
    await digest.add("order_updates", "+14155550100", NUMBER, {"item": "hat"}, T0 + timedelta(minutes=4))
    await digest.add("order_updates", "+14155550101", NUMBER, {"item": "scarf"}, T0 + timedelta(minutes=5))
    assert await digest.closed(T0 + timedelta(minutes=9)) == []
    batches = await digest.closed(T0 + timedelta(minutes=10))
    assert batches == [DigestBatch("order_updates", "+14155550100", NUMBER, [{"item": "socks"}, {"item": "hat"}])]
    assert await digest.closed(T0 + timedelta(minutes=10)) == []  # taken once
    # An event after the window closed opens a new one.
    await digest.add("order_updates", "+14155550100", NUMBER, {"item": "gloves"}, T0 + timedelta(minutes=11))
    later = await digest.closed(T0 + timedelta(minutes=30))
    assert sorted((b.customer, len(b.events)) for b in later) == [("+14155550100", 1), ("+14155550101", 1)]


async def test_a_failed_flush_puts_the_events_back(redis: Redis) -> None:
    digest = Digest(redis, timedelta(minutes=10))
    await digest.add("d", "+14155550100", NUMBER, {"n": 1}, T0)
    [batch] = await digest.closed(T0 + timedelta(minutes=10))
    await digest.put_back(batch, T0 + timedelta(minutes=10))
    assert await digest.closed(T0 + timedelta(minutes=10)) == [batch]


async def test_with_an_id_key_no_key_name_holds_the_customer_and_the_batch_still_does(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ID_KEY, base64.b64encode(os.urandom(32)).decode())
    digest = Digest(redis, timedelta(minutes=10))
    await digest.add("order_updates", "+14155550100", NUMBER, {"item": "socks"}, T0)
    assert await digest.add("order_updates", "+14155550100", NUMBER, {"item": "hat"}, T0) == 2
    names = [name async for name in redis.scan_iter("*")]
    assert names and not [name for name in names if "4155550100" in str(name)]
    batches = await digest.closed(T0 + timedelta(minutes=10))
    assert batches == [DigestBatch("order_updates", "+14155550100", NUMBER, [{"item": "socks"}, {"item": "hat"}])]
    assert [name async for name in redis.scan_iter("*")] == []  # the window's list went with it
