"""The worker's Prometheus metrics (the web app's are in `chatflow.web.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

from chatflow.temporal.outcomes import ConversationOutcomes

SENDS = Counter(
    "chatflow_sends_total",
    "Messages handed to providers, by provider and status: the provider's status, failed, retry, already_sent (a retry found the send done) or possible_duplicate (sent again after an attempt whose outcome is unknown).",
    ["provider", "status"],
)


def record_send(provider: str, status: str) -> None:
    SENDS.labels(provider, status).inc()


CONVERSATIONS_ENDED = Counter(
    "chatflow_conversations_ended_total",
    "Conversations that ended, by flow and outcome (completed, cancelled, expired, failed); "
    "failed counts flows that raised (a template key missing, a code step's exception) and "
    "failure branches that end the conversation.",
    ["flow", "outcome"],
)


def record_conversation_ended(flow: str, outcome: str) -> None:
    CONVERSATIONS_ENDED.labels(flow, outcome).inc()


def conversation_outcomes() -> ConversationOutcomes:
    """The worker's interceptor that counts each conversation's end in CONVERSATIONS_ENDED."""
    return ConversationOutcomes(record_conversation_ended)
