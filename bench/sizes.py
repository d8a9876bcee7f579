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
    # 5. burst: new customers per second, for this many seconds, and how long to wait for answers
    burst_rates: tuple[float, ...]
    burst_seconds: float
    burst_drain: float
    # 6. start-up: how many times each stack is started
    startups: int
    # 7. sustained: the search's first rate (messages/s), its cap, seconds per step, bisections
    sustained_start: float
    sustained_max: float
    sustained_seconds: float
    sustained_refine: int
    # 8. cost: typical conversations counted per path; messages counted for the per-message cost
    cost_conversations: int
    cost_messages: int
    # 9. the burst against `chatflow dev`: its rates (same seconds and drain as 5)
    dev_burst_rates: tuple[float, ...]
    # 10. Temporal's floor (`bench.temporal_floor`): conversations started at 300/s, without and with two sends
    floor_conversations: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Continue-as-new after this many history events (both paths).
HISTORY_LIMIT = 500

TINY = Sizes(
    "tiny",
    concurrency=(1, 4),
    step_seconds=0.5,
    drain_seconds=10.0,
    answer_rate=5.0,
    answer_seconds=2.0,
    long_marks=(5, 20),
    waiting=30,
    cache=10,
    probes=3,
    burst_rates=(20, 50),
    burst_seconds=1.0,
    burst_drain=30.0,
    startups=1,
    sustained_start=5.0,
    sustained_max=10.0,
    sustained_seconds=1.0,
    sustained_refine=0,
    cost_conversations=1,
    cost_messages=3,
    dev_burst_rates=(20,),
    floor_conversations=50,
)
QUICK = Sizes(
    "quick",
    concurrency=(1, 8, 32),
    step_seconds=3.0,
    drain_seconds=15.0,
    answer_rate=10.0,
    answer_seconds=5.0,
    long_marks=(10, 100),
    waiting=200,
    cache=50,
    probes=10,
    burst_rates=(100, 300, 1000),
    burst_seconds=1.0,
    burst_drain=300.0,
    startups=1,
    sustained_start=10.0,
    sustained_max=640.0,
    sustained_seconds=4.0,
    sustained_refine=1,
    cost_conversations=3,
    cost_messages=20,
    dev_burst_rates=(100, 1000),
    floor_conversations=500,
)
FULL = Sizes(
    "full",
    concurrency=(1, 4, 16, 32, 64),
    step_seconds=10.0,
    drain_seconds=60.0,
    answer_rate=10.0,
    answer_seconds=30.0,
    long_marks=(10, 100, 1000, 10_000),
    waiting=5000,
    cache=500,
    probes=30,
    burst_rates=(100, 300, 1000),
    burst_seconds=10.0,
    burst_drain=1800.0,
    startups=3,
    sustained_start=10.0,
    sustained_max=2560.0,
    sustained_seconds=10.0,
    sustained_refine=2,
    cost_conversations=10,
    cost_messages=100,
    dev_burst_rates=(100, 300, 1000),
    floor_conversations=3000,
)
