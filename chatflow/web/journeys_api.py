"""The journeys API: JSON over HTTP, behind `Authorization: Bearer $CHATFLOW_API_KEY`.

    POST   /api/conversations               start a flow for a customer (idempotency_key)
    GET    /api/conversations               list (?flow=&state=&number=&limit=)
    GET    /api/conversations/{id}          state, data, outcome, transcript with statuses
    POST   /api/conversations/{id}/events   a business event into the conversation
    POST   /api/events                      a business event by key ({"order_id": "A-1001"})
    DELETE /api/conversations/{id}          end it
    POST   /api/broadcasts                  the same flow for a list of customers, paced
    GET    /api/broadcasts/{id}             its progress
    GET    /api/consent...                  consent: look up, record, import, export (consent_api)
    GET    /openapi.json                    this API, described

Every refusal is a 4xx with {"error": reason}; nothing a client sends can cause a 500.

Where the console channel is served without a key (`chatflow dev`), so is `GET
/console/conversations/{id}`: whether a conversation on a console number runs and how it ended
(no data, no transcript), for `chatflow chat`. The console already shows anyone who can reach
the app what its numbers send; this adds no more. Where the console is behind the key, so is this.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.errors import Invalid, NotFound, Refused
from chatflow.domain.messages import BusinessEvent
from chatflow.journeys.broadcast import Broadcast, Broadcasts, recipients
from chatflow.journeys.service import JourneyRequest, Journeys
from chatflow.web.access import ApiKey
from chatflow.web.body import read_json_object
from chatflow.web.consent_api import ConsentApi
from chatflow.web.errors import refused_response
from chatflow.web.openapi import OPENAPI

MAX_BODY = 64 * 1024
MAX_RECIPIENTS = 10_000

Handler = Callable[[Request], Awaitable[Response]]


async def read_json(request: Request, max_bytes: int = MAX_BODY) -> dict[str, Any]:
    return await read_json_object(request, limit=max_bytes)


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None and required:
        raise Invalid(f"{name} is required")
    if value is not None and not isinstance(value, kind):
        raise Invalid(f"{name} must be a {kind.__name__}")
    return value


class JourneysApi:
    def __init__(self, api_key: ApiKey, journeys: Journeys, broadcasts: Broadcasts) -> None:
        self._api_key = api_key
        self.journeys = journeys
        self.broadcasts = broadcasts

    def routes(self, *, console: str = "open") -> list[BaseRoute]:
        """The API's routes, and the console's status route unless `console` is "off" (behind the
        key when "key")."""
        guard = self._guarded
        status = {"open": self._unguarded, "key": guard}.get(console)
        routes: list[BaseRoute] = [
            Route("/api/conversations", guard(self.start), methods=["POST"]),
            Route("/api/conversations", guard(self.list), methods=["GET"]),
            Route("/api/conversations/{id:str}", guard(self.get), methods=["GET"]),
            Route("/api/conversations/{id:str}", guard(self.end), methods=["DELETE"]),
            Route("/api/conversations/{id:str}/events", guard(self.event), methods=["POST"]),
            # A person steps in: the bot stops talking until the conversation is handed back.
            Route("/api/conversations/{id:str}/takeover", guard(self.take_over), methods=["POST"]),
            Route("/api/conversations/{id:str}/replies", guard(self.reply), methods=["POST"]),
            Route("/api/conversations/{id:str}/handback", guard(self.hand_back), methods=["POST"]),
            Route("/api/events", guard(self.event_by_key), methods=["POST"]),
            Route("/api/broadcasts", guard(self.broadcast), methods=["POST"]),
            Route("/api/digests", guard(self.digest), methods=["POST"]),
            Route("/api/broadcasts/{id:str}", guard(self.broadcast_status), methods=["GET"]),
            *ConsentApi(self.journeys.config, self.journeys.consent).routes(guard),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]
        if status is not None:
            routes.append(Route("/console/conversations/{id:str}", status(self.console_status), methods=["GET"]))
        return routes

    def _unguarded(self, handler: Handler) -> Handler:
        async def unguarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused as refused:
                return refused_response(refused)

        return unguarded

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            try:
                await self._api_key.check(request)
                return await handler(request)
            except Refused as refused:
                return refused_response(refused)

        return guarded

    async def start(self, request: Request) -> Response:
        body = await read_json(request)
        journey = JourneyRequest(
            flow=field(body, "flow", str),
            to=field(body, "to", str),
            from_=field(body, "from", str),
            data=field(body, "data", dict, required=False, default={}),
            idempotency_key=field(body, "idempotency_key", str, required=False, default=""),
            when_busy=field(body, "when_busy", str, required=False, default=""),
        )
        started = await self.journeys.start(journey)
        answer = {
            "id": started.id,
            "status": started.status,
            "flow": started.flow,
            "run_id": started.run_id,
            "interrupted": started.interrupted,
        }
        if started.status == "skipped":
            answer["error"] = "the customer is in another conversation on this number (when_busy = skip)"
            return JSONResponse(answer, status_code=409)
        return JSONResponse(answer, status_code=202)

    async def list(self, request: Request) -> Response:
        params = request.query_params
        limit = params.get("limit", "100")
        if not (limit.isascii() and limit.isdigit()) or not 0 < int(limit) <= 1000:  # int() refuses "²"
            raise Invalid("limit must be a number from 1 to 1000")
        found = await self.journeys.list(
            flow=params.get("flow", ""),
            state=params.get("state", ""),
            number=params.get("number", ""),
            limit=int(limit),
        )
        return JSONResponse({"conversations": found})

    async def get(self, request: Request) -> Response:
        return JSONResponse(await self.journeys.get(request.path_params["id"]))

    async def console_status(self, request: Request) -> Response:
        conversation = request.path_params["id"]
        try:
            address = ConversationRef.parse(conversation)
        except ValueError as error:
            raise NotFound(str(error)) from None
        if self.journeys.config.binding(address.number, provider="console") is None:
            raise NotFound(f"{address.number} is not a console number: ask the journeys API (/api/conversations)")
        return JSONResponse(await self.journeys.status(conversation))

    async def event(self, request: Request) -> Response:
        body = await read_json(request)
        event = BusinessEvent(
            name=field(body, "name", str),
            data=field(body, "data", dict, required=False, default={}),
            id=field(body, "id", str, required=False, default=""),
        )
        conversation = await self.journeys.event(request.path_params["id"], event)
        return JSONResponse({"id": conversation, "event": event.name}, status_code=202)

    async def event_by_key(self, request: Request) -> Response:
        body = await read_json(request)
        key = field(body, "key", dict)
        if len(key) != 1 or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in key.values()):
            raise Invalid('key must name one business key and its value, such as {"order_id": "A-1001"}')
        ((name, value),) = key.items()
        event = BusinessEvent(
            name=field(body, "name", str),
            data=field(body, "data", dict, required=False, default={}),
            # Without an id of the client's, one of ours: a kept event reaches its conversation once.
            id=field(body, "id", str, required=False, default="") or uuid.uuid4().hex,
        )
        how, conversations = await self.journeys.event_by_key(name, str(value), event)
        return JSONResponse({"status": how, "conversations": list(conversations), "event": event.name}, status_code=202)

    async def take_over(self, request: Request) -> Response:
        operator = field(await read_json(request), "operator", str)
        conversation = await self.journeys.take_over(request.path_params["id"], operator)
        return JSONResponse({"id": conversation, "operator": operator})

    async def reply(self, request: Request) -> Response:
        body = await read_json(request)
        operator, text = field(body, "operator", str), field(body, "text", str)
        message_id = await self.journeys.reply(request.path_params["id"], operator, text)
        return JSONResponse({"id": request.path_params["id"], "message_id": message_id})

    async def hand_back(self, request: Request) -> Response:
        operator = field(await read_json(request), "operator", str)
        conversation = await self.journeys.hand_back(request.path_params["id"], operator)
        return JSONResponse({"id": conversation, "operator": ""})

    async def end(self, request: Request) -> Response:
        conversation = await self.journeys.resolve(request.path_params["id"])
        reason = request.query_params.get("reason", "ended by the business")
        if await self.journeys.end(conversation, reason):
            return JSONResponse({"id": conversation, "ending": True}, status_code=202)
        return JSONResponse({"id": conversation, "ending": False, "reason": "it had already ended"})

    async def digest(self, request: Request) -> Response:
        body = await read_json(request)
        journey = JourneyRequest(
            flow=field(body, "flow", str), to=field(body, "to", str), from_=field(body, "from", str)
        )
        pending = await self.journeys.add_to_digest(journey, field(body, "event", dict))
        return JSONResponse({"flow": journey.flow, "to": journey.to, "pending": pending}, status_code=202)

    async def broadcast(self, request: Request) -> Response:
        body = await read_json(request, max_bytes=MAX_BODY * 64)
        to = field(body, "to", list)
        if not 0 < len(to) <= MAX_RECIPIENTS:
            raise Invalid(f"to must list 1 to {MAX_RECIPIENTS} customers")
        broadcast = Broadcast(
            flow=field(body, "flow", str),
            from_=field(body, "from", str),
            to=recipients(to),
            data=field(body, "data", dict, required=False, default={}),
        )
        key = field(body, "idempotency_key", str, required=False, default="")
        if key:
            broadcast.id = key
        await self.broadcasts.submit(broadcast)
        return JSONResponse({"id": broadcast.id, "total": len(broadcast.to)}, status_code=202)

    async def broadcast_status(self, request: Request) -> Response:
        status = await self.broadcasts.status(request.path_params["id"])
        if status is None:
            raise NotFound(f"no broadcast {request.path_params['id']}")
        return JSONResponse(status)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)


def journeys_api(api_key: ApiKey, journeys: Journeys, broadcasts: Broadcasts) -> JourneysApi:
    return JourneysApi(api_key, journeys, broadcasts)
