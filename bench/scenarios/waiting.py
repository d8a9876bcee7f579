"""4. Many waiting conversations: the worker's memory, and answering one that left the cache.

The worker is restarted with a bounded workflow cache, N conversations are opened (each then
waits at the menu), and the worker's RSS is read from /proc. Then the most recently active
conversations (still cached) and the oldest (evicted, so their history is fetched and replayed)
are each asked once, alternately, and timed to their first reply.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import ratio, summary_ms

OPEN_CONCURRENCY = 16
TIMEOUT = 120.0


async def _open(stack: Stack, customers: list[str]) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for customer in customers:
        queue.put_nowait(customer)

    async def opener() -> None:
        while not queue.empty():
            await stack.post_webhook(queue.get_nowait(), "hi")

    await asyncio.gather(*(opener() for _ in range(OPEN_CONCURRENCY)))
    for customer in customers:
        await stack.fake.nth_send(customer, 2, TIMEOUT)


async def _ask(stack: Stack, customer: str) -> float:
    before = stack.fake.count(customer)
    began = time.perf_counter()
    await stack.post_webhook(customer, "1")
    answered = await stack.fake.nth_send(customer, before + 1, TIMEOUT)
    await stack.fake.nth_send(customer, before + 2, TIMEOUT)
    return answered - began


async def run(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    n, cache = sizes.waiting, sizes.cache
    print(f"\n== 4. {n} waiting conversations, workflow cache {cache} ==", flush=True)
    await stack.start_worker(max_cached=cache)
    # A few conversations first, so the baseline includes the sandbox and the flow's imports.
    await _open(stack, [stack.new_customer() for _ in range(3)])
    await asyncio.sleep(1.0)
    baseline = stack.worker_rss_kib()
    customers = [stack.new_customer() for _ in range(n)]
    began = time.perf_counter()
    await _open(stack, customers)
    opened_in = time.perf_counter() - began
    await asyncio.sleep(1.0)
    after = stack.worker_rss_kib()
    grown = max(0, after - baseline)
    print(
        f"  opened {n} in {opened_in:.1f} s; worker RSS {baseline / 1024:.0f} -> {after / 1024:.0f} MiB "
        f"({grown / n:.1f} KiB per conversation, {grown / min(n, cache):.1f} KiB per cached one)",
        flush=True,
    )
    # The newest are cached; probing them newest-first while the evicted ones push out the
    # least recently used keeps them cached throughout (the cache holds at least 2 x probes).
    cached = list(reversed(customers[-sizes.probes :]))
    evicted = customers[: sizes.probes]
    times: dict[str, list[float]] = {"cached": [], "evicted": []}
    for old, recent in zip(evicted, cached, strict=True):
        times["evicted"].append(await _ask(stack, old))
        times["cached"].append(await _ask(stack, recent))
    result: dict[str, Any] = {
        "conversations": n,
        "max_cached_workflows": cache,
        "seconds_to_open": round(opened_in, 1),
        "worker_rss_kib_baseline": baseline,
        "worker_rss_kib_after": after,
        "rss_kib_per_conversation": round(grown / n, 2),
        "rss_kib_per_cached_conversation": round(grown / min(n, cache), 2),
        "cached": summary_ms(times["cached"]),
        "evicted": summary_ms(times["evicted"]),
        "evicted_vs_cached_ratio": ratio(statistics.median(times["evicted"]), statistics.median(times["cached"])),
    }
    print(
        f"  answer p50 cached {result['cached']['p50_ms']:.1f} ms, evicted {result['evicted']['p50_ms']:.1f} ms"
        f"  -> ratio {result['evicted_vs_cached_ratio']:.2f}",
        flush=True,
    )
    # Later runs (and a rerun of other scenarios) expect the default, unbounded worker.
    await stack.start_worker()
    return result
