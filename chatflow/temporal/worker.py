"""The Temporal worker that runs conversations and their activities."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from chatflow.temporal.activities import ChatflowActivities
from chatflow.edge.delivery_reports import DeliveryReporter, DeliveryReportWorkflow
from chatflow.edge.send_guard import SendGuard
from chatflow.flows.flow import Flow
from chatflow.flows.registry import registry
from chatflow.temporal.workflow import ConversationWorkflow
from providers.base import Provider

TASK_QUEUE = "chatflow"

# Flows run inside Temporal's sandbox. The framework, the flows and `transitions` (whose core is
# deterministic) are passed through: they are imported once per worker, not once per run, and the
# flow registry the workflow reads is the one the worker filled.
# redis (and the opentelemetry it loads) import lazily, from objects the garbage collector may
# finalise on a workflow thread; passing them through keeps the sandbox from warning about it.
PASSTHROUGH = (
    "chatflow", "providers", "conversations", "transitions", "six", "phonenumbers", "httpx",
    "redis", "opentelemetry",
)


def sandbox_runner(flows: Iterable[type[Flow]] = ()) -> SandboxedWorkflowRunner:
    modules = set(PASSTHROUGH) | {flow.__module__.split(".")[0] for flow in flows}
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )


def build_worker(
    client: Client,
    flows: Iterable[type[Flow]],
    providers: Mapping[str, Provider],
    *,
    task_queue: str = TASK_QUEUE,
    http: httpx.AsyncClient | None = None,
    guard: SendGuard | None = None,
    reporter: DeliveryReporter | None = None,
    max_cached_workflows: int = 10_000,
) -> Worker:
    flows = list(flows)
    for flow in flows:
        registry.add(flow)
    activities = ChatflowActivities(providers, http, guard)
    workflows: list[type] = [ConversationWorkflow]
    functions: list[Callable[..., Any]] = [
        activities.send_message,
        activities.http_request,
        activities.next_allowed_send,
    ]
    if reporter is not None:  # delivery reports to the business's callback URL
        workflows.append(DeliveryReportWorkflow)
        functions.append(reporter.report_delivery)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=functions,
        workflow_runner=sandbox_runner(flows),
        max_cached_workflows=max_cached_workflows,
    )
