"""The floor of a webhook's acknowledgement on this machine: a bare Starlette endpoint that puts
the request's body into a Redis stream (one XADD) and answers empty TwiML, served by uvicorn as
chatflow's app is. No signature, no edge, no forwarder: what any webhook that lands its message
in Redis before answering costs at least, for setting chatflow's figures against.
"""

from __future__ import annotations

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.baseline.service import EMPTY_TWIML
from bench.http import WEBHOOK_PATH

STREAM = "bench:floor"


def web_app(redis: Redis) -> Starlette:
    async def webhook(request: Request) -> Response:
        await redis.xadd(STREAM, {"m": await request.body()}, maxlen=100_000, approximate=True)
        return Response(EMPTY_TWIML, media_type="application/xml")

    return Starlette(routes=[Route(WEBHOOK_PATH, webhook, methods=["POST"])])
