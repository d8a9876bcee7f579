"""`python -m bench.webhook_cpu [N] [--asyncio] [--idle-forwarder] [--replica] [--floor]`: CPU per
webhook in chatflow's app, nothing else; with --idle-forwarder, the CPU a second of the forwarder
with nothing to forward; with --replica, Valkey has a replica and each message waits for it to
have it (CHATFLOW_REDIS_REPLICA_ACKS=1); with --floor, the CPU per request of `bench.floor`'s app
(bare Starlette + one XADD), measured the same way; with --served, the app (or with --floor the
floor) served by uvicorn in a process of its own, as the bench serves it, and N webhooks posted
to it 8 at a time from this one: that process's CPU per webhook, HTTP included.

N signed Twilio webhooks (new customers' "hi") called one after another straight into the ASGI
app that `Services.web_app()` builds (signature, parsing, the Redis edge, the buffer), against a
real Valkey, with no HTTP server, no load generator and no forwarder (the lifespan is not run):
the process CPU time per webhook. CPU time, unlike latency, hardly depends on what else shares
the machine, so this is the figure to compare changes to the webhook path by.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import floor
from bench.config import TASK_QUEUE, bench_config
from bench.http import WEBHOOK_PATH, HttpPool, Prepared, twilio_webhook
from bench.machine import cpu_seconds
from bench.stack import start_process
from chatflow.domain.tasks import stop_tasks
from chatflow.edge.buffer import Forwarder
from chatflow.runtime.embedded import EmbeddedValkey, start_valkey
from chatflow.runtime.processes import free_port
from chatflow.runtime.serve import run
from chatflow.runtime.services import Services, connect_redis
from chatflow.temporal.client import connect
from conversations.demo import Demo

WARM_UP = 100
URL = "http://bench"


def _scope(request: Prepared, app: Any) -> dict[str, Any]:
    lines = request.head.decode().split("\r\n")[1:]
    headers = [
        (name.lower().encode(), value.encode())
        for name, _, value in (line.partition(": ") for line in lines if ": " in line)
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": WEBHOOK_PATH,
        "raw_path": WEBHOOK_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("bench", 80),
        "client": ("127.0.0.1", 1),
        "app": app,
    }


async def _call(app: Any, request: Prepared) -> int:
    delivered = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # the client never disconnects
        delivered = True
        return {"type": "http.request", "body": request.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope(request, app), receive, send)
    return status[0]


async def _replica_of(valkey: EmbeddedValkey, folder: Path) -> EmbeddedValkey:
    """A replica of `valkey`, once it has its data and follows it."""
    master = valkey.url.rsplit(":", 1)[1].split("/")[0]
    replica = await start_valkey(folder, "127.0.0.1", free_port(), extra=("--replicaof", "127.0.0.1", master))
    client = connect_redis(replica.url)
    try:
        while (await client.info("replication")).get("master_link_status") != "up":
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    return replica


async def measure(count: int, *, replica: bool = False, floor_app: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chatflow-bench-cpu-") as folder:
        valkey = await start_valkey(Path(folder), "127.0.0.1", free_port())
        follower = await _replica_of(valkey, Path(folder) / "replica") if replica else None
        try:
            if floor_app:
                redis = connect_redis(valkey.url)  # the client `bench.serve` gives the floor
                try:
                    return await _timed(floor.web_app(redis), count)
                finally:
                    await redis.aclose()
            # Temporal is never called: the buffer answers the webhook.
            config = bench_config(
                "http://127.0.0.1:9", public_url=URL, temporal_address="127.0.0.1:9", redis_url=valkey.url
            )
            config.settings.redis_replica_acks = 1 if replica else 0
            services = await Services.start(config, [Demo], task_queue=TASK_QUEUE, lazy=True)
            try:
                return await _timed(services.web_app(), count)
            finally:
                await services.aclose()
        finally:
            await asyncio.to_thread(valkey.process.stop)
            if follower is not None:
                await asyncio.to_thread(follower.process.stop)


async def _timed(app: Any, count: int) -> dict[str, float]:
    requests = [twilio_webhook(URL + WEBHOOK_PATH, f"+1415{n:07d}", "hi") for n in range(WARM_UP + count)]
    for request in requests[:WARM_UP]:
        status = await _call(app, request)
        if status != 200:
            raise RuntimeError(f"the webhook answered {status}")
    cpu, wall = time.process_time(), time.perf_counter()
    for request in requests[WARM_UP:]:
        await _call(app, request)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"webhooks": count, "cpu_ms": round(cpu * 1000 / count, 3), "wall_ms": round(wall * 1000 / count, 3)}


async def served(count: int, *, floor_app: bool = False, concurrency: int = 8) -> dict[str, float]:
    """CPU per webhook of the app's own process (`bench.serve webhooks`, or `floor`), uvicorn's
    HTTP work included, with `concurrency` requests in flight on kept-alive connections."""
    with tempfile.TemporaryDirectory(prefix="chatflow-bench-cpu-") as folder:
        valkey = await start_valkey(Path(folder), "127.0.0.1", free_port())
        try:
            port = free_port()
            role = "floor" if floor_app else "webhooks"
            server = await start_process(
                role, ["--redis-url", valkey.url, "--port", str(port)], Path(folder) / f"{role}.log"
            )
            pool = HttpPool("127.0.0.1", port, limit=concurrency)
            try:
                await pool.warm(concurrency)
                url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
                requests = [twilio_webhook(url, f"+1415{n:07d}", "hi") for n in range(WARM_UP + count)]
                for status, _ in await asyncio.gather(*(pool.request(r) for r in requests[:WARM_UP])):
                    if status != 200:
                        raise RuntimeError(f"the webhook answered {status}")
                cpu, wall = cpu_seconds(server.pid), time.perf_counter()
                answers = await asyncio.gather(*(pool.request(r) for r in requests[WARM_UP:]))
                cpu, wall = cpu_seconds(server.pid) - cpu, time.perf_counter() - wall
                if any(status != 200 for status, _ in answers):
                    raise RuntimeError("a webhook was not answered 200")
            finally:
                await pool.aclose()
                await server.stop()
        finally:
            await asyncio.to_thread(valkey.process.stop)
    return {"webhooks": count, "cpu_ms": round(cpu * 1000 / count, 3), "wall_ms": round(wall * 1000 / count, 3)}


async def idle_forwarder(seconds: float) -> float:
    """CPU milliseconds a second of a Forwarder (16 partitions) with an empty buffer: its leases
    and blocking reads, which run in the web process whether messages come or not."""
    with tempfile.TemporaryDirectory(prefix="chatflow-bench-cpu-") as folder:
        valkey = await start_valkey(Path(folder), "127.0.0.1", free_port())
        try:
            redis = connect_redis(valkey.url)
            client = await connect(address="127.0.0.1:9", lazy=True)  # never called: nothing to forward
            forwarding = asyncio.create_task(Forwarder(redis, client).run())
            try:
                await asyncio.sleep(2.0)  # the partitions acquired
                cpu = time.process_time()
                await asyncio.sleep(seconds)
                cpu = time.process_time() - cpu
            finally:
                await stop_tasks([forwarding])
                await redis.aclose()
        finally:
            await asyncio.to_thread(valkey.process.stop)
    return round(cpu * 1000 / seconds, 2)


def main() -> None:
    if "--idle-forwarder" in sys.argv:
        print(f"idle forwarder: {run(idle_forwarder(20.0))} ms of CPU a second")
        return
    count = next((int(arg) for arg in sys.argv[1:] if arg.isdigit()), 3000)
    if "--served" in sys.argv:
        result = run(served(count, floor_app="--floor" in sys.argv))
        what = "floor requests" if "--floor" in sys.argv else "webhooks"
        print(
            f"{count} {what} served by uvicorn, 8 at a time: CPU of the serving process {result['cpu_ms']} ms "
            f"each, wall {result['wall_ms']} ms each"
        )
        return
    measured = measure(count, replica="--replica" in sys.argv, floor_app="--floor" in sys.argv)
    result = asyncio.run(measured) if "--asyncio" in sys.argv else run(measured)
    loop = "asyncio" if "--asyncio" in sys.argv else "uvloop"
    print(
        f"{result['webhooks']} {'floor requests' if '--floor' in sys.argv else 'webhooks'} "
        f"({loop}{', a replica acknowledging each' if '--replica' in sys.argv else ''}): "
        f"CPU {result['cpu_ms']} ms each, "
        f"wall {result['wall_ms']} ms each (one at a time)"
    )


if __name__ == "__main__":
    main()
