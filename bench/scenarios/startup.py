"""6. Start-up: from `chatflow dev` to a ready stack, against the bare Temporal dev server.

`chatflow dev` starts the same Temporal dev server plus Valkey, the worker and the web app; the
raw figure is that server alone, until a client can talk to it. The ratio is what the rest of
the stack adds to the wait before a developer can chat.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from temporalio.client import Client

from bench.dev import READY_TIMEOUT, chatflow_dev, stop_process
from chatflow.runtime.binaries import temporal_cli
from chatflow.runtime.processes import free_port

CONFIG = """
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "+15005550006"
provider = "console"
flow = "demo"
"""


async def _chatflow_dev() -> float:
    async with chatflow_dev(CONFIG) as (_, seconds):
        return seconds


async def _temporal_alone() -> float:
    port = free_port()
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        temporal_cli(),
        "server",
        "start-dev",
        "--headless",
        "--port",
        str(port),
        "--ip",
        "127.0.0.1",
        "--log-level",
        "error",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - began < READY_TIMEOUT:
            try:
                client = await Client.connect(f"127.0.0.1:{port}")
                await client.count_workflows()
                return time.perf_counter() - began
            except Exception:  # noqa: BLE001 - not up yet, whatever the error
                await asyncio.sleep(0.02)
        raise RuntimeError("temporal server start-dev did not become ready")
    finally:
        await stop_process(proc)


async def run(runs: int) -> dict[str, Any]:
    print(f"\n== 6. start-up, median of {runs} ==", flush=True)
    raw = [await _temporal_alone() for _ in range(runs)]
    ours = [await _chatflow_dev() for _ in range(runs)]
    result = {
        "runs": runs,
        "raw_seconds": round(statistics.median(raw), 3),
        "ours_seconds": round(statistics.median(ours), 3),
    }
    result["ratio"] = round(result["ours_seconds"] / result["raw_seconds"], 3)
    print(
        f"  temporal server start-dev alone {result['raw_seconds']:.2f} s; chatflow dev to /readyz "
        f"{result['ours_seconds']:.2f} s  -> ratio {result['ratio']:.2f}",
        flush=True,
    )
    return result
