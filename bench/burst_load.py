"""The burst's load generator, in a process of its own: `python -m bench.burst_load < job.json`.

It signs every webhook before the clock starts, then posts them open-loop at the job's rate,
whatever the server is doing, and prints one JSON line per request: the customer, when it was
due, when it went, when it was answered (CLOCK_MONOTONIC, one clock for the whole machine, so
the bench process can set these against the replies its fake provider saw) and the status (0
when no answer came). Apart from the bench process, which then only runs the fake provider, it
does not slow, and is not slowed by, what it measures.

A job's `beside` (a URL and as many customers) is posted at the same due times as the main one,
on connections of its own: the floor (`bench.floor`) fired beside a path's burst shares the
machine with that burst, and the generator's own work, exactly as the path does. Its rows are
printed after the main ones, marked `beside` in a seventh column.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bench.http import HttpPool, twilio_webhook

START_DELAY = 0.2  # seconds between the last signature and the first request


class _Target:
    """One URL's signed requests, its connections and its rows."""

    def __init__(self, job: dict[str, Any], url: str, customers: list[str], tag: str) -> None:
        self.customers, self.tag = customers, tag
        self.prepared = [
            twilio_webhook(url, customer, job.get("text", "hi"), token=job["token"], number=job["number"])
            for customer in customers
        ]
        self.pool = HttpPool.for_url(url, limit=job.get("connections", 1000), timeout=job.get("timeout", 60.0))
        self.rows: list[list[Any]] = [[]] * len(customers)

    async def one(self, index: int, due: float) -> None:
        went = time.monotonic()
        try:
            status, _ = await self.pool.request(self.prepared[index])
            error = ""
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as failure:
            status, error = 0, repr(failure)[:200]
        self.rows[index] = [self.customers[index], due, went, time.monotonic(), status, error, self.tag]


async def fire(job: dict[str, Any]) -> list[list[Any]]:
    targets = [_Target(job, job["url"], job["customers"], "")]
    if beside := job.get("beside"):
        if len(beside["customers"]) != len(job["customers"]):
            raise ValueError("a beside burst has as many customers as the main one")
        targets.append(_Target(job, beside["url"], beside["customers"], "beside"))
    rate: float = job["rate"]
    for target in targets:
        await target.pool.warm(job.get("warm", 16))
    start = time.monotonic() + START_DELAY
    tasks: list[asyncio.Task[None]] = []
    for index in range(len(job["customers"])):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.extend(asyncio.create_task(target.one(index, due)) for target in targets)
    await asyncio.gather(*tasks)
    for target in targets:
        await target.pool.aclose()
    return [row for target in targets for row in target.rows]


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
