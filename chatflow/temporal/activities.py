"""Activities: the only places a conversation touches the world (channels, business APIs).

A send reaches the provider once even when Temporal runs it again. A worker killed after the
provider took a message but before Temporal had the result makes Temporal run the send again
(after SEND_TIMEOUT for an activity, or when the workflow task is retried for a local one); that
attempt finds the result in the send ledger (`Ledger`, on the edge's Redis) and returns it
without sending. A stopping worker lets sends in flight finish (WORKER_SHUTDOWN_GRACE).

Duplicates that remain (`OnSend` counts the first kind as "possible_duplicate"):
- An attempt that ended without knowing whether the provider took the message: killed during
  the provider call, its answer lost (a read timeout, a dropped connection), or cut at its
  deadline. Neither provider takes an idempotency key, so nothing can tell; the message is sent
  again (a possible duplicate) rather than maybe lost.
- The ledger forgot: Redis lost the key (a failover losing the last writes, a flush, eviction
  of keys with a TTL under a volatile-* maxmemory policy), or could not write it after the
  provider took the message. The retry is then a plain send, not counted.
- A workflow reset: the new run's sends are new sends (the run id is part of the key).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Protocol, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from chatflow.domain.channel import Channel
from chatflow.domain.errors import WINDOW_REFUSALS, PermanentSendError, RetryableSendError, SendError
from chatflow.domain.messages import HttpRequest, HttpResponse, OutboundMessage, SendResult
from chatflow.flows.quiet_hours import SendWindow, next_allowed_send
from chatflow.temporal import constants
from chatflow.temporal.outbound import RefusedAddress, business_client
from chatflow.temporal.records import QuietHoursRequest

log = logging.getLogger(__name__)
T = TypeVar("T")


class Guard(Protocol):
    """Checks every send makes before a channel sees it (the edge's opt-out and rate limit)."""

    async def before_send(self, message: OutboundMessage) -> None:
        """Raise PermanentSendError (opted out) or RetryableSendError (rate limited), or pace."""

    async def after_send(self, message: OutboundMessage, result: SendResult) -> None: ...


@dataclass(frozen=True)
class Claim:
    """An attempt's claim on a send, and what the ledger knew of the send before it."""

    token: str  # this attempt's own, to release it
    sent: SendResult | None = None  # an earlier attempt's send the provider took
    unknown: bool = False  # an earlier attempt ended without knowing whether the provider took it


class Ledger(Protocol):
    """Every send by its idempotency key (`send_key`), shared by all workers (the edge's Redis)."""

    async def claim(self, key: str) -> Claim:
        """Claim the send for this attempt, unless it is recorded as sent (`Claim.sent`)."""
        ...

    async def record(self, key: str, result: SendResult) -> None:
        """The provider took the message: later attempts return `result` instead of sending."""

    async def release(self, key: str, claim: Claim) -> None:
        """The provider certainly did not take the message: a later attempt is a plain send."""


class Barrier(Protocol):
    """The inbound buffer, seen from a conversation (the edge's Redis)."""

    async def drained(self, conversation: str) -> None:
        """Return once the buffer holds nothing of `conversation` from before this call: every
        message it had of theirs has been handed on to Temporal (or put aside)."""


# Told of every send's outcome, for metrics: (provider, status), the status being the provider's,
# "failed", "retry", "already_sent" (a retry found its send recorded and did not send again) or
# "possible_duplicate" (sent again after an attempt that may have been sent).
OnSend = Callable[[str, str], None]

# Statuses given to OnSend besides the provider's own.
FAILED, RETRY, ALREADY_SENT, POSSIBLE_DUPLICATE = "failed", "retry", "already_sent", "possible_duplicate"

# An attempt gives up on the provider this long before Temporal's start-to-close timeout, so a
# slow call has ended (its outcome unknown) before Temporal starts the next attempt: two attempts
# of one send never run at once.
DEADLINE_MARGIN = 1.0

# Errors of a request that never left: the provider cannot have the message.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def send_key(info: activity.Info) -> str:
    """The send's idempotency key: the same for every attempt of it, different for every other.

    Temporal keeps an activity's id across its retries, and a local activity run again on another
    worker after a crash gets its id again (the workflow's deterministic sequence). The run id is
    part of it because those ids start again at 1 in every run: the next conversation with the
    customer (same workflow id) or a continued-as-new one must not find the previous run's sends.
    Ids from that sequence (digits) are per kind, activities and local activities sharing it; an
    id the workflow chose names one send however it is made (a local try, then an activity).
    """
    send = info.activity_id
    if send.isdigit():
        send = f"{'local' if info.is_local else 'activity'}-{send}"
    return f"{info.workflow_id}/{info.workflow_run_id}/{send}"


def provider_may_have_it(error: BaseException) -> bool:
    """Whether a provider call that raised `error` may still have handed the message on.

    A send error is the provider's answer (a refusal, 429, 5xx), unless it wraps a transport
    error after the request left (a read timeout, a dropped connection). Anything else (a
    cancellation, a deadline, a bug) ended the attempt without knowing.
    """
    if not isinstance(error, SendError):
        return True
    cause = error.__cause__
    while cause is not None:
        if isinstance(cause, httpx.TransportError):
            return not isinstance(cause, NOT_SENT)
        cause = cause.__cause__
    return False


def deadline(info: activity.Info) -> float | None:
    """Seconds this attempt may spend before its outcome must be known (None: no limit)."""
    if info.start_to_close_timeout is None:
        return None
    return max(0.5, info.start_to_close_timeout.total_seconds() - DEADLINE_MARGIN)


def ignore_sends(provider: str, status: str) -> None:
    pass


@dataclass(frozen=True)
class Sender:
    """Where a notification on a channel comes from: the channel plug-in and our address on it."""

    provider: str
    address: str


def addressed(message: OutboundMessage, senders: Mapping[str, Sender]) -> OutboundMessage:
    """A notification (`Notify`) with our address on its channel filled in; PermanentSendError
    when the config binds none to that channel."""
    sender = senders.get(message.channel)
    if sender is None:
        known = ", ".join(sorted(senders)) or "none"
        raise PermanentSendError(
            f"no address of ours is bound to channel {message.channel!r} (channels with one: {known})",
            code="no_sender",
        )
    return replace(message, provider=sender.provider, number=sender.address)


class ChatflowActivities:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        http: httpx.AsyncClient | None = None,
        guard: Guard | None = None,
        on_send: OnSend = ignore_sends,
        ledger: Ledger | None = None,
        barrier: Barrier | None = None,
        http_allow: Iterable[str] = (),
        fallbacks: Mapping[str, tuple[str, str]] | None = None,
        senders: Mapping[str, Sender] | None = None,
    ) -> None:
        """`http`: the client `Http` steps call through (by default one that refuses addresses
        inside the network, but for the `http_allow` hosts: `chatflow.temporal.outbound`).
        `fallbacks`: each WhatsApp number's SMS fallback (its number and provider)."""
        self.senders = dict(senders or {})
        self.channels = channels
        self.http = http or business_client(http_allow)
        self.guard = guard
        self.on_send = on_send
        self.ledger = ledger
        self.barrier = barrier
        self.fallbacks = dict(fallbacks or {})

    @activity.defn(name=constants.SEND_MESSAGE)
    async def send_message(self, message: OutboundMessage) -> SendResult:
        channel = self.channels.get(message.provider)
        if channel is None:
            raise ApplicationError(
                f"no channel {message.provider!r} is configured on this worker",
                type=constants.PERMANENT_SEND_ERROR,
                non_retryable=True,
            )
        info = activity.info()
        key = send_key(info) if self.ledger is not None else ""
        limit = deadline(info)
        claim: Claim | None = None
        calling = False  # the provider may have the message from here on
        try:
            async with asyncio.timeout(limit):
                if self.ledger is not None:
                    claim = await self.ledger.claim(key)
                    if claim.sent is not None:
                        log.info("send %s: already sent as %s, not sending again", key, claim.sent.message_id)
                        self.on_send(message.provider, ALREADY_SENT)
                        return claim.sent
                if self.guard is not None:
                    await self.guard.before_send(message)
                if claim is not None and claim.unknown:
                    log.warning("send %s: an earlier attempt may have been sent; sending again", key)
                    self.on_send(message.provider, POSSIBLE_DUPLICATE)
                calling = True
                result = await channel.send(message)
        except BaseException as error:
            if claim is not None and not claim.unknown and not (calling and provider_may_have_it(error)):
                await self._release(key, claim)
            if isinstance(error, PermanentSendError):
                self.on_send(message.provider, FAILED)
                # The SMS route rides in the details, after the code: the conversation sends it.
                route = self._fallback(message, error)
                raise ApplicationError(
                    str(error), error.code, *route, type=constants.PERMANENT_SEND_ERROR, non_retryable=True
                ) from error
            if isinstance(error, RetryableSendError):
                self.on_send(message.provider, RETRY)
                delay = timedelta(seconds=error.retry_after) if error.retry_after else None
                raise ApplicationError(
                    str(error), error.code, type=constants.RETRYABLE_SEND_ERROR, next_retry_delay=delay
                ) from error
            if isinstance(error, TimeoutError):  # the attempt's deadline
                self.on_send(message.provider, RETRY)
                reason = f"the send did not finish within {limit} s" + (
                    " (the provider may have it)" if calling else ""
                )
                raise ApplicationError(reason, type=constants.RETRYABLE_SEND_ERROR) from error
            raise
        if self.ledger is not None:
            try:
                # Shielded: a cancel now (a hard stop) must not lose what the provider took.
                await asyncio.shield(self.ledger.record(key, result))
            except Exception:
                # Temporal still gets the result; only a retry of this attempt would send again.
                log.exception("send %s: could not record %s in the send ledger", key, result.message_id)
        if self.guard is not None:
            await self.guard.after_send(message, result)
        self.on_send(message.provider, result.status)
        return result

    def _fallback(self, message: OutboundMessage, error: PermanentSendError) -> tuple[str, ...]:
        """The SMS number and provider that may say a message WhatsApp refused as outside its
        window; none for another refusal, a number without a fallback, or a customer known by a
        WhatsApp user id only (no phone number to text)."""
        if message.channel != "whatsapp" or error.code not in WINDOW_REFUSALS or not message.customer.startswith("+"):
            return ()
        return self.fallbacks.get(message.number, ())

    async def _release(self, key: str, claim: Claim) -> None:
        assert self.ledger is not None
        try:
            await self.ledger.release(key, claim)
        except Exception:
            # The claim stays: the next attempt sends all the same, counted as a possible duplicate.
            log.exception("send %s: could not release its claim in the send ledger", key)

    @activity.defn(name=constants.NOTIFY)
    async def notify(self, message: OutboundMessage) -> SendResult:
        """A notification: sent from our address on its channel, through the same path as every
        send (the recipient's opt-out, the sender's rate limit, the send ledger)."""
        try:
            message = addressed(message, self.senders)
        except PermanentSendError as error:
            raise ApplicationError(
                str(error), error.code, type=constants.PERMANENT_SEND_ERROR, non_retryable=True
            ) from error
        return await self.send_message(message)

    @activity.defn(name=constants.AWAIT_BUFFER)
    async def await_buffer(self, conversation: str) -> None:
        """Wait until the buffer has handed on every message of `conversation` it held when this
        attempt began (none to wait for without a buffer). Heartbeats meanwhile, so an attempt on
        a worker that died is tried again elsewhere; a Redis error fails the attempt, retried."""
        if self.barrier is None:
            return
        drained = asyncio.ensure_future(self.barrier.drained(conversation))
        try:
            while not drained.done():
                activity.heartbeat()
                await asyncio.wait({drained}, timeout=constants.ORDER_HOLD_HEARTBEAT.total_seconds() / 3)
        finally:
            drained.cancel()
        drained.result()

    @activity.defn(name=constants.NEXT_ALLOWED_SEND)
    async def next_allowed_send(self, request: QuietHoursRequest) -> str:
        """Run as a local activity: its answer is recorded, so a replay after a time-zone
        database update still takes the same decision."""
        window = SendWindow(time.fromisoformat(request.start), time.fromisoformat(request.end))
        now = datetime.fromisoformat(request.now)
        return next_allowed_send(request.customer, window, now, request.timezone or None).isoformat()

    @activity.defn(name=constants.HTTP_REQUEST)
    async def http_request(self, request: HttpRequest) -> HttpResponse:
        """The call an `Http` step (or `convo.http`) asked for. Its secrets are read from this
        worker's environment now, and kept out of everything the call returns or raises (which
        Temporal records). A call the guard refuses (an address inside the network) fails at once,
        not retried, with the reason."""
        secrets: dict[str, str] = {}  # value -> what is shown instead
        headers, params = dict(request.headers), dict(request.params)
        for into, named in ((headers, request.secret_headers), (params, request.secret_params)):
            for key, wanted in named.items():
                value = wanted.resolve(os.environ)
                if value is None:
                    raise ApplicationError(
                        f"{request.method} {request.url}: secret {wanted.name} is not set in the worker's environment",
                        type=constants.HTTP_REFUSED,
                        non_retryable=True,
                    )
                into[key] = value
                secrets[value] = str(wanted)
        try:
            response = await self.http.request(
                request.method,
                request.url,
                params=params or None,
                json=request.json,
                headers=headers,
                timeout=request.timeout_seconds,
            )
        except RefusedAddress as error:
            raise ApplicationError(
                _scrub(f"{request.method} {request.url}: {error}", secrets),
                type=constants.HTTP_REFUSED,
                non_retryable=True,
            ) from None
        except httpx.HTTPError as error:
            raise ApplicationError(_scrub(f"{request.method} {request.url}: {error!r}", secrets)) from None
        if response.is_redirect:  # not followed: where it leads was not checked, nor chosen by the flow
            raise ApplicationError(
                f"{request.method} {request.url} answered {response.status_code}, a redirect (not followed)",
                response.status_code,
                type=constants.HTTP_CLIENT_ERROR,
                non_retryable=True,
            )
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
        # An API that echoes what it was sent (a header, a key) must not put it in the history.
        return HttpResponse(
            status=response.status_code, json=_scrub(body, secrets), text=_scrub(response.text[:2000], secrets)
        )


def _scrub(value: T, secrets: Mapping[str, str]) -> T:
    """`value` with every secret's value replaced by its name, in every string it holds."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret, shown in secrets.items():
            value = value.replace(secret, shown)  # type: ignore[assignment]
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]  # type: ignore[return-value]
    return value
