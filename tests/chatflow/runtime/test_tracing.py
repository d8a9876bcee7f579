"""Tracing is optional: off by default, on with CHATFLOW_OTEL=1 and the `otel` extra.

Each case runs in a fresh interpreter because turning tracing on is process-wide (the global
tracer provider, httpx instrumentation).
"""

import subprocess
import sys

import pytest

from tests.chatflow.runtime.devstack import chatflow_env

PROBE = """
{prelude}
from chatflow.domain.config import ConfigError
from chatflow.runtime.tracing import asgi_middleware, temporal_interceptors
try:
    print([type(i).__name__ for i in temporal_interceptors()], len(asgi_middleware()))
except ConfigError as error:
    print("ConfigError:", error)
"""


def probe(prelude: str = "", **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(prelude=prelude)],
        capture_output=True,
        text=True,
        env=chatflow_env(**env),
        check=True,
    )
    return done.stdout.strip()


def test_off_by_default() -> None:
    assert probe() == "[] 0"


def test_on_without_the_extra_says_how_to_install_it() -> None:
    # Make OpenTelemetry unimportable, as in an install without the extra.
    hide = "import sys; sys.modules['opentelemetry'] = None"
    assert probe(hide, CHATFLOW_OTEL="1").startswith(
        "ConfigError: CHATFLOW_OTEL=1 needs the otel extra: pip install 'chatflow[otel]'"
    )


def test_on_with_the_extra_traces_temporal_calls_and_requests() -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.instrumentation.asgi")
    pytest.importorskip("opentelemetry.instrumentation.httpx")
    assert probe(CHATFLOW_OTEL="1") == "['TracingInterceptor'] 1"
