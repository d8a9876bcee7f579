"""Optional OpenTelemetry tracing: webhook -> Temporal (signal-with-start) -> workflow -> activity -> provider.

Off unless CHATFLOW_OTEL=1, and then it needs the `otel` extra (`pip install 'chatflow[otel]'`);
nothing here imports OpenTelemetry otherwise, so it stays an optional dependency. Spans go to the
OTLP exporter configured by the standard OTEL_* environment variables.

The ASGI middleware opens a span per request; Temporal's TracingInterceptor on the client carries
its context into the workflow and activities (a client interceptor that is also a worker
interceptor is used by workers built on that client); httpx instrumentation traces provider calls.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from starlette.middleware import Middleware

from chatflow.domain.errors import ConfigError

EXTRA_HINT = "CHATFLOW_OTEL=1 needs the otel extra: pip install 'chatflow[otel]'"
_configured = False


def enabled() -> bool:
    return os.environ.get("CHATFLOW_OTEL", "").lower() in ("1", "true", "yes")


def _configure() -> None:
    """Install an SDK tracer provider (unless the application did) and instrument httpx, once."""
    global _configured
    if _configured:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        raise ConfigError(f"{EXTRA_HINT} ({error})") from None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        service = os.environ.get("OTEL_SERVICE_NAME", "chatflow")
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            pass  # no exporter installed: spans still propagate, to whoever exports them
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    _configured = True


def _from_extra(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise ConfigError(f"{EXTRA_HINT} ({error})") from None


def temporal_interceptors() -> list[Any]:
    """Interceptors for `Client.connect`: Temporal's TracingInterceptor when tracing is on."""
    if not enabled():
        return []
    _configure()
    return [_from_extra("temporalio.contrib.opentelemetry", "TracingInterceptor")()]


def asgi_middleware() -> list[Middleware]:
    if not enabled():
        return []
    _configure()
    return [Middleware(_from_extra("opentelemetry.instrumentation.asgi", "OpenTelemetryMiddleware"))]
