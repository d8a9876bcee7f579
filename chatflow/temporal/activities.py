"""Activities: the only places a conversation touches the world (channels, business APIs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from typing import Protocol

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from chatflow.domain.channel import Channel
from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import HttpRequest, HttpResponse, OutboundMessage, SendResult
from chatflow.flows.quiet_hours import SendWindow, next_allowed_send
from chatflow.temporal import constants
from chatflow.temporal.records import QuietHoursRequest


class Guard(Protocol):
    """Checks every send makes before a channel sees it (the edge's opt-out and rate limit)."""

    async def before_send(self, message: OutboundMessage) -> None:
        """Raise PermanentSendError (opted out) or RetryableSendError (rate limited), or pace."""

    async def after_send(self, message: OutboundMessage, result: SendResult) -> None: ...


# Told of every send's outcome: (provider, the provider's status | "failed" | "retry"), for metrics.
OnSend = Callable[[str, str], None]


def ignore_sends(provider: str, status: str) -> None:
    pass


class ChatflowActivities:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        http: httpx.AsyncClient | None = None,
        guard: Guard | None = None,
        on_send: OnSend = ignore_sends,
    ) -> None:
        self.channels = channels
        self.http = http or httpx.AsyncClient()
        self.guard = guard
        self.on_send = on_send

    @activity.defn(name=constants.SEND_MESSAGE)
    async def send_message(self, message: OutboundMessage) -> SendResult:
        channel = self.channels.get(message.provider)
        if channel is None:
            raise ApplicationError(
                f"no channel {message.provider!r} is configured on this worker",
                type=constants.PERMANENT_SEND_ERROR,
                non_retryable=True,
            )
        try:
            if self.guard is not None:
                await self.guard.before_send(message)
            result = await channel.send(message)
            if self.guard is not None:
                await self.guard.after_send(message, result)
        except PermanentSendError as error:
            self.on_send(message.provider, "failed")
            raise ApplicationError(
                str(error), error.code, type=constants.PERMANENT_SEND_ERROR, non_retryable=True
            ) from error
        except RetryableSendError as error:
            self.on_send(message.provider, "retry")
            delay = timedelta(seconds=error.retry_after) if error.retry_after else None
            raise ApplicationError(
                str(error), error.code, type=constants.RETRYABLE_SEND_ERROR, next_retry_delay=delay
            ) from error
        self.on_send(message.provider, result.status)
        return result

    @activity.defn(name=constants.NEXT_ALLOWED_SEND)
    async def next_allowed_send(self, request: QuietHoursRequest) -> str:
        """Run as a local activity: its answer is recorded, so a replay after a time-zone
        database update still takes the same decision."""
        window = SendWindow(time.fromisoformat(request.start), time.fromisoformat(request.end))
        now = datetime.fromisoformat(request.now)
        return next_allowed_send(request.customer, window, now, request.timezone or None).isoformat()

    @activity.defn(name=constants.HTTP_REQUEST)
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
                type=constants.HTTP_CLIENT_ERROR if permanent else constants.HTTP_SERVER_ERROR,
                non_retryable=permanent,
            )
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return HttpResponse(status=response.status_code, json=body, text=response.text[:2000])
