"""The dashboard as operators meet it: the web app served by uvicorn on a free port (Services,
as `chatflow web` runs it), a worker running the demo flow and a journey with business events,
the console channel for customers, and Debian's Chromium driven by Playwright.

Shared by the browser tests and `python -m tests.chatflow.web.dashboard.screenshots`.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from playwright.async_api import BrowserContext, async_playwright
from redis.asyncio import Redis
from temporalio.client import Client

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.runtime.processes import bind, free_port
from chatflow.runtime.services import Services
from conversations.demo import Demo
from tests.flows import Payment
from tests.helpers import running_worker

KEY = "dashboard-key"
DEMO_NUMBER = "+15005550006"  # customers text the demo flow here
JOURNEY_NUMBER = "+15005550007"  # the business starts payment journeys from here
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def dashboard_config(api_key: str = KEY) -> Config:
    return Config(
        numbers=[
            NumberBinding(
                address=Address("tel", DEMO_NUMBER), provider="console", channel="sms", flow="demo", rate=50.0
            ),
            NumberBinding(
                address=Address("tel", JOURNEY_NUMBER), provider="console", channel="sms", flow="payment", rate=50.0
            ),
        ],
        flow_modules=[],
        settings=Settings(api_key=api_key),
    )


@dataclass
class Served:
    url: str
    services: Services
    http: httpx.AsyncClient  # a plain client of the served app (no dashboard session)

    async def say(self, customer: str, text: str, number: str = DEMO_NUMBER) -> None:
        """A customer's message, through the console channel as `chatflow chat` sends it."""
        answer = await self.http.post("/console/messages", json={"from": customer, "to": number, "text": text})
        assert answer.status_code == 202, answer.text

    async def start_payment(self, customer: str) -> str:
        """The business starts the payment journey (it waits for a `payment_succeeded` event)."""
        answer = await self.http.post(
            "/api/conversations",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"flow": "payment", "to": customer, "from": JOURNEY_NUMBER},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    async def event(self, conversation: str, name: str) -> None:
        """The business reports an event into the conversation."""
        answer = await self.http.post(
            f"/api/conversations/{conversation}/events", headers={"Authorization": f"Bearer {KEY}"}, json={"name": name}
        )
        assert answer.status_code == 202, answer.text

    async def view(self, conversation: str) -> dict[str, object]:
        """The conversation as the journeys API shows it ({} while it has not started)."""
        answer = await self.http.get(f"/api/conversations/{conversation}", headers={"Authorization": f"Bearer {KEY}"})
        if answer.status_code == 404:
            return {}
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def until(self, conversation: str, timeout: float = 30.0, **expected: object) -> dict[str, object]:
        """The conversation (journeys API) once it shows `expected`, e.g. step="menu"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            view = await self.view(conversation)
            if all(view.get(k) == v for k, v in expected.items()):
                return view
            if loop.time() > deadline:
                raise AssertionError(f"{conversation} never showed {expected}: {view}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def served_dashboard(client: Client, redis: Redis, config: Config | None = None) -> AsyncIterator[Served]:
    """The app under uvicorn on a free port and a worker, both from one `Services`."""
    config = config or dashboard_config()
    async with httpx.AsyncClient() as resources:
        services = await Services.start(
            config,
            [Demo, Payment],
            client=client,
            redis=redis,
            http=resources,
            task_queue=f"dashboard-{uuid.uuid4().hex}",
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stop = asyncio.Event()
        async with running_worker(services):
            serving = asyncio.create_task(services.serve_web(bind("127.0.0.1", port), stop))
            try:
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    for _ in range(500):
                        if serving.done():
                            serving.result()  # why the app could not start
                        try:
                            await http.get("/healthz")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.02)
                    yield Served(url, services, http)
            finally:
                stop.set()
                await serving


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[BrowserContext]:
    """Debian's Chromium (never a downloaded one), headless, with a new empty profile."""
    with tempfile.TemporaryDirectory(prefix="chatflow-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                yield context
            finally:
                await context.close()
