"""A worker process for the multi-process tests: `chatflow worker`'s own, built by `Services`
(the send activity guarded by the edge's opt-out check and shared rate limit).

    python -m tests.chatflow.edge.edge_worker TEMPORAL_ADDRESS REDIS_URL TASK_QUEUE NUMBER RATE

The number is bound to the console channel, which here records every send in the Redis list
`sent` as "unix time|pid|customer", at the moment it is called, so the test can check pacing
across processes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import OutboundMessage, SendResult
from chatflow.runtime.services import Services
from tests.flows import FLOWS
from tests.helpers import RecordingChannel


class RecordingInRedis(RecordingChannel):
    def __init__(self, redis: Redis) -> None:
        super().__init__(name="console")
        self.redis = redis

    async def send(self, message: OutboundMessage) -> SendResult:
        at = time.time()
        await self.redis.rpush("sent", f"{at!r}|{os.getpid()}|{message.customer}")
        await super().send(message)
        return SendResult(message_id=f"rec-{at!r}", status="sent")


async def main(address: str, redis_url: str, task_queue: str, number: str, rate: str) -> None:
    binding = NumberBinding(
        address=Address("tel", number), provider="console", channel="sms", flow="burst", rate=float(rate)
    )
    config = Config(
        numbers=[binding], flow_modules=[], settings=Settings(temporal_address=address, redis_url=redis_url)
    )
    services = await Services.start(config, FLOWS, task_queue=task_queue)
    services.channels["console"] = RecordingInRedis(services.redis)
    worker, _ = services.worker()
    async with worker:
        await services.redis.rpush("ready", str(os.getpid()))
        await asyncio.Event().wait()  # until the test terminates the process


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
