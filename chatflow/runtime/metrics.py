"""The worker's Prometheus metrics (the web app's are in `chatflow.web.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

SENDS = Counter(
    "chatflow_sends_total",
    "Messages handed to providers, by provider and status: the provider's status, failed, retry, already_sent (a retry found the send done) or possible_duplicate (sent again after an attempt whose outcome is unknown).",
    ["provider", "status"],
)


def record_send(provider: str, status: str) -> None:
    SENDS.labels(provider, status).inc()
