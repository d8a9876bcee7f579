"""Delivery reports' durable half: one tiny workflow per status, POSTing it to the business, signed.

Each report is its own workflow (id = message id + status), so it is durable, retried with
backoff until the business answers 2xx (for days, through their outages), and started at most
once per status even when the provider reports it twice. `chatflow.edge.delivery_reports`
decides which statuses to report (only those that move a message forward).

The body is JSON; `X-Chatflow-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the
shared secret lets the receiver check it came from us (compare in constant time).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import httpx

    from chatflow.domain.signing import signature
    from chatflow.temporal import constants

SIGNATURE_HEADER = "X-Chatflow-Signature"


@dataclass
class DeliveryReport:
    conversation_id: str
    message_id: str
    status: str  # sent | delivered | read | failed | undelivered ...
    customer: str = ""
    number: str = ""
    error_code: str = ""
    at: str = ""


class DeliveryReporter:
    """The activity: one POST; any answer but 2xx is an error, so Temporal retries it."""

    def __init__(self, url: str, secret: str, http: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.secret = secret
        self.http = http or httpx.AsyncClient(timeout=10.0)

    @activity.defn(name=constants.REPORT_DELIVERY)
    async def report_delivery(self, report: DeliveryReport) -> None:
        body = json.dumps(asdict(report), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, body)}
        try:
            response = await self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ApplicationError(f"delivery report to {self.url}: {error!r}") from error
        if not 200 <= response.status_code < 300:
            raise ApplicationError(f"delivery report to {self.url} answered {response.status_code}")


@workflow.defn(name=constants.DELIVERY_REPORT_WORKFLOW)
class DeliveryReportWorkflow:
    @workflow.run
    async def run(self, report: DeliveryReport) -> None:
        await workflow.execute_activity(
            constants.REPORT_DELIVERY,
            report,
            start_to_close_timeout=constants.REPORT_TIMEOUT,
            schedule_to_close_timeout=constants.REPORT_GIVE_UP_AFTER,
            retry_policy=constants.REPORT_RETRY,
        )
