"""A business's API on loopback, served by uvicorn: it answers JSON and remembers every request
as it arrived (raw path, query string, headers), for tests of what `Http` steps really send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatflow.runtime.processes import bind


@dataclass
class Seen:
    method: str
    raw_path: str
    query: str
    headers: dict[str, str]


@dataclass
class BusinessApi:
    port: int
    requests: list[Seen] = field(default_factory=list)
    redirect_to: str = ""  # answer every request with a redirect there

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)  # type: ignore[arg-type]
        self.requests.append(
            Seen(request.method, scope["raw_path"].decode(), scope["query_string"].decode(), dict(request.headers))
        )
        response: Response
        if self.redirect_to:
            response = Response(status_code=302, headers={"location": self.redirect_to})
        else:
            response = JSONResponse({"ok": True, "path": scope["raw_path"].decode(), "echo": dict(request.headers)})
        await response(scope, receive, send)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def business_api() -> AsyncIterator[BusinessApi]:
    sock = bind("127.0.0.1", 0)
    api = BusinessApi(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(api, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield api
    finally:
        server.should_exit = True
        await serving
        sock.close()
