"""A worker process for the multi-process tests: the real send activity, guarded by the edge.

    python -m tests.chatflow.edge.edge_worker TEMPORAL_ADDRESS REDIS_URL TASK_QUEUE NUMBER RATE

Every send is recorded in the Redis list `sent` as "unix time|pid|customer", at the moment the
provider is called, so the test can check pacing across processes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from redis.asyncio import Redis
from temporalio.client import Client

from chatflow.domain.config import NumberBinding
from chatflow.edge.optout import OptOuts
from chatflow.edge.rate_limit import RateLimiter, SenderRates
from chatflow.edge.send_guard import SendGuard
from chatflow.domain.messages import OutboundMessage, SendResult
from tests.chatflow.edge.flows import FLOWS
from tests.chatflow.edge.workers import guarded_worker


class RecordingProvider:
    name = "console"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def send(self, message: OutboundMessage) -> SendResult:
        at = time.time()
        await self.redis.rpush("sent", f"{at!r}|{os.getpid()}|{message.customer}")
        return SendResult(message_id=f"rec-{at!r}", status="sent")


async def main(address: str, redis_url: str, task_queue: str, number: str, rate: str) -> None:
    redis = Redis.from_url(redis_url, decode_responses=True)
    client = await Client.connect(address)
    binding = NumberBinding(number=number, provider="console", channel="sms", flow="burst", rate=float(rate))
    guard = SendGuard(OptOuts(redis), RateLimiter(redis), SenderRates([binding]))
    worker = guarded_worker(client, FLOWS, {"console": RecordingProvider(redis)}, guard, task_queue)
    async with worker:
        await redis.rpush("ready", str(os.getpid()))
        await asyncio.Event().wait()  # until the test terminates the process


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
