"""Delivery reports' deciding half: report a status only when it moves the message forward.

Statuses only move forward by rank (`chatflow.domain.messages.STATUS_RANK`): a Redis script keeps
the highest seen per message, so a `delivered` arriving after `read` is never reported. The
report itself is a workflow (`chatflow.temporal.delivery_reports`), durable and retried.
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from chatflow.domain.messages import STATUS_RANK
from chatflow.edge import keys
from chatflow.temporal.constants import TASK_QUEUE
from chatflow.temporal.delivery_reports import DeliveryReport, DeliveryReportWorkflow

_ADVANCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local rank = tonumber(ARGV[1])
if rank <= current then return 0 end
redis.call('SET', KEYS[1], rank, 'EX', ARGV[2])
return 1
"""


class DeliveryReports:
    """What the status webhooks call for each provider status (after parsing it)."""

    def __init__(
        self, client: Client, redis: Redis, *, task_queue: str = TASK_QUEUE, keep: timedelta = timedelta(days=7)
    ) -> None:
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
