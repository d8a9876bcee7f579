"""`python -m bench.waiting_many [--conversations 100000] [--cache 1000]`: many conversations
waiting at once, what each costs in memory, and answering one that left the worker's cache.

The waiting scenario of `python -m bench` (4) opens its conversations through webhooks with the
demo flow: at 60 ms of CPU per new customer (web, worker and server; docs/benchmarks.md) on two
cores, 100,000 would take close to an hour. This opens them the way a business opens many at
once, as journeys (`Journeys`' own call: `chatflow.temporal.client.start_journey`, 64 at a time),
of a flow whose first step waits for the customer's answer to a question sent by other means (a
receipt's "reply with a score"): one workflow task each, no send. The worker is the one
`Services.worker()` builds (`chatflow worker`), in this process with a bounded workflow cache;
the Temporal dev server (from the wheel, on a SQLite file, or in memory with `--in-memory`) and
Valkey are processes of their own. `--temporal-address host:port` uses an existing Temporal
server instead (one on a real database: neither of the dev server's persistences holds 100,000
here, docs/benchmarks.md); its memory is then not read.

Read: RSS of the worker process (this one), of the Temporal server and Valkey's `used_memory`,
each before and after, per conversation; then the time from a customer's answer (signalled as
the forwarder does) to the flow's reply reaching the channel, for conversations still cached
(the newest) and evicted ones (the oldest: their history is fetched and replayed), alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.machine import rss_kib, temporal_server_pid
from bench.stats import ratio, summary_ms
from chatflow import Ask, End, Flow, number
from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import InboundMessage
from chatflow.runtime.services import Services, connect_redis
from chatflow.runtime.testing import start_valkey
from chatflow.temporal.client import connect, deliver, start_journey
from chatflow.testing import dev_server
from providers.console import ConsoleChannel, Outbox

TASK_QUEUE = "bench-waiting"
STARTS_AT_ONCE = 64
PROBES = 30
TIMEOUT = 120.0


class Score(Flow):
    """Waits for the customer's score (the question went out on a receipt), then thanks them."""

    name = "score"
    ask = Ask(None, branches={number(0, 10): "thanks"}, save_as="score")
    thanks = End("completed", "Thanks for your score of {score}!")


def customer(i: int) -> str:
    return f"+1415{i:07d}"


@dataclass
class _Run:
    services: Services
    outbox: Outbox
    number: str
    task_queue: str

    async def open(self, first: int, n: int) -> float:
        began = time.perf_counter()
        gate = asyncio.Semaphore(STARTS_AT_ONCE)

        async def one(i: int) -> None:
            async with gate:
                ref = ConversationRef("sms", self.number, customer(i), "console")
                await start_journey(self.services.client, ref, "score", {}, task_queue=self.task_queue)

        await asyncio.gather(*(one(i) for i in range(first, first + n)))
        return time.perf_counter() - began

    async def waiting(self, n: int) -> None:
        """Until the server counts `n` of this run's conversations waiting at their question."""
        query = f"ChatflowFlow = 'score' AND ChatflowStep = 'ask' AND TaskQueue = '{self.task_queue}'"
        for _ in range(3600):
            if (await self.services.client.count_workflows(query)).count >= n:
                return
            await asyncio.sleep(1.0)
        raise RuntimeError(f"{n} conversations did not all reach their wait")

    async def answer(self, i: int) -> float:
        began = time.perf_counter()
        message = InboundMessage(
            id=f"SM-probe-{i}", channel="sms", provider="console", customer=customer(i), number=self.number, text="9"
        )
        await deliver(self.services.client, message, "score", task_queue=self.task_queue)
        sent = await self.outbox.wait_for(customer(i), 1, TIMEOUT)
        if not sent:
            raise RuntimeError(f"no answer for {customer(i)} within {TIMEOUT} s")
        return time.perf_counter() - began


@contextlib.asynccontextmanager
async def _temporal(address: str, in_memory: bool) -> AsyncIterator[tuple[Client, int | None]]:
    """A client, and the local server's pid when this run started it (its RSS is read)."""
    if address:
        yield await connect(address=address), None
        return
    # On a SQLite file by default, as `chatflow dev` runs it. In memory the server holds every
    # history in RAM, which no production persistence does (its RSS per conversation then says
    # nothing), but it is not held back by one file's writes.
    folder = tempfile.mkdtemp(prefix="chatflow-waiting-")
    db = [] if in_memory else ["--db-filename", str(Path(folder) / "temporal.db")]
    async with dev_server(db) as env:
        yield env.client, temporal_server_pid(int(env.client.service_client.config.target_host.rpartition(":")[2]))


async def run(
    n: int, cache: int, probes: int = PROBES, in_memory: bool = False, address: str = "", number: str = ""
) -> dict[str, Any]:
    """`address`: an existing Temporal server (its default namespace, or TEMPORAL_NAMESPACE) instead
    of a dev server of this run's own; this run's conversations are told apart from any other's
    by their number (`number`, else one of Twilio's test numbers at random) and a task queue of
    their own."""
    number = number or f"+1500555{secrets.randbelow(9000) + 1000}"
    task_queue = f"{TASK_QUEUE}-{secrets.token_hex(4)}"
    valkey = start_valkey()
    try:
        async with _temporal(address, in_memory) as (client, server):
            # The number's rate raised: a long code's 1/s would pace the probes' replies.
            config = Config(
                numbers=[
                    NumberBinding(
                        address=Address("tel", number), provider="console", channel="sms", flow="score", rate=1000.0
                    )
                ],
                flow_modules=[],
                settings=Settings(),
            )
            redis = connect_redis(valkey.connection_url)
            services = await Services.start(config, [Score], client=client, redis=redis, task_queue=task_queue)
            outbox = Outbox()
            services.channels["console"] = ConsoleChannel(outbox)
            worker, _ = services.worker(max_cached_workflows=cache)
            bench = _Run(services, outbox, number, task_queue)

            async def memory() -> dict[str, int]:
                used = {
                    "worker": rss_kib(os.getpid()),
                    "valkey": int((await redis.info("memory"))["used_memory"]) // 1024,
                }
                return used | ({"server": rss_kib(server)} if server is not None else {})

            try:
                async with worker:
                    # A few first, so "before" includes the sandbox, the flow and the connections.
                    await bench.open(0, 100)
                    await bench.waiting(100)
                    before = await memory()
                    print(f"opening {n} conversations (cache {cache})...", flush=True)
                    # In chunks, with the memory so far after each: a run cut short still tells.
                    seconds, chunk = 0.0, max(1, min(10_000, n // 10))
                    for first in range(0, n, chunk):
                        seconds += await bench.open(100 + first, min(chunk, n - first))
                        print(
                            f"  {first + min(chunk, n - first)} started in {seconds:.0f} s; RSS KiB {await memory()}",
                            flush=True,
                        )
                    await bench.waiting(n + 100)
                    print(f"  started in {seconds:.0f} s, all waiting", flush=True)
                    await asyncio.sleep(2.0)
                    after = await memory()
                    times: dict[str, list[float]] = {"cached": [], "evicted": []}
                    for k in range(probes):
                        times["evicted"].append(await bench.answer(100 + k))  # the oldest
                        times["cached"].append(await bench.answer(100 + n - 1 - k))  # the newest
            finally:
                await redis.aclose()
    finally:
        valkey.stop()
    per = {role: round((after[role] - before[role]) / n, 2) for role in before}
    return {
        "conversations": n,
        "max_cached_workflows": cache,
        "temporal": address or ("dev server in memory" if in_memory else "dev server on a SQLite file"),
        "seconds_to_start": round(seconds, 1),
        "rss_kib_before": before,
        "rss_kib_after": after,
        "kib_per_conversation": per,
        "cached": summary_ms(times["cached"]),
        "evicted": summary_ms(times["evicted"]),
        "evicted_vs_cached_ratio": ratio(statistics.median(times["evicted"]), statistics.median(times["cached"])),
        "load_average_at_end": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.waiting_many")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--cache", type=int, default=1_000)
    parser.add_argument(
        "--in-memory", action="store_true", help="the Temporal dev server in memory instead of on a SQLite file"
    )
    parser.add_argument(
        "--temporal-address",
        default="",
        help="an existing Temporal server (host:port) instead of a dev server of this run's own",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/waiting_many.json"))
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    result = asyncio.run(run(args.conversations, args.cache, in_memory=args.in_memory, address=args.temporal_address))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
