"""`chatflow dev` as a user starts it, in a temporary folder: for the start-up and dev-burst scenarios."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from chatflow.runtime.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0


# A start that exits before it is ready is tried again on new ports, this many times in all: a
# port picked free can be taken by another process (a test suite on 4 processes, the Temporal
# server's own ports beside the one given) before `chatflow dev` binds it, and it then exits 2.
STARTS = 3


class DevExited(RuntimeError):
    """`chatflow dev` exited before it was ready."""


@asynccontextmanager
async def chatflow_dev(
    config: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> AsyncIterator[tuple[str, float]]:
    """`chatflow dev` on `config` (chatflow.toml's text), until it answers /readyz: its web URL and
    the seconds it took (the start that succeeded); stopped with Ctrl-C (SIGINT) afterwards, as a
    developer stops it."""
    with tempfile.TemporaryDirectory(prefix="chatflow-bench-dev-") as folder:
        (Path(folder) / "chatflow.toml").write_text(config)
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("CHATFLOW_", "TWILIO_"))}
        environment["PYTHONPATH"] = str(ROOT)
        environment.update(env or {})
        errors = Path(folder) / "dev.err"
        for attempt in range(1, STARTS + 1):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            environment["CHATFLOW_PUBLIC_URL"] = (env or {}).get("CHATFLOW_PUBLIC_URL", url)
            output = log.open("ab") if log else errors.open("wb")
            try:
                began = time.perf_counter()
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "chatflow",
                    "dev",
                    "--config",
                    "chatflow.toml",
                    "--port",
                    str(port),
                    "--temporal-port",
                    str(free_port()),
                    "--ui-port",
                    str(free_port()),
                    "--redis-port",
                    str(free_port()),
                    "--data-dir",
                    str(Path(folder) / f"data-{attempt}"),
                    cwd=folder,
                    env=environment,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                )
                try:
                    ready = await _ready(proc, url)
                except DevExited as exited:
                    said = "" if log else errors.read_text(errors="replace").strip().splitlines()[-1:]
                    if attempt == STARTS:
                        raise DevExited(f"{exited}: {said[0] if said else 'see its log'}") from None
                    continue
                try:
                    yield url, ready - began
                finally:
                    await stop_process(proc)
                return
            finally:
                output.close()


async def _ready(proc: asyncio.subprocess.Process, url: str) -> float:
    deadline = time.perf_counter() + READY_TIMEOUT
    async with httpx.AsyncClient() as http:
        while time.perf_counter() < deadline:
            if proc.returncode is not None:
                raise DevExited(f"chatflow dev exited ({proc.returncode}) before it was ready")
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return time.perf_counter()
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)
    raise RuntimeError("chatflow dev did not become ready")


async def stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
