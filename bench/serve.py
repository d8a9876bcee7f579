"""The processes the bench starts: `python -m bench.serve worker|app ...`.

The worker and the web app each get a process (and an event loop) of their own, as in
production, so the load generator and the fake provider in the bench process do not slow them,
and the worker's memory can be read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import httpx
import uvicorn
from temporalio.client import Client

from bench.config import TASK_QUEUE, bench_config
from chatflow.temporal import client as dispatch
from chatflow.web.app import create_app
from chatflow.domain.messages import InboundMessage
from chatflow.temporal.worker import build_worker
from conversations.demo import Demo
from providers import build_providers

READY = "ready"


async def run_worker(address: str, api_url: str, max_cached: int) -> None:
    client = await Client.connect(address)
    config = bench_config(api_url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # A pool as large as the worker's activity slots: the fake provider is local and fast.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(limits=limits) as http:
        worker = build_worker(
            client, [Demo], build_providers(config, http), task_queue=TASK_QUEUE, max_cached_workflows=max_cached
        )
        async with worker:
            print(READY, flush=True)
            await stop.wait()


async def run_app(address: str, api_url: str, port: int, history_limit: int) -> None:
    client = await Client.connect(address)
    url = f"http://127.0.0.1:{port}"
    config = bench_config(api_url, public_url=url)

    async def deliver(message: InboundMessage, flow: str) -> None:
        await dispatch.deliver(client, message, flow, task_queue=TASK_QUEUE, history_limit=history_limit)

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, client, deliver=deliver),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=4096,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    print(READY, flush=True)
    await serving  # uvicorn exits on SIGTERM by itself


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.serve")
    parser.add_argument("role", choices=["worker", "app"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--history-limit", type=int, default=0)
    parser.add_argument("--max-cached", type=int, default=10_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.role == "worker":
        asyncio.run(run_worker(args.address, args.api_url, args.max_cached))
    else:
        asyncio.run(run_app(args.address, args.api_url, args.port, args.history_limit))


if __name__ == "__main__":
    main()
