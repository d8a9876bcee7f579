"""What an earlier chatflow left waiting under the old key names is found after an upgrade."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from chatflow.edge import keys
from chatflow.edge.digest import Digest
from chatflow.edge.renamed_keys import move_renamed_keys

CONVERSATION = "chat:sms:+15005550006:+14155550100"
JOURNEY = json.dumps({"flow": "payment_recovery", "to": "+14155550100", "from": "", "data": {}})


async def test_journeys_queued_and_digests_open_before_the_upgrade_are_under_todays_names(redis: Redis) -> None:
    now = datetime.now(UTC)
    member = json.dumps(["digest_flow", "+14155550100", "+15005550006"])
    # As the earlier version wrote them.
    await redis.sadd("chatflow:queued", CONVERSATION)
    await redis.rpush(f"chatflow:queued:{CONVERSATION}", JOURNEY)
    await redis.zadd("chatflow:digest:due", {member: int((now - timedelta(seconds=1)).timestamp() * 1000)})
    await redis.rpush(f"chatflow:digest:window:{member}", json.dumps({"item": "shoes"}))

    assert await move_renamed_keys(redis) == 4

    assert await redis.smembers(keys.queued_index()) == {CONVERSATION}
    assert await redis.lrange(keys.queued_journeys(CONVERSATION), 0, -1) == [JOURNEY]
    [batch] = await Digest(redis, timedelta(0)).closed(now)
    assert (batch.name, batch.events) == ("digest_flow", [{"item": "shoes"}])
    assert [key async for key in redis.scan_iter(match="chatflow:queued*")] == []
    assert await move_renamed_keys(redis) == 0  # every start looks again; nothing left to move


async def test_an_old_name_written_beside_the_new_one_is_merged_in_order(redis: Redis) -> None:
    # A web process of the earlier version still running during a rolling deploy.
    later = json.dumps({"flow": "survey", "to": "+14155550100", "from": "", "data": {}})
    await redis.rpush(keys.queued_journeys(CONVERSATION), JOURNEY)
    await redis.sadd(keys.queued_index(), CONVERSATION)
    await redis.rpush(f"chatflow:queued:{CONVERSATION}", later)
    await redis.sadd("chatflow:queued", "chat:sms:+15005550006:+14155550199")

    assert await move_renamed_keys(redis) == 2

    assert await redis.lrange(keys.queued_journeys(CONVERSATION), 0, -1) == [JOURNEY, later]
    assert await redis.smembers(keys.queued_index()) == {CONVERSATION, "chat:sms:+15005550006:+14155550199"}
