"""`python -m bench.dashboard_list [--conversations 10000]`: how fast the dashboard answers with
many conversations.

Starts a Temporal dev server (in memory, from the wheel), Valkey, and the web app built by
`Services` under uvicorn (as `chatflow web` runs it, with an API key); starts N conversations
carrying the search attributes a worker would have set (flow, version, step, journey data), on
a task queue no worker polls, so what is measured is the dashboard's own work against Temporal
visibility, not the conversations'. Then signs in and times each page, unfiltered and with each
filter, and the flows page (one visibility count per figure), several times each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.stats import summary_ms
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.runtime.processes import bind, free_port
from chatflow.runtime.services import Services, connect_redis
from chatflow.runtime.testing import start_valkey
from chatflow.temporal.records import ConversationInput
from chatflow.temporal.search_attributes import DATA, FLOW, STEP, VERSION, ensure_registered
from chatflow.temporal.workflow import ConversationWorkflow
from chatflow.testing import dev_server
from conversations.demo import Demo

KEY = "bench-key"
NUMBER = "+15005550006"
IDLE_QUEUE = "bench-dashboard-idle"  # no worker: the conversations stay as started
STARTS_AT_ONCE = 64
TRIES = 7
STEPS = ("menu", "ask_order", "ask_rating")


async def _start(client: Client, n: int) -> float:
    began = time.perf_counter()
    gate = asyncio.Semaphore(STARTS_AT_ONCE)

    async def one(i: int) -> None:
        ref = ConversationRef("sms", NUMBER, f"+1415{i:07d}", "console")
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(FLOW, "demo"),
                SearchAttributePair(VERSION, "1"),
                SearchAttributePair(STEP, STEPS[i % len(STEPS)]),
                SearchAttributePair(DATA, [f"order_id=A-{i}"]),
            ]
        )
        async with gate:
            await client.start_workflow(
                ConversationWorkflow.run,
                ConversationInput(flow="demo", conversation=ref, indexed=True),
                id=ref.id,
                task_queue=IDLE_QUEUE,
                search_attributes=attributes,
            )

    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - began


async def _timed(http: httpx.AsyncClient, path: str) -> dict[str, Any]:
    samples = []
    for _ in range(TRIES):
        began = time.perf_counter()
        answer = await http.get(path)
        samples.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
    return {"path": path, **summary_ms(samples)}


async def run(n: int) -> dict[str, Any]:
    valkey = start_valkey()
    try:
        async with dev_server() as env:
            await ensure_registered(env.client)
            print(f"starting {n} conversations...", flush=True)
            seconds = await _start(env.client, n)
            print(f"  started in {seconds:.1f} s", flush=True)
            config = Config(
                numbers=[NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="demo")],
                flow_modules=[],
                settings=Settings(api_key=KEY),
            )
            redis = connect_redis(valkey.connection_url)
            services = await Services.start(config, [Demo], client=env.client, redis=redis, task_queue=IDLE_QUEUE)
            port = free_port()
            stop = asyncio.Event()
            serving = asyncio.create_task(services.serve_web(bind("127.0.0.1", port), stop))
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                    for _ in range(500):
                        try:
                            await http.get("/healthz")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.02)
                    await http.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})
                    # Visibility lags the starts by a moment: wait until all are listed.
                    for _ in range(600):
                        count = (await env.client.count_workflows("ChatflowFlow = 'demo'")).count
                        if count >= n:
                            break
                        await asyncio.sleep(0.5)
                    first = (await http.get("/dashboard/api/conversations")).json()
                    pages = [
                        "/dashboard",
                        "/dashboard/api/conversations",
                        "/dashboard?flow=demo&state=running",
                        f"/dashboard?customer=%2B1415{n // 2:07d}",
                        "/dashboard?step=ask_order",
                        f"/dashboard?data=order_id%3DA-{n // 3}",
                        "/dashboard?outcome=completed",
                        "/dashboard?size=100",
                        first["next"] or "/dashboard",
                        "/dashboard/flows",
                    ]
                    timings = [await _timed(http, path) for path in pages]
            finally:
                stop.set()
                await serving
                await redis.aclose()
    finally:
        valkey.stop()
    return {"conversations": n, "seconds_to_start": round(seconds, 1), "pages": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/dashboard_list.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args.conversations))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{result['conversations']} conversations; each page {TRIES} times:")
    for page in result["pages"]:
        print(f"  {page['path']:<48} p50 {page['p50_ms']:>8.1f} ms   max {page['max_ms']:>8.1f} ms")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
