"""How big each scenario is in a tiny (test), quick (smoke) and full run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sizes:
    name: str
    # 1. inbound throughput: closed-loop concurrency steps, seconds per step
    concurrency: tuple[int, ...]
    step_seconds: float
    # seconds to wait for the worker to drain the conversations a step started
    drain_seconds: float
    # 2. time to answer: open-loop arrivals per second for this many seconds
    answer_rate: float
    answer_seconds: float
    # 3. one long conversation: time to answer measured at these message numbers
    long_marks: tuple[int, ...]
    # 4. waiting conversations, with the worker's workflow cache bounded to `cache`
    waiting: int
    cache: int
    probes: int  # cached and evicted conversations each asked once
    # 6. start-up: how many times each stack is started
    startups: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Continue-as-new after this many history events (both paths, so the workflow is the same).
HISTORY_LIMIT = 500

TINY = Sizes("tiny", (1, 4), 1.0, 10.0, 5.0, 2.0, (5, 20), 30, 10, 3)
QUICK = Sizes("quick", (1, 8, 32), 3.0, 15.0, 10.0, 5.0, (10, 100), 200, 50, 10)
FULL = Sizes("full", (1, 4, 16, 32, 64), 10.0, 60.0, 10.0, 30.0, (10, 100, 1000, 10_000), 5000, 500, 30, 3)
