"""The consent API, behind the journeys API's key: look up, record, import and export consent.

    GET  /api/consent?scope=            every record of a scope (one of our numbers, or brand:<name>)
    POST /api/consent/import            many records at once (how: import), e.g. from a CRM
    GET  /api/consent/{customer}        the customer's record in every scope (?scope= for one)
    POST /api/consent/{customer}        record an opt-in or opt-out (how: api, dashboard, unsubscribe_link)

A record is the customer's state in a scope (`out`, `in` or `unknown`) with its history: when, how,
on which number, with which word. A change older than the one recorded is kept out (`at`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatflow.domain.addresses import e164
from chatflow.domain.config import Config
from chatflow.domain.errors import Invalid
from chatflow.edge.consent import BRAND_PREFIX, HOWS, ConsentLedger, State
from chatflow.web.body import read_json_object

Handler = Callable[[Request], Awaitable[Response]]
MAX_IMPORT = 10_000
MAX_BODY = 2 * 1024 * 1024
MAX_NOTE = 200
# Changes an API client may say it made; keyword changes come from customers' messages only.
API_HOWS = tuple(how for how in HOWS if how not in ("keyword", "import"))


class ConsentApi:
    def __init__(self, config: Config, ledger: ConsentLedger) -> None:
        self._config = config
        self._ledger = ledger

    def routes(self, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
        return [
            Route("/api/consent", guard(self.export), methods=["GET"]),
            Route("/api/consent/import", guard(self.import_), methods=["POST"]),
            Route("/api/consent/{customer:str}", guard(self.lookup), methods=["GET"]),
            Route("/api/consent/{customer:str}", guard(self.record), methods=["POST"]),
        ]

    def scopes(self) -> list[str]:
        """Every scope the config has: each brand, each number without one."""
        return sorted({self._ledger.scope(binding.number) for binding in self._config.numbers})

    def _scope(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise Invalid(f"scope is required: one of {', '.join(self.scopes())}")
        if not value.startswith(BRAND_PREFIX):
            try:
                value = e164(value, what="scope")
            except ValueError as error:
                raise Invalid(str(error)) from None
        scope = self._ledger.scope(value)
        if scope not in self.scopes():
            raise Invalid(f"scope {value!r} is none of ours: one of {', '.join(self.scopes())}")
        return scope

    async def lookup(self, request: Request) -> Response:
        customer = _customer(request.path_params["customer"])
        asked = request.query_params.get("scope")
        scopes = [self._scope(asked)] if asked is not None else self.scopes()
        records = [(await self._ledger.lookup(scope, customer)).as_json() for scope in scopes]
        return JSONResponse({"customer": customer, "records": records})

    async def record(self, request: Request) -> Response:
        customer = _customer(request.path_params["customer"])
        body = await read_json_object(request, limit=64 * 1024)
        how = body.get("how", "api")
        if how not in API_HOWS:
            raise Invalid(f"how must be one of {', '.join(API_HOWS)}")
        scope, state, note, at_ms = self._change(body)
        await self._ledger.change(scope, customer, state, how, note=note, at_ms=at_ms)
        return JSONResponse((await self._ledger.lookup(scope, customer)).as_json())

    async def import_(self, request: Request) -> Response:
        body = await read_json_object(request, limit=MAX_BODY)
        records = body.get("records")
        if not isinstance(records, list) or not records:
            raise Invalid("records must be a list of {customer, scope, state[, at, note]}")
        if len(records) > MAX_IMPORT:
            raise Invalid(f"at most {MAX_IMPORT} records per import")
        changes = []
        for index, entry in enumerate(records):
            if not isinstance(entry, dict):
                raise Invalid(f"records[{index}] must be an object")
            try:
                changes.append((_customer(entry.get("customer")), *self._change(entry)))
            except Invalid as invalid:
                raise Invalid(f"records[{index}]: {invalid.reason}") from None
        # Checked whole before any is written: a bad entry imports none.
        changed = 0
        for customer, scope, state, note, at_ms in changes:
            changed += await self._ledger.change(scope, customer, state, "import", note=note, at_ms=at_ms)
        return JSONResponse({"imported": len(changes), "changed": changed})

    async def export(self, request: Request) -> Response:
        scope = self._scope(request.query_params.get("scope"))
        records = [record.as_json() async for record in self._ledger.export(scope)]
        return JSONResponse({"scope": scope, "records": records})

    def _change(self, body: dict[str, Any]) -> tuple[str, State, str, int | None]:
        scope = self._scope(body.get("scope"))
        state = body.get("state")
        if state not in ("out", "in"):
            raise Invalid('state must be "out" or "in"')
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise Invalid(f"note must be text of at most {MAX_NOTE} characters")
        at = body.get("at")
        at_ms = None
        if at is not None:
            try:
                when = datetime.fromisoformat(at) if isinstance(at, str) else None
            except ValueError:
                when = None
            if when is None or when.tzinfo is None:
                raise Invalid("at must be an ISO 8601 time with its offset (2025-03-01T12:00:00+00:00)")
            at_ms = int(when.timestamp() * 1000)
        return scope, state, note, at_ms


def _customer(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid("customer is required (a phone number)")
    try:
        return e164(value, what="customer")
    except ValueError as error:
        raise Invalid(str(error)) from None
