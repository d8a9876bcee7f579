"""The burst's load generator, in a process of its own: `python -m bench.burst_load < job.json`.

It signs every webhook before the clock starts, then posts them open-loop at the job's rate,
whatever the server is doing, and prints one JSON line per request: the customer, when it was
due, when it went, when it was answered (CLOCK_MONOTONIC, one clock for the whole machine, so
the bench process can set these against the replies its fake provider saw) and the status (0
when no answer came). Apart from the bench process, which then only runs the fake provider, it
does not slow, and is not slowed by, what it measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bench.http import HttpPool, Prepared, twilio_webhook

START_DELAY = 0.2  # seconds between the last signature and the first request


async def fire(job: dict[str, Any]) -> list[list[Any]]:
    url: str = job["url"]
    customers: list[str] = job["customers"]
    rate: float = job["rate"]
    prepared = [
        twilio_webhook(url, customer, job.get("text", "hi"), token=job["token"], number=job["number"])
        for customer in customers
    ]
    pool = HttpPool.for_url(url, limit=job.get("connections", 1000), timeout=job.get("timeout", 60.0))
    await pool.warm(job.get("warm", 16))
    rows: list[list[Any]] = [[]] * len(customers)

    async def one(index: int, due: float, request: Prepared) -> None:
        went = time.monotonic()
        try:
            status, _ = await pool.request(request)
            error = ""
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as failure:
            status, error = 0, repr(failure)[:200]
        rows[index] = [customers[index], due, went, time.monotonic(), status, error]

    start = time.monotonic() + START_DELAY
    tasks: list[asyncio.Task[None]] = []
    for index, request in enumerate(prepared):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due, request)))
    await asyncio.gather(*tasks)
    await pool.aclose()
    return rows


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        import uvloop
    except ImportError:
        rows = asyncio.run(fire(job))
    else:
        rows = uvloop.run(fire(job))
    out = sys.stdout
    for row in rows:
        out.write(json.dumps(row) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
