"""Activities: the only places a conversation touches the world (providers, business APIs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from chatflow.flows.quiet_hours import SendWindow, next_allowed_send
from chatflow.flows.engine import HttpRequest, HttpResponse
from chatflow.domain.messages import OutboundMessage, SendResult
from chatflow.web.metrics import record_send
from providers.base import PermanentSendError, Provider, RetryableSendError

if TYPE_CHECKING:
    from chatflow.edge.send_guard import SendGuard

PERMANENT_SEND_ERROR = "PermanentSendError"


@dataclass
class QuietHoursRequest:
    customer: str
    start: str  # HH:MM local
    end: str
    now: str  # ISO 8601
    timezone: str = ""
HTTP_CLIENT_ERROR = "HttpClientError"


class ChatflowActivities:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        http: httpx.AsyncClient | None = None,
        guard: SendGuard | None = None,
    ) -> None:
        self.providers = providers
        self.http = http or httpx.AsyncClient()
        # Opt-out and rate limit, checked before any provider sees the message.
        self.guard = guard

    @activity.defn(name="send_message")
    async def send_message(self, message: OutboundMessage) -> SendResult:
        provider = self.providers.get(message.provider)
        if provider is None:
            raise ApplicationError(
                f"no provider {message.provider!r} is configured on this worker",
                type=PERMANENT_SEND_ERROR,
                non_retryable=True,
            )
        try:
            if self.guard is not None:
                await self.guard.before_send(message)
            result = await provider.send(message)
            if self.guard is not None:
                await self.guard.after_send(message, result)
        except PermanentSendError as error:
            record_send(message.provider, "failed")
            raise ApplicationError(
                str(error), error.code, type=PERMANENT_SEND_ERROR, non_retryable=True
            ) from error
        except RetryableSendError as error:
            record_send(message.provider, "retry")
            delay = timedelta(seconds=error.retry_after) if error.retry_after else None
            raise ApplicationError(
                str(error), error.code, type="RetryableSendError", next_retry_delay=delay
            ) from error
        record_send(message.provider, result.status)
        return result

    @activity.defn(name="next_allowed_send")
    async def next_allowed_send(self, request: QuietHoursRequest) -> str:
        """Run as a local activity: its answer is recorded, so a replay after a time-zone
        database update still takes the same decision."""
        window = SendWindow(time.fromisoformat(request.start), time.fromisoformat(request.end))
        now = datetime.fromisoformat(request.now)
        return next_allowed_send(request.customer, window, now, request.timezone or None).isoformat()

    @activity.defn(name="http_request")
    async def http_request(self, request: HttpRequest) -> HttpResponse:
        try:
            response = await self.http.request(
                request.method,
                request.url,
                json=request.json,
                headers=request.headers,
                timeout=request.timeout_seconds,
            )
        except httpx.HTTPError as error:
            raise ApplicationError(f"{request.method} {request.url}: {error!r}") from error
        if response.status_code >= 400:
            reason = f"{request.method} {request.url} answered {response.status_code}"
            # 4xx other than 408/429 will not get better by asking again.
            permanent = response.status_code < 500 and response.status_code not in (408, 429)
            raise ApplicationError(
                reason,
                response.status_code,
                type=HTTP_CLIENT_ERROR if permanent else "HttpServerError",
                non_retryable=permanent,
            )
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return HttpResponse(status=response.status_code, json=body, text=response.text[:2000])
