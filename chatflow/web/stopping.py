"""Requests still waiting when the web app stops get an answer, not a cancellation.

A long poll (`GET /console/messages?wait=20`, the chat's) outlives uvicorn's graceful shutdown;
uvicorn then cancels it, logs `Exception in ASGI application` with the CancelledError's
traceback and answers 500. Here such a read is ended a moment after the stop, inside the app,
and answered 503 `{"error": "stopping"}`: the client knows the app is going, and the log stays
quiet. Only GETs are raced against the stop (reads, safe to end and repeat); a webhook's POST
finishes as it would.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STOP_GRACE = 1.0  # seconds a read may still finish by itself after the stop (uvicorn waits 3)
STOPPING = json.dumps({"error": "stopping"}).encode()


class AnswerWhileStopping:
    def __init__(self, app: ASGIApp, stop: asyncio.Event, grace: float = STOP_GRACE) -> None:
        self.app = app
        self.stop = stop
        self.grace = grace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        call: asyncio.Future[Any] = asyncio.ensure_future(self.app(scope, receive, sending))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({call, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not call.done():
                await asyncio.wait({call}, timeout=self.grace)
            if call.done() or started:  # answered, or answering: let it finish
                await call
                return
            call.cancel()
            await asyncio.wait({call})  # not `await call`: its CancelledError is not ours
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": STOPPING})
        finally:
            stopping.cancel()
            call.cancel()  # uvicorn gave up on this request: its work ends with it
