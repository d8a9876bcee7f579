"""The landing page at `/`: links to what the web app serves, the dashboard only when it is there."""

import re

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.web.landing import landing_routes
from tests.flows import FLOWS
from tests.helpers import running_app, started_services, web_client

CONFIG = Config(
    numbers=[
        NumberBinding(address=Address("console", "+15005550006"), provider="console", channel="console", flow="parrot")
    ],
    flow_modules=[],
    settings=Settings(api_key="k"),
)


def links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', html)


async def test_the_app_links_its_api_health_metrics_and_dashboard(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    async with started_services(CONFIG, FLOWS, client=dev_env.client, redis=redis) as services:
        async with running_app(services) as web:
            page = await web.get("/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert links(page.text) == ["/dashboard", "/openapi.json", "/healthz", "/readyz", "/metrics"]
            for path in links(page.text)[1:]:  # each link leads somewhere (the dashboard may ask to log in)
                assert (await web.get(path)).status_code in (200, 503), path
            assert "chatflow chat parrot --url http://test" in page.text


async def test_the_dashboard_is_linked_only_when_served() -> None:
    bare = Starlette(routes=landing_routes(CONFIG))
    async with web_client(bare, "http://127.0.0.1:8000") as web:
        page = await web.get("/")
    assert links(page.text) == ["/openapi.json", "/healthz", "/readyz", "/metrics"]
    assert "<code>chatflow chat parrot</code>" in page.text  # the default URL needs no --url

    served = Starlette(
        routes=[*landing_routes(CONFIG, dashboard="/ops"), Route("/ops", lambda r: PlainTextResponse(""))]
    )
    async with web_client(served) as web:
        assert links((await web.get("/")).text)[0] == "/ops"


async def test_no_console_number_no_chat_section() -> None:
    bare = Starlette(routes=landing_routes(Config(numbers=[], flow_modules=[], settings=Settings())))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://x") as web:
        assert "Talk to a flow" not in (await web.get("/")).text
