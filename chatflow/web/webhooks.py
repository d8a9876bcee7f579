"""Every channel's routes, served: body read, request handed to the channel, messages to the edge.

The channel (a provider plug-in) verifies and parses; this module does the HTTP around it, the
same way for every channel: the one body reader, `Refused` errors as their 4xx, the edge's
failures as 503 so the provider retries (never a 500), and each inbound webhook counted and timed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatflow.domain.channel import Channel, Received, StatusReport, WebhookAnswer, WebhookRequest, WebhookRoute
from chatflow.domain.errors import Refused, Unavailable
from chatflow.domain.messages import InboundMessage
from chatflow.edge.inbound import Receive
from chatflow.edge.statuses import Report
from chatflow.web.access import ApiKey
from chatflow.web.body import read_body
from chatflow.web.errors import refused_response
from chatflow.web.metrics import WEBHOOK_SECONDS, WEBHOOKS, outcome

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
INBOUND = "POST"  # a channel's POST routes receive from customers and providers: they are counted


def channel_routes(
    channels: Mapping[str, Channel],
    receive: Receive,
    report: Report,
    *,
    public_url: str,
    locked: Mapping[str, ApiKey] | None = None,
) -> list[Route]:
    """A Starlette route for each route of each channel.

    `public_url` (CHATFLOW_PUBLIC_URL) is where providers call us; behind a proxy it is the URL
    they signed, not the one this process sees. "" uses the request's own URL. The channels
    named in `locked` are served only to requests with the API key.
    """
    locked = locked or {}
    return [
        Route(
            route.path,
            _locked(locked[name], endpoint) if name in locked else endpoint,
            methods=[route.method],
        )
        for name, channel in channels.items()
        for route in channel.routes()
        for endpoint in [_endpoint(channel, route, receive, report, public_url)]
    ]


def _locked(key: ApiKey, endpoint: Endpoint) -> Endpoint:
    async def locked(request: Request) -> Response:
        try:
            await key.check(request)
        except Refused as refused:
            return refused_response(refused)
        return await endpoint(request)

    return locked


def _endpoint(channel: Channel, route: WebhookRoute, receive: Receive, report: Report, public_url: str) -> Endpoint:
    # The channel's series, looked up once rather than on every webhook.
    counted = {result: WEBHOOKS.labels(channel.name, result) for result in ("accepted", "rejected", "error")}
    timed = WEBHOOK_SECONDS.labels(channel.name)

    async def endpoint(request: Request) -> Response:
        if route.method != INBOUND:
            return await _serve(channel, route, request, receive, report, public_url)
        started = time.perf_counter()
        status = 500  # what an exception escaping below amounts to
        try:
            response = await _serve(channel, route, request, receive, report, public_url)
            status = response.status_code
            return response
        finally:
            counted[outcome(status)].inc()
            timed.observe(time.perf_counter() - started)

    return endpoint


async def _serve(
    channel: Channel, route: WebhookRoute, request: Request, receive: Receive, report: Report, public_url: str
) -> Response:
    try:
        body = (
            await read_body(request, limit=route.max_bytes, expected=route.content_type) if route.content_type else b""
        )
        received = await route.handle(
            WebhookRequest(
                method=request.method,
                url=request_url(request, public_url),
                # From the scope as the server gave it: Starlette's Headers and QueryParams would
                # be built only to be copied into these dicts.
                headers={
                    name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.scope["headers"]
                },
                query=dict(request.query_params) if request.scope.get("query_string") else {},
                body=body,
            )
        )
        if received.answer is not None:
            return _response(received.answer)
        replies = await _hand_on(received, receive)
        for status in received.statuses:
            await _report(status, report)
        try:
            answer = await channel.answer(received, replies)
        except Refused:
            raise
        except Exception as error:  # the messages are with the edge: the provider may retry safely
            log.warning("%s could not answer a webhook: %r", channel.name, error)
            raise Unavailable(f"could not answer: {error}") from error
        return _response(answer)
    except Refused as error:
        return refused_response(error)


def request_url(request: Request, public_url: str) -> str:
    """The URL the provider called (and signed)."""
    if not public_url:
        return str(request.url)
    # The path and query as Starlette's URL has them (its path escaped the same way), read from
    # the scope: building that URL, and splitting it again for its path, cost more than the rest.
    path: str = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query: str = request.scope.get("query_string", b"").decode().partition("#")[0]
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")


async def _hand_on(received: Received, receive: Receive) -> Sequence[tuple[InboundMessage, str]]:
    """Each message to the edge; the answers outside any flow (STOP, HELP) it gave, with their message."""
    replies: list[tuple[InboundMessage, str]] = []
    batch = len(received.messages) > 1
    for message, binding in received.messages:
        try:
            verdict = await receive(binding, message)
        except Refused as refused:
            if not batch:
                raise
            # One refused message (too large) must not lose the others of the POST, which the
            # provider would deliver again for days: it is dropped, in one log line.
            log.warning("dropped message %s of a batch: %s", message.id, refused.reason)
            continue
        except Exception as error:  # whatever the transport raised, the provider must retry
            log.warning("could not hand message %s on: %r", message.id, error)
            raise Unavailable(f"could not hand message {message.id} on: {error}") from error
        if verdict.reply:
            replies.append((message, verdict.reply))
    return replies


async def _report(status: StatusReport, report: Report) -> None:
    """To the first of its conversations that exists; none may (the conversation has ended).
    A status that names none ("") is still reported: the router knows its message's sender."""
    update = status.update
    for conversation in status.conversations or [""]:
        try:
            if await report(conversation, update):
                return
        except Refused:
            raise
        except Exception as error:
            log.warning("could not report status %s of %s: %r", update.status, update.message_id, error)
            raise Unavailable(f"could not report status of {update.message_id}: {error}") from error


def _response(answer: WebhookAnswer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
