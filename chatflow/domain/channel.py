"""The Channel interface: what a provider plug-in (`providers/<name>/`) implements.

A channel owns everything about one provider: which settings it needs, its webhook routes and
how to verify and parse them, how to send, how its delivery statuses map to ours, and how it
answers a customer outside any flow (a STOP confirmation). chatflow's web layer serves the
routes (reading bodies, mapping `Refused` errors to 4xx, timing them), its edge receives the
messages, and its worker sends through `send`. Providers never see HTTP frameworks, Redis or
Temporal; adding one is a folder and a line in `providers.CHANNELS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import DeliveryUpdate, InboundMessage, OutboundMessage, SendResult

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request to a channel's route, as the web layer read it."""

    method: str
    url: str  # the URL the provider called, as it signed it (CHATFLOW_PUBLIC_URL behind a proxy)
    headers: Mapping[str, str]  # names in lower case
    query: Mapping[str, str]
    body: bytes  # already within the route's `max_bytes` and of its `content_type`


@dataclass(frozen=True)
class WebhookAnswer:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


@dataclass
class StatusReport:
    update: DeliveryUpdate
    conversations: list[str]  # the conversations it may belong to, the most likely first


@dataclass
class Received:
    """What one verified webhook carries for the edge, each message with the number it reached."""

    messages: list[tuple[InboundMessage, NumberBinding]] = field(default_factory=list)
    statuses: list[StatusReport] = field(default_factory=list)
    # Set when the request is answered as it is (a subscription handshake, a read): nothing is
    # handed on and `Channel.answer` is not called.
    answer: WebhookAnswer | None = None


Handler = Callable[[WebhookRequest], Awaitable[Received]]


@dataclass(frozen=True)
class WebhookRoute:
    path: str
    method: str
    handle: Handler  # raises chatflow.domain.errors.Refused subclasses for bad input
    content_type: str = ""  # the one Content-Type accepted on a body ("" when there is no body)
    max_bytes: int = 64 * 1024


class Channel(Protocol):
    """One provider, built from the config by its `ChannelSpec.build`."""

    name: str  # as `provider` in chatflow.toml

    def routes(self) -> Sequence[WebhookRoute]: ...

    async def send(self, message: OutboundMessage) -> SendResult:
        """Raise PermanentSendError or RetryableSendError when the provider does not take it."""
        ...

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        """The webhook's answer once the edge has taken every message. `replies` are answers
        outside any flow (opt-out confirmation, help), each to the sender of its message, which
        must reach the customer even when the send path refuses them (they opted out)."""
        ...


@dataclass(frozen=True)
class Resources:
    """What channels share with the rest of the process."""

    http: httpx.AsyncClient
    redis: Redis | None = None


@dataclass(frozen=True)
class ChannelSpec:
    """What chatflow knows of a channel before building it: enough to check the config."""

    name: str
    # The message channels it carries (`channel` in chatflow.toml); the first is the default.
    carries: tuple[str, ...]
    # Environment variables a number bound to it needs and that `settings` lacks.
    missing_settings: Callable[[Settings], list[str]]
    build: Callable[[Config, Resources], Channel]
    # Config keys of [[numbers]] entries it requires (whatsapp_cloud: phone_number_id).
    required_keys: tuple[str, ...] = ()


def specs_by_name(specs: Sequence[ChannelSpec]) -> dict[str, ChannelSpec]:
    return {spec.name: spec for spec in specs}
