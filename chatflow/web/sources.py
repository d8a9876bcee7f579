"""Every source's route, served: `POST /webhooks/<source name>`.

The source (a provider plug-in) verifies the signature and reads the events; the intake acts on
them. This module does the HTTP around it as `chatflow.web.webhooks` does for channels: the one
body reader, `Refused` as its 4xx (a signature that does not hold: 403, nothing changes), the
intake's failures as 503 so the sender retries, each request counted and timed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatflow.domain.channel import WebhookRequest
from chatflow.domain.errors import Forbidden, Refused
from chatflow.journeys.sources import ConfiguredSource, SourceIntake
from chatflow.web.body import read_body
from chatflow.web.errors import refused_response
from chatflow.web.metrics import WEBHOOK_SECONDS, WEBHOOKS, outcome
from chatflow.web.webhooks import request_url

MAX_BODY = 256 * 1024  # Stripe's events are a few KiB; a Mixpanel cohort page may be larger


def source_path(name: str) -> str:
    return f"/webhooks/{name}"


def source_routes(sources: Sequence[ConfiguredSource], intake: SourceIntake, *, public_url: str) -> list[Route]:
    return [
        Route(source_path(configured.name), _endpoint(configured, intake, public_url), methods=["POST"])
        for configured in sources
    ]


def _endpoint(
    configured: ConfiguredSource, intake: SourceIntake, public_url: str
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        status = 500  # what an exception escaping below amounts to
        try:
            response = await _serve(configured, intake, request, public_url)
            status = response.status_code
            return response
        finally:
            WEBHOOKS.labels(configured.name, outcome(status)).inc()
            WEBHOOK_SECONDS.labels(configured.name).observe(time.perf_counter() - started)

    return endpoint


async def _serve(configured: ConfiguredSource, intake: SourceIntake, request: Request, public_url: str) -> Response:
    try:
        body = await read_body(request, limit=MAX_BODY, expected=configured.content_type)
        webhook = WebhookRequest(
            method=request.method,
            url=request_url(request, public_url),
            headers={name.lower(): value for name, value in request.headers.items()},
            query=dict(request.query_params),
            body=body,
        )
        try:
            events = configured.source.verify(webhook)
        except Forbidden:
            await intake.refused(configured.name)
            raise
        outcomes = await intake.receive(configured, events)
        return JSONResponse({"events": [asdict(found) for found in outcomes]})
    except Refused as error:
        return refused_response(error)
