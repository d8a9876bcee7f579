import hmac
import json
import uuid

import httpx
import respx
from redis.asyncio import Redis
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from chatflow.domain.signing import signature
from chatflow.edge.delivery_reports import DeliveryReports
from chatflow.temporal.delivery_reports import (
    SIGNATURE_HEADER,
    DeliveryReport,
    DeliveryReporter,
    DeliveryReportWorkflow,
)
from chatflow.temporal.worker import sandbox_runner

URL = "https://business.example/chatflow/status"
SECRET = "whsec-1"


def report(status: str, message_id: str = "SM1") -> DeliveryReport:
    return DeliveryReport("chat:sms:+15005550006:+14155550100", message_id, status, "+14155550100", "+15005550006")


async def test_every_forward_status_is_posted_signed_and_retried_until_2xx(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    task_queue = f"reports-{uuid.uuid4().hex}"
    message_id = f"SM{uuid.uuid4().hex}"
    answered: list[str] = []

    def business(request: httpx.Request) -> httpx.Response:
        status = json.loads(request.content)["status"]
        answered.append(status)
        return httpx.Response(503 if answered.count("sent") == 1 and status == "sent" else 204)

    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(URL).mock(side_effect=business)
        reporter = DeliveryReporter(URL, SECRET, httpx.AsyncClient())
        reports = DeliveryReports(dev_env.client, redis, task_queue=task_queue)
        async with Worker(
            dev_env.client,
            task_queue=task_queue,
            workflows=[DeliveryReportWorkflow],
            activities=[reporter.report_delivery],
            # The sandbox as the project's worker sets it up (chatflow passed through, its
            # catalogues read once outside any workflow).
            workflow_runner=sandbox_runner(),
        ):
            assert await reports.status_changed(report("sent", message_id))
            assert await reports.status_changed(report("read", message_id))
            # Late or repeated reports never go backwards or twice.
            assert not await reports.status_changed(report("delivered", message_id))
            assert not await reports.status_changed(report("read", message_id))
            assert not await reports.status_changed(report("sideways", message_id))
            for status in ("sent", "read"):
                handle = dev_env.client.get_workflow_handle(f"delivery-report:{message_id}:{status}")
                await handle.result()
                assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    bodies = [call.request.content for call in route.calls]
    assert len(bodies) == 3  # sent failed once, then sent and read
    for call in route.calls:
        expected = signature(SECRET, call.request.content)
        assert hmac.compare_digest(call.request.headers[SIGNATURE_HEADER], expected)
    assert sorted(json.loads(b)["status"] for b in bodies) == ["read", "sent", "sent"]
    assert json.loads(bodies[-1])["conversation_id"] == "chat:sms:+15005550006:+14155550100"
