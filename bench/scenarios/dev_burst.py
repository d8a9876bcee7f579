"""9. The burst against `chatflow dev`: the one-command stack a developer runs, as it starts.

`chatflow dev` (its embedded Temporal dev server, kept in SQLite in its data folder, Valkey, and
the worker and the web app, each a process of its own) with a Twilio number bound to the demo flow, and the
Twilio API pointed at a fake provider in the bench process. Then the same bursts as scenario 5
(new customers at each rate, open loop), counted the same way. Run after the shared stack has
stopped, so the two do not share the machine's two cores.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from bench.config import ACCOUNT_SID, AUTH_TOKEN, TOML
from bench.dev import chatflow_dev
from bench.fake_provider import FakeTwilio, serving
from bench.http import WEBHOOK_PATH
from bench.scenarios.burst import line, measure
from bench.sizes import Sizes


async def run(sizes: Sizes, logs: Path) -> dict[str, Any]:
    rates = sizes.dev_burst_rates
    print(
        f"\n== 9. burst against chatflow dev: {', '.join(f'{r:g}' for r in rates)} new customers/s for "
        f"{sizes.burst_seconds:g} s ==",
        flush=True,
    )
    fake = FakeTwilio()
    customers = (f"+1628{n:07d}" for n in itertools.count(1))
    async with serving(fake) as api_url:
        env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "CHATFLOW_TWILIO_API_URL": api_url}
        logs.mkdir(parents=True, exist_ok=True)
        async with chatflow_dev(TOML, env, logs / "chatflow-dev.log") as (url, ready_seconds):
            result: dict[str, Any] = {
                "seconds": sizes.burst_seconds,
                "ready_seconds": round(ready_seconds, 2),
                "ours": [],
            }
            for rate in rates:
                await fake.quiet(1.0)
                batch = [next(customers) for _ in range(max(1, round(rate * sizes.burst_seconds)))]
                figures = await measure(fake, url + WEBHOOK_PATH, batch, rate, sizes.burst_drain)
                result["ours"].append(figures)
                print(line("dev", figures), flush=True)
    return result
