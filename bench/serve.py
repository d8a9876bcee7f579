"""The processes the bench starts: `python -m bench.serve worker|app|floor|webhooks ...`.

Both come from `chatflow.runtime.services.Services`, the wiring `chatflow web` and `chatflow
worker` run on, so what is measured is what users run: the app's webhooks go through the Redis
edge (opt-out, dedupe, the buffer and its forwarder, started in the app's lifespan) and the
worker's sends through the send guard (opt-out, rate limit).

The worker and the web app each get a process (and an event loop) of their own, as in
production, so the load generator and the fake provider in the bench process do not slow them,
and the worker's memory can be read from /proc. The baseline (`bench.baseline`) gets the same:
`baseline-worker` and `baseline-app`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Literal

import uvicorn
from temporalio.client import Client

from bench import floor
from bench.baseline import service as baseline
from bench.config import TASK_QUEUE, bench_config
from chatflow.domain.tasks import stop_tasks
from chatflow.runtime.serve import run as uvloop_run
from chatflow.runtime.services import Services, check_redis, connect_redis
from conversations.demo import Demo

READY = "ready"


def ready() -> None:
    """Tell the bench (on stdout) this process is ready; from then on stdout goes to the log, as
    nobody reads the pipe after that line and a full pipe would block the process."""
    print(READY, flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


async def run_worker(address: str, redis_url: str, api_url: str, max_cached: int) -> None:
    config = bench_config(api_url, temporal_address=address, redis_url=redis_url)
    services = await Services.start(config, [Demo], task_queue=TASK_QUEUE)
    try:
        await check_redis(services.redis)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        # BENCH_WORKFLOW_SLOTS: workflow tasks at once (the SDK's default otherwise), to tune it by.
        slots = int(os.environ["BENCH_WORKFLOW_SLOTS"]) if os.environ.get("BENCH_WORKFLOW_SLOTS") else None
        worker, fallback = services.worker(max_cached_workflows=max_cached, max_concurrent_workflow_tasks=slots)
        loops = [asyncio.create_task(loop()) for loop in services.worker_loops(fallback)]  # the forwarder, if here
        try:
            async with worker:
                ready()
                await stop.wait()
        finally:
            await stop_tasks(loops)
    finally:
        await services.aclose()


async def serve_http(app: object, port: int, lifespan: Literal["on", "off"]) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises it again with the handler it found
    # installed: the default one would end the process there, before the services close and
    # before pyinstrument (--profile) writes its report. This one lets the process end normally.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
            backlog=4096,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    ready()
    await serving  # uvicorn exits on SIGTERM by itself


async def run_app(address: str, redis_url: str, api_url: str, port: int, history_limit: int) -> None:
    url = f"http://127.0.0.1:{port}"
    config = bench_config(api_url, public_url=url, temporal_address=address, redis_url=redis_url)
    services = await Services.start(config, [Demo], task_queue=TASK_QUEUE, history_limit=history_limit)
    try:
        await check_redis(services.redis)
        # The journey loops run in the app's lifespan, and the forwarder (unless CHATFLOW_FORWARDER=worker).
        await serve_http(services.web_app(), port, "on")
    finally:
        await services.aclose()


async def run_webhooks(redis_url: str, port: int) -> None:
    """chatflow's app with no Temporal and no lifespan (no forwarder): its webhook path alone,
    served by uvicorn as `run_app` serves it, for `python -m bench.webhook_cpu --served`."""
    config = bench_config(
        "http://127.0.0.1:9",
        public_url=f"http://127.0.0.1:{port}",
        temporal_address="127.0.0.1:9",  # never called: the buffer answers the webhook
        redis_url=redis_url,
    )
    services = await Services.start(config, [Demo], task_queue=TASK_QUEUE, lazy=True)
    try:
        await check_redis(services.redis)
        await serve_http(services.web_app(), port, "off")
    finally:
        await services.aclose()


async def run_floor(redis_url: str, port: int) -> None:
    services_redis = connect_redis(redis_url)
    try:
        await check_redis(services_redis)
        await serve_http(floor.web_app(services_redis), port, "off")
    finally:
        await services_redis.aclose()


async def run_baseline_worker(address: str, api_url: str, max_cached: int) -> None:
    client = await Client.connect(address)
    sender = baseline.Sender(api_url)
    try:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with baseline.worker(client, sender, max_cached):
            ready()
            await stop.wait()
    finally:
        await sender.http.aclose()


async def run_baseline_app(address: str, port: int, history_limit: int) -> None:
    client = await Client.connect(address)
    await serve_http(baseline.web_app(client, f"http://127.0.0.1:{port}", history_limit), port, "off")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.serve")
    parser.add_argument("role", choices=["worker", "app", "baseline-worker", "baseline-app", "floor", "webhooks"])
    parser.add_argument("--address", default="", help="Temporal (every role but the floor)")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--api-url", default="", help="the fake Twilio API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--history-limit", type=int, default=0)
    parser.add_argument("--max-cached", type=int, default=10_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # BENCH_LOOP=asyncio: asyncio's own event loop instead of uvloop, to compare the two.
    run = asyncio.run if os.environ.get("BENCH_LOOP") == "asyncio" else uvloop_run
    if args.role == "worker":
        run(run_worker(args.address, args.redis_url, args.api_url, args.max_cached))
    elif args.role == "app":
        run(run_app(args.address, args.redis_url, args.api_url, args.port, args.history_limit))
    elif args.role == "floor":
        run(run_floor(args.redis_url, args.port))
    elif args.role == "webhooks":
        run(run_webhooks(args.redis_url, args.port))
    elif args.role == "baseline-worker":
        run(run_baseline_worker(args.address, args.api_url, args.max_cached))
    else:
        run(run_baseline_app(args.address, args.port, args.history_limit))


if __name__ == "__main__":
    main()
