"""The Temporal worker that runs conversations and their activities."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from chatflow.domain.channel import Channel
from chatflow.flows.flow import Flow
from chatflow.flows.registry import registry
from chatflow.temporal.activities import Barrier, ChatflowActivities, Guard, Ledger, OnSend, Sender, ignore_sends
from chatflow.temporal.constants import TASK_QUEUE, WORKER_SHUTDOWN_GRACE
from chatflow.temporal.delivery_reports import DeliveryReporter, DeliveryReportWorkflow
from chatflow.temporal.media import MediaFetcher
from chatflow.temporal.search_attributes import ensure_registered
from chatflow.temporal.which import WhichConversation
from chatflow.temporal.workflow import ConversationWorkflow

# Flows run inside Temporal's sandbox. chatflow, the flows and `transitions` (whose core is
# deterministic) are passed through: imported once per worker, not once per run, and the flow
# registry the workflow reads is the one the worker filled. Babel (the locale's dates and numbers)
# too: its locale data, read once, is the same on every run. redis and opentelemetry are never
# imported by a workflow, but load lazily from objects the garbage collector may finalise on a
# workflow thread; passing them through keeps the sandbox from warning about it.
PASSTHROUGH = ("chatflow", "transitions", "six", "phonenumbers", "babel", "redis", "opentelemetry")
# A conversation's next workflow task goes first to the worker that ran the last one (its sticky
# queue), which has the run cached. A worker that died without telling the server (killed, crashed)
# leaves its conversations' next tasks waiting there this long before any other worker may take
# them: the SDK's 10 s made the first reply after a crash 10 s late. A live worker starts a task
# well within 2 s; one that cannot is overloaded, and another worker may take the task (replaying
# the history, which continue-as-new keeps short).
STICKY_TIMEOUT = timedelta(seconds=2)


class ConversationWorker(Worker):
    """A worker that registers chatflow's search attributes before it takes any task: a
    conversation setting an attribute the namespace does not know would fail every task."""

    async def run(self) -> None:
        await ensure_registered(self.client)
        await super().run()


def sandbox_runner(flows: Iterable[type[Flow]] = ()) -> SandboxedWorkflowRunner:
    modules = set(PASSTHROUGH) | {flow.__module__.split(".")[0] for flow in flows}
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules))


def build_worker(
    client: Client,
    flows: Iterable[type[Flow]],
    channels: Mapping[str, Channel],
    *,
    task_queue: str = TASK_QUEUE,
    http: httpx.AsyncClient | None = None,
    guard: Guard | None = None,
    reporter: DeliveryReporter | None = None,
    on_send: OnSend = ignore_sends,
    max_cached_workflows: int = 10_000,
    ledger: Ledger | None = None,
    barrier: Barrier | None = None,
    graceful_shutdown_timeout: timedelta = WORKER_SHUTDOWN_GRACE,
    max_concurrent_workflow_tasks: int | None = None,
    interceptors: Sequence[Interceptor] = (),
    http_allow: Iterable[str] = (),
    fallbacks: Mapping[str, tuple[str, str]] | None = None,
    senders: Mapping[str, Sender] | None = None,
    media_dir: str = "",
) -> Worker:
    """The worker; `ledger` keeps a send from being made twice when its result is lost (a worker
    killed mid-send), `barrier` keeps a conversation's messages in order across a Redis outage
    (without one, nothing waits for the buffer), and a stopping worker lets running activities finish for up to
    `graceful_shutdown_timeout` before it cancels them.

    `max_concurrent_workflow_tasks` None keeps the SDK's 100. Fewer cut the worker's CPU per new
    conversation by about a quarter in an overloaded bench (fewer task timeouts and replays; see
    docs/benchmarks.md), but a workflow task keeps its slot while its local sends run, so with a
    real provider's latency fewer slots would cap the sends in flight: not lowered by default.

    `Http` steps call through `http` when given, else through a client that refuses addresses
    inside the network but for the `http_allow` hosts ("host" or "host:port")."""
    flows = list(flows)
    registry.deploy(flows, task_queue)
    # `senders`: our address on each channel, for notifications (`Notify`) to another channel.
    activities = ChatflowActivities(
        channels, http, guard, on_send, ledger, barrier, http_allow, fallbacks, senders=senders
    )
    workflows: list[type] = [ConversationWorkflow, WhichConversation]
    functions: list[Callable[..., Any]] = [
        activities.send_message,
        activities.http_request,
        activities.next_allowed_send,
        activities.await_buffer,
        activities.notify,
        MediaFetcher(channels, media_dir).fetch_media,  # `convo.fetch_media`: into `media_dir`
    ]
    if reporter is not None:  # delivery reports to the business's callback URL
        workflows.append(DeliveryReportWorkflow)
        functions.append(reporter.report_delivery)
    return ConversationWorker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=functions,
        workflow_runner=sandbox_runner(flows),
        max_cached_workflows=max_cached_workflows,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        interceptors=interceptors,
    )
