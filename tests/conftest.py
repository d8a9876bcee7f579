"""Shared fixtures: real Temporal servers from the wheels, one per test session."""

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow.testing import dev_server, time_skipping


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server() as env:
        yield env
