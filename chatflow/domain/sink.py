"""The Sink interface: where what happens in conversations flows back out (the business's
webhook, Segment, Mixpanel).

A sink is a provider plug-in (`providers/<kind>/`, listed in `providers.SINKS`) that delivers a
batch of lifecycle events to one destination. chatflow keeps the events in order in Redis and
calls `deliver` with batches of them, retrying with backoff what fails retryably and putting
aside (dead letters) what keeps failing, so a sink never sees Redis or Temporal.

    [[sinks]]
    name = "shop"           # its secret: SHOP_SINK_SECRET
    kind = "webhook"        # webhook | segment | mixpanel
    url = "https://shop.example/chatflow-events"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chatflow.domain.source import environment_name

if TYPE_CHECKING:
    import httpx

# The lifecycle of a conversation, as sinks see it.
STARTED = "conversation.started"
STEP_REACHED = "step.reached"
REPLY_MATCHED = "reply.matched"
HANDOVER_WANTED = "handover.wanted"
ENDED = "conversation.ended"
OPTED_OUT = "customer.opted_out"
MESSAGE_STATUS = "message.status"
EVENT_TYPES = (STARTED, STEP_REACHED, REPLY_MATCHED, HANDOVER_WANTED, ENDED, OPTED_OUT, MESSAGE_STATUS)


@dataclass(frozen=True)
class LifecycleEvent:
    """One thing that happened in a conversation. `id` is the same however often it is emitted
    again (a workflow task run twice), so destinations can drop repeats."""

    id: str
    type: str  # one of EVENT_TYPES
    at: str  # ISO 8601 UTC
    conversation: str
    flow: str = ""
    # What the type says (step, branch, outcome, reason, message_id, status...).
    detail: dict[str, Any] = field(default_factory=dict)
    # The journey data the flow chose to report (its `keys` and `sink_keys`).
    data: dict[str, Any] = field(default_factory=dict)


class SinkFailed(Exception):
    """A delivery that did not go through; `retryable` says whether trying again may help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    async def deliver(self, events: Sequence[LifecycleEvent]) -> None:
        """Deliver the batch, in order; SinkFailed when it did not go through."""
        ...


@dataclass(frozen=True)
class SinkBinding:
    """One `[[sinks]]` entry of chatflow.toml."""

    name: str
    kind: str
    url: str = ""  # "" : the kind's default (Segment's and Mixpanel's APIs)
    types: tuple[str, ...] = EVENT_TYPES  # the lifecycle events it takes
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkSpec:
    kind: str
    build: Callable[[SinkBinding, Mapping[str, str], httpx.AsyncClient], Sink]  # ValueError: what is wrong
    batch: int = 100  # events per delivery at most
    secrets: tuple[str, ...] = ("SINK_SECRET",)  # environment names, `<NAME>_<suffix>`

    def environment(self, name: str) -> tuple[str, ...]:
        return tuple(environment_name(name, suffix) for suffix in self.secrets)

    def missing(self, name: str, environment: Mapping[str, str]) -> list[str]:
        return [env for env in self.environment(name) if not environment.get(env)]
