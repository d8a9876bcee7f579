"""The send ledger on Redis: a claim per attempt, the provider's result once it took the message."""

from datetime import timedelta

from redis.asyncio import Redis

from chatflow.domain.messages import SendResult
from chatflow.edge import keys
from chatflow.edge.ledger import SENT_TTL, SendLedger

KEY = "sms:+15005550006:+14155550100/run-1/activity-3"


async def test_a_first_claim_knows_nothing_of_the_send(redis: Redis) -> None:
    claim = await SendLedger(redis).claim(KEY)
    assert (claim.sent, claim.unknown) == (None, False)
    assert await redis.ttl(keys.sent(KEY)) > 0  # a dead attempt's claim does not stay forever


async def test_a_send_the_provider_took_is_returned_to_every_later_attempt(redis: Redis) -> None:
    ledger = SendLedger(redis)
    await ledger.claim(KEY)
    await ledger.record(KEY, SendResult("SM1", "queued", segments=2))
    assert (await ledger.claim(KEY)).sent == SendResult("SM1", "queued", segments=2)
    assert (await ledger.claim(KEY)).sent == SendResult("SM1", "queued", segments=2)  # a claim never hides it
    assert timedelta(days=2) < timedelta(seconds=await redis.ttl(keys.sent(KEY))) <= SENT_TTL


async def test_a_claim_without_a_result_is_an_attempt_that_ended_without_knowing(redis: Redis) -> None:
    ledger = SendLedger(redis)
    await ledger.claim(KEY)  # the attempt died during the provider call
    later = await ledger.claim(KEY)
    assert (later.sent, later.unknown) == (None, True)
    assert (await ledger.claim(KEY)).unknown  # still unknown for the attempt after that


async def test_a_released_claim_makes_the_next_attempt_a_plain_send(redis: Redis) -> None:
    ledger = SendLedger(redis)
    claim = await ledger.claim(KEY)
    await ledger.release(KEY, claim)  # the provider refused it
    assert (await ledger.claim(KEY)).unknown is False


async def test_a_release_touches_only_the_attempts_own_claim(redis: Redis) -> None:
    ledger = SendLedger(redis)
    stale = await ledger.claim(KEY)
    current = await ledger.claim(KEY)
    await ledger.release(KEY, stale)  # an earlier attempt, late: the current claim stays
    assert (await ledger.claim(KEY)).unknown
    await ledger.record(KEY, SendResult("SM1"))
    await ledger.release(KEY, current)  # never a recorded send
    assert (await ledger.claim(KEY)).sent == SendResult("SM1")


async def test_sends_are_kept_apart_by_their_keys(redis: Redis) -> None:
    ledger = SendLedger(redis)
    await ledger.claim(KEY)
    await ledger.record(KEY, SendResult("SM1"))
    other = await ledger.claim(KEY.replace("run-1", "run-2"))
    assert (other.sent, other.unknown) == (None, False)
