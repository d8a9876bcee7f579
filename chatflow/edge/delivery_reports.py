"""Delivery reports: every status change of a message we sent, POSTed to the business, signed.

Each report is its own tiny workflow (id = message id + status), so it is durable, retried with
backoff until the business answers 2xx (for days, through their outages), and started at most
once per status even when the provider reports it twice. Statuses only move forward by rank
(`chatflow.domain.messages.STATUS_RANK`): a Redis script keeps the highest seen per message, so a
`delivered` arriving after `read` is never reported.

The body is JSON; `X-Chatflow-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the
shared secret lets the receiver check it came from us (compare in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import httpx
    from redis.asyncio import Redis
    from temporalio.client import Client
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from chatflow.edge import keys
    from chatflow.domain.messages import STATUS_RANK

SIGNATURE_HEADER = "X-Chatflow-Signature"
REPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=10)
)
GIVE_UP_AFTER = timedelta(days=3)

_ADVANCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local rank = tonumber(ARGV[1])
if rank <= current then return 0 end
redis.call('SET', KEYS[1], rank, 'EX', ARGV[2])
return 1
"""


@dataclass
class DeliveryReport:
    conversation_id: str
    message_id: str
    status: str  # sent | delivered | read | failed | undelivered ...
    customer: str = ""
    number: str = ""
    error_code: str = ""
    at: str = ""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DeliveryReporter:
    """The activity: one POST; any answer but 2xx is an error, so Temporal retries it."""

    def __init__(self, url: str, secret: str, http: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.secret = secret
        self.http = http or httpx.AsyncClient(timeout=10.0)

    @activity.defn(name="report_delivery")
    async def report_delivery(self, report: DeliveryReport) -> None:
        body = json.dumps(asdict(report), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, body)}
        try:
            response = await self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ApplicationError(f"delivery report to {self.url}: {error!r}") from error
        if not 200 <= response.status_code < 300:
            raise ApplicationError(f"delivery report to {self.url} answered {response.status_code}")


@workflow.defn(name="DeliveryReportWorkflow")
class DeliveryReportWorkflow:
    @workflow.run
    async def run(self, report: DeliveryReport) -> None:
        await workflow.execute_activity(
            "report_delivery",
            report,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=GIVE_UP_AFTER,
            retry_policy=REPORT_RETRY,
        )


class DeliveryReports:
    """What the status webhooks call for each provider status (after parsing it)."""

    def __init__(self, client: Client, redis: Redis, *, task_queue: str, keep: timedelta = timedelta(days=7)) -> None:
        self._client = client
        self._task_queue = task_queue
        self._keep = int(keep.total_seconds())
        self._advance = redis.register_script(_ADVANCE)

    async def status_changed(self, report: DeliveryReport) -> bool:
        """Report it when it moves the message forward; True when a report was started."""
        rank = STATUS_RANK.get(report.status)
        if rank is None:
            return False
        if not await self._advance(keys=[keys.delivery_status(report.message_id)], args=[rank, self._keep]):
            return False
        try:
            await self._client.start_workflow(
                DeliveryReportWorkflow.run,
                report,
                id=f"delivery-report:{report.message_id}:{report.status}",
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return False
        return True
