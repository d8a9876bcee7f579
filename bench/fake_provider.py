"""A local stand-in for Twilio's Messages API that notes when each reply arrives.

It answers `POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio does (201, JSON with a
`sid` and `status: "queued"`), so the real provider code and the twilio SDK run unchanged. It
lives in the bench process, so its timestamps share a clock with the moment a webhook was posted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class FakeTwilio:
    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = defaultdict(list)  # customer -> monotonic send times
        self.total = 0
        self._waiters: dict[str, list[tuple[int, asyncio.Future[float]]]] = defaultdict(list)
        self._sids = itertools.count(1)
        self.app = Starlette(
            routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create, methods=["POST"])]
        )

    async def create(self, request: Request) -> JSONResponse:
        at = time.perf_counter()
        # Parsed by hand: cheaper than Starlette's multipart-capable form parser.
        form = dict(parse_qsl((await request.body()).decode()))
        to = form.get("To", "").removeprefix("whatsapp:")
        self._record(to, at)
        sid = f"SM{next(self._sids):032x}"
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": request.path_params["sid"],
                "to": form.get("To", ""),
                "from": form.get("From", ""),
                "body": form.get("Body", ""),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": now,
                "date_updated": now,
                "uri": f"/2010-04-01/Accounts/{request.path_params['sid']}/Messages/{sid}.json",
            },
            status_code=201,
        )

    def _record(self, customer: str, at: float) -> None:
        sends = self.sent[customer]
        sends.append(at)
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

    async def quiet(self, for_seconds: float = 2.0, timeout: float = 300.0) -> bool:
        """Wait until no message has arrived for `for_seconds` (the worker's backlog is done)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            before = self.total
            await asyncio.sleep(for_seconds)
            if self.total == before:
                return True
        return False
