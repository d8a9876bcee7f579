"""1. Inbound throughput and latency: signed webhooks into chatflow's app vs into the baseline's.

Both paths get the same signed Twilio webhooks on the same server, at the same closed-loop
concurrency steps. Every request is a new customer's first message, so each also costs its
worker a conversation (greeting + menu); between runs the bench waits for the worker to send
those, so one run's backlog does not slow the next.
"""

from __future__ import annotations

from typing import Any

from bench.load import StepResult, closed_loop
from bench.sizes import Sizes
from bench.stack import Stack
from bench.stats import ratio

REPLIES_PER_NEW_CONVERSATION = 2  # the demo's greeting and menu


async def run(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    print("\n== 1. inbound throughput and latency ==", flush=True)

    async def ours() -> None:
        await stack.post_webhook(stack.new_customer(), "hi")

    async def baseline() -> None:
        await stack.post_baseline(stack.new_customer(), "hi")

    senders = {"baseline": baseline, "ours": ours}
    expected = stack.fake.total
    # Warm both paths (connections, the sandbox's first import) before measuring.
    for send in senders.values():
        for _ in range(5):
            await send()
            expected += REPLIES_PER_NEW_CONVERSATION
    await stack.fake.drain(expected, sizes.drain_seconds)

    steps: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": []}
    undrained = 0
    for index, concurrency in enumerate(sizes.concurrency):
        # The server slows as conversations pile up in it: alternate which path goes first
        # (baseline-ours, ours-baseline, ...) so neither always meets the fuller server.
        order = list(senders.items())
        for mode, send in order if index % 2 == 0 else order[::-1]:
            step: StepResult = await closed_loop(send, concurrency, sizes.step_seconds)
            expected += REPLIES_PER_NEW_CONVERSATION * len(step.latencies)
            drained = await stack.fake.drain(expected, sizes.drain_seconds)
            if not drained:
                undrained += 1
                expected = stack.fake.total  # carry on from what did arrive
            figures = step.as_dict() | {"worker_drained": drained}
            steps[mode].append(figures)
            print(
                f"  {mode:>8} c={concurrency:<3} {figures['per_second']:>7.1f} req/s  "
                f"p50 {figures['p50_ms']:>7.1f}  p95 {figures['p95_ms']:>7.1f}  p99 {figures['p99_ms']:>7.1f} ms"
                f"  errors {figures['errors']}{'' if drained else '  (worker backlog not drained)'}",
                flush=True,
            )

    best = {mode: max(rows, key=lambda row: row["per_second"]) for mode, rows in steps.items()}
    per_step = [
        {
            "concurrency": o["concurrency"],
            "throughput_ratio": ratio(o["per_second"], r["per_second"]),
            "p99_ratio": ratio(o["p99_ms"], r["p99_ms"]),
        }
        for o, r in zip(steps["ours"], steps["baseline"], strict=True)
    ]
    result = {
        "steps": steps,
        "per_step": per_step,
        "saturation": {
            mode: {k: row[k] for k in ("concurrency", "per_second", "p50_ms", "p95_ms", "p99_ms")}
            for mode, row in best.items()
        },
        "throughput_ratio": ratio(best["ours"]["per_second"], best["baseline"]["per_second"]),
        "steps_with_worker_backlog": undrained,
    }
    print(
        f"  saturation: ours {best['ours']['per_second']:.1f} req/s, baseline {best['baseline']['per_second']:.1f} req/s"
        f"  -> ratio {result['throughput_ratio']:.2f}",
        flush=True,
    )
    return result
