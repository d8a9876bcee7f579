"""The worker the edge tests run: chatflow's own, with the edge's send guard installed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from temporalio.client import Client
from temporalio.worker import Worker

from chatflow.edge.send_guard import SendGuard
from chatflow.flows.flow import Flow
from chatflow.temporal.worker import build_worker
from providers.base import Provider


def guarded_worker(
    client: Client,
    flows: Iterable[type[Flow]],
    providers: Mapping[str, Provider],
    guard: SendGuard | None,
    task_queue: str,
) -> Worker:
    return build_worker(client, flows, providers, task_queue=task_queue, guard=guard)
