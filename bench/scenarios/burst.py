"""5. Burst: new customers arrive open-loop at a fixed rate; is everyone answered, once, in order?

The load generator (`bench.burst_load`, a process of its own) posts one signed webhook per new
customer at each rate for a few seconds, whatever the server is doing. Per path and rate:
requests refused (a non-2xx status, or no answer within Twilio's 15 s webhook timeout), the
acknowledgement time of the accepted ones (p50/p99, from when each request was due, so time a
request spent waiting for a connection counts), then, at the fake provider, how long until every
customer had the greeting and the menu, and how many got a reply twice, out of order, or not at all.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from bench.config import AUTH_TOKEN, NUMBER
from bench.fake_provider import FakeTwilio
from bench.sizes import Sizes
from bench.stack import ROOT, Stack
from bench.stats import percentile, summary_ms

# The demo's first turn: the greeting, then the menu (each a prefix of what is sent).
FIRST_TURN = ["Hi! I'm the chatflow demo bot.", "What can I do for you?"]
REQUEST_TIMEOUT = 15.0  # Twilio gives up on a webhook after 15 s (error 11205): refused
CONNECTIONS = 4000  # requests the generator keeps in flight at most (beyond, they wait: counted in the ack)


async def generate(
    url: str,
    customers: list[str],
    rate: float,
    *,
    token: str = AUTH_TOKEN,
    number: str = NUMBER,
    beside: tuple[str, list[str]] | None = None,
) -> list[list[Any]]:
    """Run the load generator; one row per request: customer, due, went, answered, status, error,
    and "beside" for the requests of `beside` (a URL and its customers, posted at the same times)."""
    job: dict[str, Any] = {
        "url": url,
        "customers": customers,
        "rate": rate,
        "text": "hi",
        "token": token,
        "number": number,
        "timeout": REQUEST_TIMEOUT,
        "connections": CONNECTIONS,
    }
    if beside:
        job["beside"] = {"url": beside[0], "customers": beside[1]}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.burst_load",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(json.dumps(job).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"the burst generator failed ({proc.returncode}): {err.decode()[-2000:]}")
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def measure(
    fake: FakeTwilio,
    url: str,
    customers: list[str],
    rate: float,
    drain_seconds: float,
    *,
    beside: str = "",
    **generator: str,
) -> dict[str, Any]:
    """One burst at `rate` for len(customers)/rate seconds, and how it was answered; with `beside`
    (the floor's URL), the same burst of strangers posted to it at the same times: `floor_beside`."""
    rows = await generate(
        url, customers, rate, beside=(beside, _strangers(len(customers))) if beside else None, **generator
    )
    floor_rows = [row for row in rows if row[6] == "beside"]
    rows = [row for row in rows if row[6] != "beside"]
    accepted = [row for row in rows if 200 <= row[4] < 300]
    refused = [row for row in rows if not 200 <= row[4] < 300]
    start = min(row[1] for row in rows)
    went = [row[2] for row in rows]
    drained = await fake.all_sent([row[0] for row in accepted], len(FIRST_TURN), drain_seconds)
    await asyncio.sleep(1.0)  # a reply sent twice usually follows within the second
    # Over every customer of the burst: one refused and never answered is a customer lost.
    turns = {customer: fake.turn(customer, FIRST_TURN) for customer in customers}
    good = [c for c in customers if turns[c].answered and turns[c].in_order and not turns[c].duplicates]
    answered = [c for c in customers if turns[c].answered]
    finished = [fake.sent[c][len(FIRST_TURN) - 1] for c in answered]
    first_reply = {row[0]: fake.sent[row[0]][0] - row[1] for row in accepted if fake.count(row[0])}
    reasons = Counter(str(row[4]) if row[4] else f"no answer in {REQUEST_TIMEOUT:g} s" for row in refused)
    return {
        "offered_per_second": rate,
        "sent": len(rows),
        "achieved_per_second": round((len(rows) - 1) / (max(went) - min(went)), 1) if len(rows) > 1 else float(rate),
        "generator_lag_ms_p99": round(percentile([row[2] - row[1] for row in rows], 99) * 1000, 2),
        "accepted": len(accepted),
        "refused": len(refused),
        "refused_by": dict(reasons),
        "first_error": next((row[5] for row in refused if row[5]), ""),
        "ack": summary_ms([row[3] - row[1] for row in accepted]),
        "answered": len(answered),
        "unanswered": len(customers) - len(answered),
        "duplicates": sum(turns[c].duplicates for c in customers),
        "out_of_order": sum(1 for c in answered if not turns[c].in_order),
        "answered_once_in_order": len(good),
        "all_answered_once_in_order": len(good) == len(customers),
        "refused_but_answered": sum(1 for row in refused if turns[row[0]].answered),
        # From the first request's due time to the last reply of the last customer answered.
        # (None when some never were: refused and lost, or not answered within the drain time.)
        "seconds_to_all_answered": round(max(finished) - start, 2) if len(answered) == len(customers) else None,
        "seconds_to_accepted_answered": round(max(finished) - start, 2) if drained and finished else None,
        "answer": summary_ms(list(first_reply.values())),
        **({"floor_beside": _acknowledgements(floor_rows, rate)} if beside else {}),
    }


def line(path: str, figures: dict[str, Any]) -> str:
    done = figures["seconds_to_all_answered"]
    return (
        f"  {path:>8} {figures['offered_per_second']:>6g}/s: sent {figures['sent']}, refused {figures['refused']}, "
        f"ack p50 {figures['ack']['p50_ms']:.1f} p99 {figures['ack']['p99_ms']:.1f} ms; "
        f"{figures['answered_once_in_order']}/{figures['sent']} answered once in order "
        f"(dup {figures['duplicates']}, out of order {figures['out_of_order']}, unanswered {figures['unanswered']})"
        f"{f', all in {done:.1f} s' if done is not None else ', NOT all answered'}"
    )


async def acknowledged(url: str, customers: list[str], rate: float) -> dict[str, Any]:
    """A burst whose answers nobody waits for: refused and acknowledgement times only."""
    return _acknowledgements(await generate(url, customers, rate), rate)


def _acknowledgements(rows: list[list[Any]], rate: float) -> dict[str, Any]:
    accepted = [row for row in rows if 200 <= row[4] < 300]
    return {
        "offered_per_second": rate,
        "sent": len(rows),
        "refused": len(rows) - len(accepted),
        "ack": summary_ms([row[3] - row[1] for row in accepted]),
    }


def floor_line(path: str, figures: dict[str, Any]) -> str:
    return (
        f"  {path:>8} {figures['offered_per_second']:>6g}/s: sent {figures['sent']}, refused {figures['refused']}, "
        f"ack p50 {figures['ack']['p50_ms']:.1f} p99 {figures['ack']['p99_ms']:.1f} ms"
    )


async def run(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    """Each rate against both paths, each with the floor (`bench.floor`) fired beside it: the same
    burst at the same times, sharing the machine with the path's web tier, worker and server as
    the path's own webhook does; then against the floor alone, with the machine otherwise quiet."""
    rates = sizes.burst_rates
    print(
        f"\n== 5. burst: {', '.join(f'{r:g}' for r in rates)} new customers/s for {sizes.burst_seconds:g} s ==",
        flush=True,
    )
    result: dict[str, Any] = {
        "seconds": sizes.burst_seconds,
        "rates": list(rates),
        "baseline": [],
        "ours": [],
        "floor": [],
    }
    floor = await stack.start_floor()
    began = time.perf_counter()
    for index, rate in enumerate(rates):
        count = max(1, round(rate * sizes.burst_seconds))
        order = stack.paths if index % 2 == 0 else stack.paths[::-1]
        for path in order:
            await stack.fake.quiet(1.0)  # the previous burst's backlog is done
            customers = [stack.new_customer() for _ in range(count)]
            cpu = stack.cpu(path)
            figures = await measure(stack.fake, stack.url(path), customers, rate, sizes.burst_drain, beside=floor)
            # From the burst's start until every customer was answered: CPU per new customer.
            figures["cpu_ms_per_customer"] = stack.cpu_ms_per(path, cpu, count)
            result[path].append(figures)
            print(
                line(path, figures)
                + "; CPU ms per customer "
                + ", ".join(f"{role} {ms:g}" for role, ms in figures["cpu_ms_per_customer"].items()),
                flush=True,
            )
            print(floor_line("floor beside", figures["floor_beside"]), flush=True)
        await stack.fake.quiet(1.0)
        quiet = await acknowledged(floor, _strangers(count), rate)
        result["floor"].append(quiet)
        print(floor_line("floor", quiet), flush=True)
    result["seconds_taken"] = round(time.perf_counter() - began, 1)
    return result


_stranger = iter(range(1, 10**9))


def _strangers(count: int) -> list[str]:
    """Senders for the floor: nobody answers them, so any numbers do."""
    return [f"+1999{next(_stranger):07d}" for _ in range(count)]
