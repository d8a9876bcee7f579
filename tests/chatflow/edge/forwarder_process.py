"""A forwarder in a process of its own, for the test that kills one (SIGKILL: no clean-up runs).

python -m tests.chatflow.edge.forwarder_process TEMPORAL_ADDRESS REDIS_URL TASK_QUEUE PARTITIONS
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client

from chatflow.edge.buffer import Forwarder
from chatflow.runtime.services import connect_redis


async def main(address: str, redis_url: str, task_queue: str, partitions: str) -> None:
    client = await Client.connect(address)
    redis = connect_redis(redis_url)
    await Forwarder(redis, client, partitions=int(partitions), task_queue=task_queue).run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
