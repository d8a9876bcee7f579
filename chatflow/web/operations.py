"""The operations API: what an operator looks at and acts on, behind the journeys API's key
(`Authorization: Bearer $CHATFLOW_API_KEY`).

    GET  /api/dead-letters               messages the forwarder put aside, with reason and time
    POST /api/dead-letters/{id}/retry    one back into the buffer, to be forwarded again
    GET  /api/sinks/{name}/dead-letters             lifecycle events a sink could not take, with why
    POST /api/sinks/{name}/dead-letters/{id}/retry  one batch delivered to the sink again

and the `chatflow_dead_letters_total` counter (by kind: too_large, unreadable, refused), which
the forwarder increments through `record_dead_letter`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatflow.domain.errors import Invalid, Refused
from chatflow.edge.dead_letters import count_dead_letters, list_dead_letters, retry_dead_letter
from chatflow.edge.sinks import dead_letters as list_sink_dead_letters
from chatflow.edge.sinks import redeliver as redeliver_to_sink
from chatflow.web.access import ApiKey
from chatflow.web.errors import refused_response

DEAD_LETTERS = Counter(
    "chatflow_dead_letters_total",
    "Buffered messages put aside because they could not be handed to Temporal, by kind "
    "(too_large, unreadable, refused). See GET /api/dead-letters.",
    ["kind"],
)

Handler = Callable[[Request], Awaitable[Response]]


def record_dead_letter(kind: str) -> None:
    DEAD_LETTERS.labels(kind).inc()


def operations_routes(api_key: ApiKey, redis: Redis) -> list[BaseRoute]:
    def guarded(handler: Handler) -> Handler:
        async def guard(request: Request) -> Response:
            try:
                await api_key.check(request)
                return await handler(request)
            except Refused as refused:
                return refused_response(refused)

        return guard

    async def dead_letters(request: Request) -> Response:
        limit = request.query_params.get("limit", "100")
        # isdigit() alone takes "²", which int() refuses.
        if not (limit.isascii() and limit.isdigit()) or not 0 < int(limit) <= 1000:
            raise Invalid("limit must be a number from 1 to 1000")
        letters = await list_dead_letters(redis, limit=int(limit))
        return JSONResponse(
            {"dead_letters": [letter.as_json() for letter in letters], "total": await count_dead_letters(redis)}
        )

    async def retry(request: Request) -> Response:
        id = request.path_params["id"]
        entry = await retry_dead_letter(redis, id)
        return JSONResponse({"id": id, "status": "retried", "entry": entry}, status_code=202)

    async def sink_dead_letters(request: Request) -> Response:
        sink = request.path_params["name"]
        return JSONResponse({"sink": sink, "dead_letters": await list_sink_dead_letters(redis, sink)})

    async def sink_retry(request: Request) -> Response:
        sink, id = request.path_params["name"], request.path_params["id"]
        await redeliver_to_sink(redis, sink, id)
        return JSONResponse({"sink": sink, "id": id, "status": "retried"}, status_code=202)

    return [
        Route("/api/dead-letters", guarded(dead_letters), methods=["GET"]),
        # Lifecycle events a sink could not take (chatflow.edge.sinks), with why.
        Route("/api/sinks/{name:str}/dead-letters", guarded(sink_dead_letters), methods=["GET"]),
        Route("/api/sinks/{name:str}/dead-letters/{id:str}/retry", guarded(sink_retry), methods=["POST"]),
        Route("/api/dead-letters/{id:str}/retry", guarded(retry), methods=["POST"]),
    ]
