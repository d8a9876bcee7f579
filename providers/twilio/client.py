"""The `twilio` SDK's HTTP client, over httpx.

The SDK's own async client uses aiohttp; ours speaks httpx so that one connection pool serves
every channel and tests can mock Twilio at the HTTP layer with respx.
"""

from __future__ import annotations

import logging

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

from chatflow.domain.errors import RetryableSendError
from providers._http import retry_after

TWILIO_API = "https://api.twilio.com"

logger = logging.getLogger("chatflow.providers.twilio")


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's HTTP client, over httpx, sending to `base_url` instead of api.twilio.com.

    Throttling (429) and server errors (5xx) are raised here as `RetryableSendError` because only
    here is the `Retry-After` header still at hand; other errors go back to the SDK, which raises
    `TwilioRestException` with Twilio's error code.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str = TWILIO_API, timeout: float = 15.0) -> None:
        super().__init__(logger, is_async=True, timeout=timeout)
        self.http = http
        self.base_url = base_url.rstrip("/")

    def rebase(self, url: str) -> str:
        if url.startswith(TWILIO_API):
            return self.base_url + url[len(TWILIO_API) :]
        return url

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        url = self.rebase(uri)
        try:
            response = await self.http.request(
                method,
                url,
                params=params,  # type: ignore[arg-type]
                data=data,
                headers=headers,
                auth=auth,
                timeout=timeout or self.timeout,
                follow_redirects=allow_redirects,
            )
        except httpx.HTTPError as error:
            raise RetryableSendError(f"Twilio unreachable: {error!r}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableSendError(
                f"Twilio answered {response.status_code}: {response.text[:200]}",
                code=_error_code(response),
                retry_after=retry_after(response.headers),
            )
        return Response(response.status_code, response.text, response.headers)


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code)
    code = body.get("code") if isinstance(body, dict) else None
    return str(code or response.status_code)
