"""A local stand-in for Twilio's Messages API that notes what each customer was sent, and when.

It answers `POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio does (201, JSON with a
`sid` and `status: "queued"`), so the real provider code and the twilio SDK run unchanged. It
lives in the bench process, so its timestamps share a clock with the moment a webhook was posted
(and, CLOCK_MONOTONIC being one clock for the machine, with the burst generator's process).
It is a bare ASGI callable, not a Starlette app: at a thousand customers a second it takes two
thousand sends a second, and the bench process must not be what slows the figures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from chatflow.runtime.processes import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@dataclass
class Turn:
    """How a customer's messages to us were answered: the check behind "answered once, in order"."""

    answered: bool  # every expected reply arrived
    in_order: bool  # ... in the expected order
    duplicates: int  # replies beyond those expected


class FakeTwilio:
    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = defaultdict(list)  # customer -> monotonic send times
        self.bodies: dict[str, list[str]] = defaultdict(list)  # customer -> message bodies, in order
        self.total = 0
        self._waiters: dict[str, list[tuple[int, asyncio.Future[float]]]] = defaultdict(list)
        self._sids = itertools.count(1)

    async def app(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        at = time.perf_counter()
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.endswith("/Messages.json"):
            await _respond(send, 404, {"message": "not found"})
            return
        form = dict(parse_qsl(b"".join(chunks).decode()))
        to = form.get("To", "").removeprefix("whatsapp:")
        self._record(to, form.get("Body", ""), at)
        sid = f"SM{next(self._sids):032x}"
        account = path.split("/")[3] if path.count("/") >= 4 else ""
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        await _respond(
            send,
            201,
            {
                "sid": sid,
                "account_sid": account,
                "to": form.get("To", ""),
                "from": form.get("From", ""),
                "body": form.get("Body", ""),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": now,
                "date_updated": now,
                "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            },
        )

    def _record(self, customer: str, body: str, at: float) -> None:
        sends = self.sent[customer]
        sends.append(at)
        self.bodies[customer].append(body)
        self.total += 1
        waiting = self._waiters.get(customer)
        if waiting:
            still = []
            for count, future in waiting:
                if len(sends) >= count:
                    if not future.done():
                        future.set_result(sends[count - 1])
                else:
                    still.append((count, future))
            self._waiters[customer] = still

    def count(self, customer: str) -> int:
        return len(self.sent.get(customer, ()))

    def turn(self, customer: str, expected: list[str], skip: int = 0) -> Turn:
        """Were the replies after the first `skip` the `expected` ones (each a prefix), once each, in order?"""
        bodies = self.bodies.get(customer, [])[skip:]
        got = [next((i for i, e in enumerate(expected) if body.startswith(e)), -1) for body in bodies]
        answered = all(i in got for i in range(len(expected)))
        first = [got.index(i) for i in range(len(expected)) if i in got]
        return Turn(answered, answered and first == sorted(first), max(0, len(bodies) - len(expected)))

    async def nth_send(self, customer: str, n: int, timeout: float = 60.0) -> float:
        """When the n-th (1-based) message to `customer` arrived, waiting for it if need be."""
        sends = self.sent.get(customer, [])
        if len(sends) >= n:
            return sends[n - 1]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[customer].append((n, future))
        return await asyncio.wait_for(future, timeout)

    async def drain(self, expected: int, timeout: float) -> bool:
        """Wait until `expected` messages in all have arrived; False when the time ran out."""
        deadline = time.perf_counter() + timeout
        while self.total < expected:
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def all_sent(self, customers: list[str], each: int, timeout: float) -> bool:
        """Wait until every customer has been sent at least `each` messages; False when the time ran out."""
        deadline = time.perf_counter() + timeout
        pending = [c for c in customers if self.count(c) < each]
        while pending:
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.05)
            pending = [c for c in pending if self.count(c) < each]
        return True

    async def quiet(self, for_seconds: float = 2.0, timeout: float = 300.0) -> bool:
        """Wait until no message has arrived for `for_seconds` (the worker's backlog is done)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            before = self.total
            await asyncio.sleep(for_seconds)
            if self.total == before:
                return True
        return False


async def _respond(send: Callable[[Message], Awaitable[None]], status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(fake: FakeTwilio) -> AsyncIterator[str]:
    """Serve `fake` on a free port of this machine, in this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            fake.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=4096,
            interface="asgi3",
            timeout_graceful_shutdown=5,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
