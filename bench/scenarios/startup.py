"""6. Start-up: from `chatflow dev` to a ready stack, against the bare Temporal dev server.

`chatflow dev` starts the same Temporal dev server plus Valkey, the worker and the web app; the
raw figure is that server alone, until a client can talk to it. The ratio is what the rest of
the stack adds to the wait before a developer can chat.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from chatflow.runtime.binaries import temporal_cli
from chatflow.runtime.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0
CONFIG = """
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "+15005550006"
provider = "console"
flow = "demo"
"""


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _chatflow_dev() -> float:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "chatflow.toml").write_text(CONFIG)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATFLOW_")}
        env["PYTHONPATH"] = str(ROOT)
        began = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatflow", "dev", "--config", "chatflow.toml", "--port", str(port),
            "--temporal-port", str(free_port()), "--ui-port", str(free_port()),
            "--redis-port", str(free_port()), "--data-dir", str(Path(folder) / "data"),
            cwd=folder, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient() as http:
                while time.perf_counter() - began < READY_TIMEOUT:
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            return time.perf_counter() - began
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.02)
            raise RuntimeError("chatflow dev did not become ready")
        finally:
            await _stop(proc)


async def _temporal_alone() -> float:
    port = free_port()
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        temporal_cli(), "server", "start-dev", "--headless", "--port", str(port), "--ip", "127.0.0.1",
        "--log-level", "error", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
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
        await _stop(proc)


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
