"""The servers `chatflow dev` embeds: Temporal's dev server and Valkey, with data kept on disk.

Both keep their data in the dev data folder (`.chatflow/` by default), so conversations and the
console history survive a restart of `chatflow dev`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from temporalio.client import Client

from chatflow.domain.errors import StartupError
from chatflow.runtime.binaries import temporal_cli, valkey_server
from chatflow.runtime.processes import ChildProcess

START_TIMEOUT = 60.0


class EmbeddedServerError(StartupError):
    pass


@dataclass
class EmbeddedTemporal:
    process: ChildProcess
    address: str
    ui_url: str
    db_path: Path


@dataclass
class EmbeddedValkey:
    process: ChildProcess
    url: str
    data_dir: Path


async def _wait_ready(child: ChildProcess, probe: Callable[[], Awaitable[None]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        if not child.running():
            raise EmbeddedServerError(f"{what} exited at start (log {child.log_path}):\n{child.log_tail()}")
        try:
            await probe()
            return
        except Exception:  # noqa: BLE001 - not up yet
            if loop.time() > deadline:
                child.stop()
                raise EmbeddedServerError(
                    f"{what} did not start in {START_TIMEOUT:.0f}s (log {child.log_path})"
                ) from None
            await asyncio.sleep(0.1)


async def start_temporal(data_dir: Path, host: str, port: int, ui_port: int) -> EmbeddedTemporal:
    db_path = data_dir / "temporal.db"
    child = ChildProcess(
        "temporal",
        [
            temporal_cli(),
            "server",
            "start-dev",
            "--db-filename",
            str(db_path),
            "--ip",
            host,
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
        ],
        data_dir / "temporal.log",
    )
    address = f"{host}:{port}"

    async def probe() -> None:
        await Client.connect(address)

    try:
        await _wait_ready(child, probe, f"Temporal dev server on {address}")
    except BaseException:
        child.stop()
        raise
    return EmbeddedTemporal(child, address, f"http://{host}:{ui_port}", db_path)


# What `chatflow dev`'s Valkey may hold. `noeviction`: once full it refuses writes (a webhook
# answers 503 and the provider retries) rather than drop a key, which could be a buffered message,
# an opt-out or a send's ledger entry. Production: the same policy, with the limit sized for the
# buffer's worst backlog (README, "Bounded Redis").
DEV_MAXMEMORY = "256mb"
MAXMEMORY_POLICY = "noeviction"


async def start_valkey(
    data_dir: Path, host: str, port: int, *, maxmemory: str = DEV_MAXMEMORY, extra: Sequence[str] = ()
) -> EmbeddedValkey:
    """`extra`: more valkey-server options (the fault suite's cluster nodes)."""
    folder = data_dir / "valkey"
    folder.mkdir(parents=True, exist_ok=True)
    child = ChildProcess(
        "valkey",
        [
            valkey_server(),
            "--bind",
            host,
            "--port",
            str(port),
            "--dir",
            str(folder),
            # Append-only file: every write is on disk within a second, and on SIGTERM.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--maxmemory",
            maxmemory,
            "--maxmemory-policy",
            MAXMEMORY_POLICY,
            *extra,
        ],
        data_dir / "valkey.log",
        cwd=folder,
    )
    url = f"redis://{host}:{port}/0"

    async def probe() -> None:
        client = Redis.from_url(url)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        await _wait_ready(child, probe, f"Valkey on {host}:{port}")
    except BaseException:
        child.stop()
        raise
    return EmbeddedValkey(child, url, folder)
