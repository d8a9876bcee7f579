"""Offered load: closed-loop concurrency steps and open-loop arrivals at a fixed rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summary_ms

Send = Callable[[], Awaitable[None]]


@dataclass
class StepResult:
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": len(self.latencies),
            "errors": self.errors,
            "first_error": self.first_error,
            "per_second": round(self.per_second, 1),
            **summary_ms(self.latencies),
        }


async def closed_loop(send: Send, concurrency: int, seconds: float) -> StepResult:
    """`concurrency` senders, each sending again as soon as its last request was answered."""
    result = StepResult(concurrency, seconds)
    start = time.perf_counter()
    deadline = start + seconds

    async def sender() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                await send()
            except Exception as error:  # noqa: BLE001 - counted, not fatal: a saturated server may refuse
                result.errors += 1
                result.first_error = result.first_error or repr(error)[:300]
                continue
            result.latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    # Requests still in flight at the deadline finish late; count the time they took.
    result.seconds = time.perf_counter() - start
    return result


async def open_loop(job: Callable[[], Coroutine[Any, Any, Any]], rate: float, seconds: float) -> list[Any]:
    """Start `job` `rate` times a second for `seconds`, whatever the earlier ones are doing."""
    tasks: list[asyncio.Task[Any]] = []
    start = time.perf_counter()
    count = max(1, int(rate * seconds))
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(job()))
    return list(await asyncio.gather(*tasks, return_exceptions=True))
