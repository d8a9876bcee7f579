"""Who may call the app's APIs: `Authorization: Bearer $CHATFLOW_API_KEY`, failures throttled.

Fail closed: with no key set, the guarded routes answer 401 and say so; nothing is open.

A client address (as the connection shows it, or as a proxy named in CHATFLOW_TRUSTED_PROXIES
reports it) gets `FAILURES` wrong keys or sign-ins per `WINDOW`, counted in Redis so every web
process counts together. Past that, every request of that address that needs the key answers 429
with `Retry-After`, the right key included, so guessing gains nothing from trying faster.
"""

from __future__ import annotations

import hmac
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request

from chatflow.domain.errors import TooManyRequests, Unauthorized
from chatflow.edge import keys

log = logging.getLogger(__name__)

FAILURES = 10  # wrong keys per client address and window
WINDOW = 60  # seconds
KEY_PREFIX = keys.auth_failures()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class Throttle:
    """Failed attempts per client address, in Redis, forgotten `window` seconds after the first."""

    def __init__(self, redis: Redis, *, failures: int = FAILURES, window: int = WINDOW) -> None:
        self.redis = redis
        self.failures = failures
        self.window = window

    async def check(self, client: str) -> None:
        """TooManyRequests when `client` has failed `failures` times in the window."""
        key = KEY_PREFIX + client
        try:
            count = await self.redis.get(key)
            if count is None or int(count) < self.failures:
                return
            retry_after = await self.redis.ttl(key)
        except RedisError as error:
            # Redis away: the key check still holds; only the count of failures is missing.
            log.warning("cannot read failed sign-ins of %s: %r", client, error)
            return
        raise TooManyRequests(
            f"too many wrong keys from {client}: try again in {max(retry_after, 1)} s", max(retry_after, 1)
        )

    async def failed(self, client: str) -> None:
        key = KEY_PREFIX + client
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
                await pipe.execute()
        except RedisError as error:
            log.warning("cannot count a failed sign-in of %s: %r", client, error)


class ApiKey:
    """The check of the journeys and operations APIs (and of the console, when `chatflow web` serves it)."""

    def __init__(self, key: str, throttle: Throttle, *, what: str) -> None:
        self.key = key
        self.throttle = throttle
        self.what = what  # "the journeys API", for the reason given when no key is set

    async def check(self, request: Request) -> None:
        """Unauthorized for a missing or wrong key (or none set), TooManyRequests past the throttle."""
        if not self.key:
            raise Unauthorized(f"{self.what} is off: CHATFLOW_API_KEY is not set on the server")
        client = client_address(request)
        await self.throttle.check(client)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key.encode()):
            await self.throttle.failed(client)
            raise Unauthorized("send Authorization: Bearer <CHATFLOW_API_KEY>")
