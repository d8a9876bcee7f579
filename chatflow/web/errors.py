"""The one error response of every route: `{"error": reason}` with the status the error's kind says.

The rest of chatflow raises `chatflow.domain.errors.Refused` subclasses and knows no HTTP codes;
this table is the only place they become status codes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatflow.domain.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)

STATUS: dict[type[Refused], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    Unavailable: 503,
    TooManyRequests: 429,
}
UNPROCESSABLE = 422  # a Refused of no more precise kind: well-formed, but not something we can do


def status_of(error: Refused) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return UNPROCESSABLE


def error_response(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def refused_response(error: Refused) -> JSONResponse:
    response = error_response(status_of(error), error.reason)
    for name, value in refused_headers(error).items():
        response.headers[name] = value
    return response


def refused_headers(error: Refused) -> dict[str, str]:
    """Headers a refusal of its kind carries: when to try again after a 429."""
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(max(1, error.retry_after))}
    return {}


async def on_refused(request: Request, error: Exception) -> Response:
    """Starlette exception handler: any Refused raised by a route answers as its kind says."""
    assert isinstance(error, Refused)
    return refused_response(error)
