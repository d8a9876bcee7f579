"""7. Sustained: the highest steady rate of customer messages answered with p99 under 2 s.

Open-loop arrivals at a fixed rate for a few seconds, half of them new customers' first messages
("hi": greeting and menu), half replies from customers waiting at the menu ("1": opening hours
and the menu again). Answer time is from posting the webhook to the first reply reaching the fake
provider. The rate doubles while a step passes (every message accepted and answered, p99 under
the limit), then a bisection or two between the last pass and the first failure. Same search,
same server, for each path.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from bench.load import open_loop
from bench.sizes import Sizes
from bench.stack import PATHS, Stack
from bench.stats import percentile, summary_ms

P99_LIMIT = 2.0  # seconds
ANSWER_TIMEOUT = 30.0  # a message unanswered this long counts as an error


async def step(stack: Stack, path: str, rate: float, seconds: float, waiting: deque[str]) -> dict[str, Any]:
    deliver = stack.deliver(path)
    arrivals = 0

    async def one() -> tuple[str, float]:
        nonlocal arrivals
        arrivals += 1
        reply = arrivals % 2 == 0 and bool(waiting)
        customer = waiting.popleft() if reply else stack.new_customer()
        before = stack.fake.count(customer)
        began = time.perf_counter()
        await deliver(customer, "1" if reply else "hi")
        answered = await stack.fake.nth_send(customer, before + 1, ANSWER_TIMEOUT)
        await stack.fake.nth_send(customer, before + 2, ANSWER_TIMEOUT)  # the turn is over
        waiting.append(customer)
        return ("reply" if reply else "first"), answered - began

    outcomes = await open_loop(one, rate, seconds)
    done = [o for o in outcomes if isinstance(o, tuple)]
    failed = [o for o in outcomes if not isinstance(o, tuple)]
    times = [t for _, t in done]
    p99 = percentile(times, 99)
    return {
        "rate": rate,
        "messages": len(outcomes),
        "first_messages": sum(1 for kind, _ in done if kind == "first"),
        "replies": sum(1 for kind, _ in done if kind == "reply"),
        "errors": len(failed),
        "first_error": repr(failed[0])[:300] if failed else "",
        "answer": summary_ms(times),
        "passed": not failed and bool(times) and p99 < P99_LIMIT,
    }


async def search(stack: Stack, path: str, sizes: Sizes) -> dict[str, Any]:
    waiting: deque[str] = deque()
    steps: list[dict[str, Any]] = []

    async def at(rate: float) -> bool:
        await stack.fake.quiet(1.0)  # the previous step's backlog is done
        figures = await step(stack, path, rate, sizes.sustained_seconds, waiting)
        steps.append(figures)
        a = figures["answer"]
        print(
            f"  {path:>8} {rate:>7.1f} msg/s: answer p50 {a['p50_ms']:>7.1f}  p99 {a['p99_ms']:>8.1f} ms, "
            f"errors {figures['errors']}  {'pass' if figures['passed'] else 'FAIL'}",
            flush=True,
        )
        return bool(figures["passed"])

    best, failed_at = 0.0, 0.0
    rate = sizes.sustained_start
    while rate <= sizes.sustained_max:
        if not await at(rate):
            failed_at = rate
            break
        best = rate
        rate *= 2
    if best and failed_at:
        low, high = best, failed_at
        for _ in range(sizes.sustained_refine):
            middle = round((low + high) / 2, 1)
            if await at(middle):
                low = best = middle
            else:
                high = middle
    return {
        "best_per_second": best,
        "capped": not failed_at,  # never failed: the real limit is above the largest rate tried
        "steps": steps,
    }


async def run(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    print(
        f"\n== 7. sustained: highest rate with answer p99 < {P99_LIMIT:g} s ({sizes.sustained_seconds:g} s steps, "
        f"from {sizes.sustained_start:g} msg/s, doubling) ==",
        flush=True,
    )
    result: dict[str, Any] = {"p99_limit_ms": P99_LIMIT * 1000, "step_seconds": sizes.sustained_seconds}
    for path in PATHS:
        result[path] = await search(stack, path, sizes)
    base, ours = result["baseline"]["best_per_second"], result["ours"]["best_per_second"]
    result["ratio"] = round(ours / base, 3) if base else None
    ratio = f"  -> ratio {result['ratio']:.2f}" if base else ""
    print(f"  sustained: ours {ours:g} msg/s, baseline {base:g} msg/s{ratio}", flush=True)
    return result
