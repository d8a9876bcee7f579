"""`python -m bench.temporal_floor`: the least CPU any design with one Temporal workflow per
conversation spends on a new customer, on this machine and this Temporal.

The floor's workflow does only what every such design must do for a customer's first message:
it is signal-with-started (as chatflow's forwarder and the baseline's webhook start theirs), runs
one workflow task on a worker in a process of its own (in the SDK's sandbox, with the SDK's
defaults, as chatflow's worker), and waits for the next message with a timer. No activity, no
send, no Redis, no web tier. With `--sends N` it also sends N messages, each a local activity
posting to the bench's fake Twilio API through one shared httpx client (the least a conversation
that answers costs). `--count` conversations are started at `--rate` a second; the CPU
the Temporal server and the worker used (each from /proc) until both are idle again, less what
they use idle (measured just before), divided by the count, is the figure; without sends, the
CPU of this process, which starts them (a client's signal-with-start), too. Set beside a burst's
CPU per new customer (`python -m bench --scenarios burst`), it says how much of a path's CPU is
Temporal's own: a path cannot spend less than this however little it does itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

# The worker's sandbox imports this module again for each run: what the workflow does not use
# comes from outside it (the dev server's helpers read the file system).
with workflow.unsafe.imports_passed_through():
    import httpx

    from bench.config import ACCOUNT_SID, NUMBER
    from bench.fake_provider import FakeTwilio, serving
    from bench.machine import cpu_seconds, describe, temporal_server_pid
    from chatflow.testing import dev_server

TASK_QUEUE = "temporal-floor"
READY = "ready"
IDLE_SECONDS = 3.0  # how long the idle CPU of both processes is sampled before the burst
SETTLED = 0.02  # CPU seconds a second below which a process counts as idle again
SETTLE_LIMIT = 600.0  # seconds after the last start at most: a server that never settles still ends


@workflow.defn(name="FloorConversation")
class FloorConversation:
    """Started by the first message; waits a day for the next, as a conversation does."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @workflow.signal
    def message(self, text: str) -> None:
        self.messages.append(text)

    @workflow.run
    async def run(self, customer: str, sends: int) -> None:
        for n in range(sends):
            await workflow.execute_local_activity(
                "send", args=[customer, f"reply {n}"], start_to_close_timeout=timedelta(seconds=10)
            )
        await workflow.wait_condition(lambda: len(self.messages) > 1, timeout=timedelta(hours=24))


class Sender:
    def __init__(self, api_url: str) -> None:
        self.url = f"{api_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        # The fake provider's uvicorn drops a connection idle for 5 s, httpx's default expiry: a
        # send on one it is dropping fails (and is retried). Fresher connections only.
        self.http = httpx.AsyncClient(limits=httpx.Limits(keepalive_expiry=2.0))

    @activity.defn(name="send")
    async def send(self, customer: str, body: str) -> None:
        response = await self.http.post(self.url, data={"To": customer, "From": NUMBER, "Body": body})
        response.raise_for_status()


async def serve_worker(address: str, api_url: str) -> None:
    client = await Client.connect(address)
    sender = Sender(api_url)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[FloorConversation], activities=[sender.send]):
        print(READY, flush=True)
        await asyncio.Event().wait()


async def _rates(pids: dict[str, int], seconds: float) -> dict[str, float]:
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    await asyncio.sleep(seconds)
    return {role: (cpu_seconds(pid) - before[role]) / seconds for role, pid in pids.items()}


async def measure(count: int, rate: float, sends: int) -> dict[str, Any]:
    fake = FakeTwilio()
    async with dev_server() as env, serving(fake) as api_url:
        address = env.client.service_client.config.target_host
        server = temporal_server_pid(int(address.rpartition(":")[2]))
        if server is None:
            raise RuntimeError(f"no Temporal server process found listening at {address}")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.temporal_floor", "--worker", address, api_url, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            if (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip() != READY:
                raise RuntimeError("the floor's worker did not start")
            pids = {"server": server, "worker": proc.pid}
            # A few conversations first: the worker's first tasks load the sandbox's modules.
            await _start(env.client, 20, 50.0, sends)
            await asyncio.sleep(2.0)
            idle = await _rates(pids, IDLE_SECONDS)
            before = {role: cpu_seconds(pid) for role, pid in pids.items()}
            client_before, sent_before = time.process_time(), fake.total
            began = time.monotonic()
            ids = await _start(env.client, count, rate, sends)
            # Until both are idle again: every conversation has had its task (checked below).
            deadline = time.monotonic() + SETTLE_LIMIT
            while time.monotonic() < deadline and any(
                used > max(SETTLED, 2 * idle[role]) for role, used in (await _rates(pids, 1.0)).items()
            ):
                pass
            elapsed = time.monotonic() - began
            # This process starts the conversations; with sends it also serves the fake provider.
            client = time.process_time() - client_before
            used = {role: cpu_seconds(pid) - before[role] - idle[role] * elapsed for role, pid in pids.items()}
            unfinished = await _without_a_completed_task(env.client, ids[:: max(1, count // 50)])
        finally:
            proc.terminate()
            await proc.wait()
    per = {role: round(seconds * 1000 / count, 2) for role, seconds in used.items()}
    if not sends:
        per["starter"] = round(client * 1000 / count, 2)
    return {
        "machine": describe(),
        "conversations": count,
        "rate": rate,
        "sends": sends,
        "sent": fake.total - sent_before,
        "seconds": round(elapsed, 1),
        "idle_cpu_per_second": {role: round(value, 4) for role, value in idle.items()},
        "cpu_ms_per_conversation": per,
        "total_ms": round(sum(per.values()), 2),
        "sampled_without_a_completed_task": unfinished,
    }


async def _start(client: Client, count: int, rate: float, sends: int) -> list[str]:
    """Signal-with-start `count` new conversations at `rate` a second, each with one message."""
    ids = [f"floor-{uuid.uuid4().hex}" for _ in range(count)]
    start = time.monotonic()
    pending: list[asyncio.Task[Any]] = []
    for index, workflow_id in enumerate(ids):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(
            asyncio.create_task(
                client.start_workflow(
                    FloorConversation.run,
                    args=[f"+1555{index:07d}", sends],
                    id=workflow_id,
                    task_queue=TASK_QUEUE,
                    start_signal="message",
                    start_signal_args=["hi"],
                )
            )
        )
    await asyncio.gather(*pending)
    return ids


async def _without_a_completed_task(client: Client, ids: list[str]) -> int:
    """How many of `ids` have not yet had a workflow task completed (0 when the count is right)."""
    missing = 0
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        if not any(event.HasField("workflow_task_completed_event_attributes") for event in history.events):
            missing += 1
    return missing


FLOOR_RATE = 300.0  # the burst issue 22 names


async def run(count: int) -> dict[str, Any]:
    """The bench's scenario 10: the floor without sends, then with the demo's first turn's two."""
    print(f"\n== 10. Temporal's floor: {count} conversations at {FLOOR_RATE:g}/s, without and with two sends ==")
    result: dict[str, Any] = {}
    for name, sends in (("no_sends", 0), ("two_sends", 2)):
        figures = await measure(count, FLOOR_RATE, sends)
        figures.pop("machine")
        result[name] = figures
        cpu = ", ".join(f"{role} {ms:g}" for role, ms in figures["cpu_ms_per_conversation"].items())
        print(f"  {sends} sends: CPU ms per conversation {cpu}; total {figures['total_ms']:g}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.temporal_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="conversations started (default 1000)")
    parser.add_argument("--rate", type=float, default=FLOOR_RATE, help="started a second (default 300)")
    parser.add_argument("--sends", type=int, default=0, help="messages each conversation sends (default 0)")
    parser.add_argument("--worker", nargs=2, metavar=("ADDRESS", "API_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(serve_worker(*args.worker))
        return
    result = asyncio.run(measure(args.count, args.rate, args.sends))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
