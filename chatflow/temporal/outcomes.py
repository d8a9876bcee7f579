"""How each conversation ended, told to the process that ran its last workflow task.

A worker interceptor sees a conversation's result as its run completes (`ConversationResult`:
the flow and the outcome, `failed` for a flow that raised) and hands it to `on_end`, once:
never while a worker replays a history, nor for a run that continues as new. A worker killed
after the run's last task but before Temporal recorded it runs that task again, live, so an
end may rarely be told twice; counters built on it are for alerting, not for billing.

Give it to the worker (`build_worker(interceptors=[...])`, as `Services.worker` does), not to
its client as well: each would tell the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import client, worker, workflow
from temporalio.worker import ExecuteWorkflowInput, WorkflowInboundInterceptor, WorkflowInterceptorClassInput

from chatflow.temporal.records import ConversationResult

OnEnd = Callable[[str, str], None]  # (flow, outcome)


class ConversationOutcomes(client.Interceptor, worker.Interceptor):
    """A client's interceptor (the client passes it on to its workers) that tells `on_end` of each
    conversation's end."""

    def __init__(self, on_end: OnEnd) -> None:
        self._on_end = on_end

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        on_end = self._on_end

        class _Ended(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                result = await super().execute_workflow(input)
                if isinstance(result, ConversationResult) and not workflow.unsafe.is_replaying():
                    # The callback counts in this process's metrics, outside the sandbox's copies.
                    with workflow.unsafe.sandbox_unrestricted():
                        on_end(result.flow, result.outcome)
                return result

        return _Ended
