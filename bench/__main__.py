"""`python -m bench [--quick | --tiny] [--out DIR] [--scenarios a,b]`: run, print, write results."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, plots, report, targets, temporal_floor
from bench.scenarios import (
    answer,
    burst,
    cost,
    dev_burst,
    long_conversation,
    startup,
    sustained,
    throughput,
    waiting,
)
from bench.sizes import FULL, HISTORY_LIMIT, QUICK, TINY, Sizes
from bench.stack import PATHS, running_stack

SCENARIOS = (
    "throughput",
    "answer",
    "long_conversation",
    "waiting",
    "cost",
    "sustained",
    "burst",
    "startup",
    "dev_burst",
    "temporal_floor",
)
# Asked for and measured elsewhere, not in this run: said in every run's results.
NOT_DONE = [
    "cost of a payment-recovery conversation: measured by `python -m bench.journey_cost` (its own servers: "
    "the shop's API stand-in and the hand-written baseline); this run counts the demo flow",
    "100,000 waiting conversations: `python -m bench.waiting_many --conversations 100000` opens them as "
    "journeys straight into Temporal; neither of the dev server's persistences holds them here (its SQLite "
    "file did not finish within an hour; in memory it ran out of memory past 90,000: docs/benchmarks.md); "
    "this run's waiting scenario measures its own size (5,000 in a full run)",
]
RESULTS = Path(__file__).resolve().parent / "results"


async def run(
    sizes: Sizes,
    out: Path,
    scenarios: tuple[str, ...] = SCENARIOS,
    *,
    profile: bool = False,
    paths: tuple[str, ...] = PATHS,
) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "run": {
            "sizes": sizes.as_dict(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "history_limit": HISTORY_LIMIT,
        },
        "machine": machine.describe(),
    }
    print(
        f"chatflow bench ({sizes.name}) on {results['machine']['cores']} cores, {results['machine']['temporal_cli']}",
        flush=True,
    )
    async with running_stack(out / "logs", HISTORY_LIMIT, profile=profile) as stack:
        stack.paths = paths
        if "throughput" in scenarios:
            results["throughput"] = await throughput.run(stack, sizes)
        if "answer" in scenarios:
            saturation = results.get("throughput", {}).get("saturation", {}).get("baseline", {}).get("per_second", 0.0)
            results["answer"] = await answer.run(stack, sizes, saturation)
        if "long_conversation" in scenarios:
            results["long_conversation"] = await long_conversation.run(stack, sizes)
        if "waiting" in scenarios:
            results["waiting"] = await waiting.run(stack, sizes)
        if "cost" in scenarios:
            results["cost"] = await cost.run(stack, sizes)
        if "sustained" in scenarios:
            results["sustained"] = await sustained.run(stack, sizes)
        if "burst" in scenarios:
            results["burst"] = await burst.run(stack, sizes)
    # Their own stacks, after the shared one has stopped.
    if "startup" in scenarios:
        results["startup"] = await startup.run(sizes.startups)
    if "dev_burst" in scenarios:
        results["dev_burst"] = await dev_burst.run(sizes, out / "logs")
    if "temporal_floor" in scenarios:
        results["temporal_floor"] = await temporal_floor.run(sizes.floor_conversations)
    results["run"]["seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_at_end"] = machine.load()
    results["targets"] = targets.check(results)
    results["skipped"] = [f"{name}: not selected" for name in SCENARIOS if name not in scenarios] + NOT_DONE
    out.mkdir(parents=True, exist_ok=True)
    drawn, why = plots.draw(results, out)
    results["plots"] = [path.name for path in drawn]
    if why:
        results["skipped"].append(why)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "latest.md").write_text(report.render(results))
    print("\n== targets ==")
    for t in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        print(f"  {t['target']}: {t['value']} ({verdict}) {t['note']}")
    if "cost" in results:
        print("\n== cost ==")
        print(report.cost_table(results["cost"]))
    if results["skipped"]:
        print("\n== skipped ==")
        for why in results["skipped"]:
            print(f"  {why}")
    written = ", ".join(str(out / name) for name in ["latest.json", "latest.md", *results["plots"]])
    print(f"\nwrote {written} in {results['run']['seconds']} s", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke run, a few minutes")
    size.add_argument("--tiny", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json, latest.md and the plots go")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the app under pyinstrument (pip install pyinstrument); profile in OUT/logs",
    )
    parser.add_argument(
        "--paths", default=",".join(PATHS), help="the paths the burst compares (ours alone: a quicker look at a change)"
    )
    args = parser.parse_args(argv)
    chosen = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}")
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    paths = tuple(p.strip() for p in args.paths.split(",") if p.strip())
    if not paths or any(p not in PATHS for p in paths):
        parser.error(f"--paths: one or both of {', '.join(PATHS)}")
    asyncio.run(run(sizes, args.out, chosen, profile=args.profile, paths=paths))
    # The Temporal core runtime's threads can abort the interpreter while it finalises
    # ("PyGILState_Release ... must be current"), long after the results were written: leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
