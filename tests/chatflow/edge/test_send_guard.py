from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import OutboundMessage, SendResult
from chatflow.edge.optout import OptOuts
from chatflow.edge.rate_limit import RateLimiter, SenderRates
from chatflow.edge.send_guard import SendGuard, priority_of

NUMBER, CUSTOMER = "+15005550006", "+14155550100"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def outbound(last_inbound_at: str = "") -> OutboundMessage:
    return OutboundMessage("sms", "twilio", NUMBER, CUSTOMER, "hi", last_inbound_at=last_inbound_at)


def test_a_message_soon_after_the_customer_wrote_is_a_reply() -> None:
    assert priority_of(outbound((NOW - timedelta(minutes=2)).isoformat()), NOW) == "reply"
    assert priority_of(outbound((NOW - timedelta(hours=2)).isoformat()), NOW) == "bulk"
    assert priority_of(outbound(), NOW) == "bulk"


async def test_an_opted_out_customer_is_refused_permanently(redis: Redis) -> None:
    await OptOuts(redis).opt_out(Address("tel", NUMBER), Address("tel", CUSTOMER))
    with pytest.raises(PermanentSendError) as refused:
        await SendGuard(OptOuts(redis)).before_send(outbound())
    assert refused.value.code == "opted_out"


async def test_a_sender_over_its_rate_asks_temporal_to_retry_later(redis: Redis) -> None:
    rates = SenderRates([NumberBinding(Address("tel", NUMBER), "twilio", "sms", "demo", rate=0.01)])  # one per 100 s
    guard = SendGuard(OptOuts(redis), RateLimiter(redis), rates, max_wait=1.0)
    await guard.before_send(outbound())
    with pytest.raises(RetryableSendError) as limited:
        await guard.before_send(outbound())
    retry_after = limited.value.retry_after
    assert limited.value.code == "rate_limited" and retry_after is not None and retry_after > 1


async def test_a_failing_watcher_does_not_fail_a_send_the_provider_accepted() -> None:
    async def broken(message: OutboundMessage, result: SendResult) -> None:
        raise ConnectionError("redis is down")

    await SendGuard(watchers=[broken]).after_send(outbound(), SendResult("SM1"))
