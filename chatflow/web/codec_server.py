"""The codec server: Temporal's Web UI and CLI show encrypted payloads (CHATFLOW_PAYLOAD_KEY)
decoded, by asking it.

It speaks the protocol Temporal's tools speak: `POST <endpoint>/decode` (and `/encode`) with
`{"payloads": [...]}` (payloads in protobuf JSON: metadata values and data in base64), answered
in the same form. The Web UI calls it from the browser, so the UI's origin must be allowed
(CORS); every call must carry `Authorization: Bearer <CHATFLOW_API_KEY>` (the CLI's
`--codec-auth`), unless it was started with no key on a loopback address.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from chatflow.domain.errors import BadRequest, Invalid, Refused, Unauthorized
from chatflow.web.body import read_body
from chatflow.web.errors import on_refused

LIMIT = 4 * 1024 * 1024  # Temporal's own limit of a payload batch (its gRPC message size)


def codec_app(codec: PayloadCodec, *, api_key: str, origins: Sequence[str]) -> Starlette:
    """`api_key` "": no key asked (only for a server on loopback: `chatflow codec-server` checks)."""

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    async def convert(request: Request, decode: bool) -> Response:
        if not authorised(request):
            raise Unauthorized("Authorization: Bearer <CHATFLOW_API_KEY> is missing or wrong")
        body = await read_body(request, limit=LIMIT, expected="application/json")
        try:
            payloads = json_format.Parse(body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as error:
            raise BadRequest(f'not {{"payloads": [...]}} as Temporal sends them: {error}') from None
        try:
            converted = await (codec.decode if decode else codec.encode)(list(payloads.payloads))
        except Exception as error:  # noqa: BLE001 - a payload this server cannot decrypt: say which
            raise Invalid(f"cannot {'decode' if decode else 'encode'}: {error}") from None
        return Response(json_format.MessageToJson(Payloads(payloads=converted)), media_type="application/json")

    async def decode(request: Request) -> Response:
        return await convert(request, decode=True)

    async def encode(request: Request) -> Response:
        return await convert(request, decode=False)

    return Starlette(
        routes=[
            # The UI and the CLI post to <endpoint>/decode: any prefix the endpoint was given.
            Route("/{prefix:path}decode", decode, methods=["POST"]),
            Route("/{prefix:path}encode", encode, methods=["POST"]),
        ],
        exception_handlers={Refused: on_refused},
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(origins),
                allow_methods=["POST"],
                allow_headers=["authorization", "content-type", "x-namespace"],
                allow_credentials=True,
            )
        ],
    )
