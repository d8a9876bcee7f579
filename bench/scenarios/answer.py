"""2. Time to answer: webhook posted -> the flow's first reply reaches the (fake) provider.

Compared with the baseline: the same signed webhook to its app, which signal-with-starts its
workflow, then the same wait for the same reply. Arrivals are open-loop at a fixed rate, each a
new customer's first message, so the figures include starting the conversation's workflow.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.load import open_loop
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import ratio, summary_ms

ANSWER_TIMEOUT = 120.0


async def _measure(
    stack: Stack, deliver: Callable[[str, str], Awaitable[None]], rate: float, seconds: float
) -> list[Any]:
    async def one() -> tuple[float, float]:
        customer = stack.new_customer()
        began = time.perf_counter()
        await deliver(customer, "hi")
        accepted = time.perf_counter()
        answered = await stack.fake.nth_send(customer, 1, ANSWER_TIMEOUT)
        await stack.fake.nth_send(customer, 2, ANSWER_TIMEOUT)  # the menu: the turn is over
        return accepted - began, answered - began

    return await open_loop(one, rate, seconds)


def _figures(rate: float, outcomes: list[Any]) -> dict[str, Any]:
    done = [o for o in outcomes if isinstance(o, tuple)]
    failed = [o for o in outcomes if not isinstance(o, tuple)]
    return {
        "offered_per_second": rate,
        "messages": len(outcomes),
        "errors": len(failed),
        "first_error": repr(failed[0])[:300] if failed else "",
        "request": summary_ms([accepted for accepted, _ in done]),
        "answer": summary_ms([answered for _, answered in done]),
    }


async def run(stack: Stack, sizes: Sizes, baseline_saturation: float = 0.0) -> dict[str, Any]:
    # Well below saturation, so that the figures are latency, not queueing.
    rate = sizes.answer_rate if not baseline_saturation else min(sizes.answer_rate, baseline_saturation / 2)
    rate = round(max(rate, 1.0), 1)
    print(f"\n== 2. time to answer at {rate:g} new conversations/s ==", flush=True)
    result: dict[str, Any] = {}
    paths = {"baseline": stack.post_baseline, "ours": stack.post_webhook}
    outcomes: dict[str, list[Any]] = {"baseline": [], "ours": []}
    # Half the time each, in the order baseline, ours, ours, baseline: the server's state drifts
    # as conversations pile up, and neither path should always meet the later one.
    for mode in ("baseline", "ours", "ours", "baseline"):
        # A backlog left by an earlier run would be measured as answer time: let it drain. The
        # throughput scenario's can take many minutes (a full run leaves ~20,000 conversations
        # to the worker: it accepts far faster than any worker answers).
        quiet = await stack.fake.quiet(timeout=sizes.burst_drain)
        result[f"{mode}_started_quiet"] = result.get(f"{mode}_started_quiet", True) and quiet
        if not quiet:
            print(
                f"  {mode}: the worker was still busy with an earlier backlog: its answers wait behind it", flush=True
            )
        outcomes[mode] += await _measure(stack, paths[mode], rate, sizes.answer_seconds / 2)
    for mode in paths:
        result[mode] = figures = _figures(rate, outcomes[mode])
        a = figures["answer"]
        print(
            f"  {mode:>8} answer p50 {a['p50_ms']:>7.1f}  p95 {a['p95_ms']:>7.1f}  p99 {a['p99_ms']:>7.1f} ms"
            f"  (request p50 {figures['request']['p50_ms']:.1f} ms, errors {figures['errors']})",
            flush=True,
        )
    result["p50_ratio"] = ratio(result["ours"]["answer"]["p50_ms"], result["baseline"]["answer"]["p50_ms"])
    result["p99_ratio"] = ratio(result["ours"]["answer"]["p99_ms"], result["baseline"]["answer"]["p99_ms"])
    print(f"  p99 ratio ours/baseline {result['p99_ratio']:.2f}", flush=True)
    return result
