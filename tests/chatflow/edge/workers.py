"""A Temporal worker like chatflow.worker.build_worker's, with the edge's send guard installed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from temporalio.client import Client
from temporalio.worker import Worker

from chatflow.activities import ChatflowActivities
from chatflow.edge.send_guard import SendGuard
from chatflow.flow import Flow
from chatflow.registry import registry
from chatflow.worker import sandbox_runner
from chatflow.workflow import ConversationWorkflow
from providers.base import Provider


def guarded_worker(
    client: Client,
    flows: Iterable[type[Flow]],
    providers: Mapping[str, Provider],
    guard: SendGuard | None,
    task_queue: str,
) -> Worker:
    flows = list(flows)
    for flow in flows:
        registry.add(flow)
    activities = ChatflowActivities(providers, guard=guard)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ConversationWorkflow],
        activities=[activities.send_message, activities.http_request],
        workflow_runner=sandbox_runner(flows),
    )
