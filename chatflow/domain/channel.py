"""The Channel interface: what a provider plug-in (`providers/<name>/`) implements.

A channel owns everything about one provider: its settings and the environment variables they
are read from, the options of the numbers bound to it, the kinds of address it carries, its
webhook routes and how to verify and parse them, how to send, how its delivery statuses map to
ours, and how it answers a customer outside any flow (a STOP confirmation). chatflow's own
`Settings` know none of that. chatflow's web layer serves the
routes (reading bodies, mapping `Refused` errors to 4xx, timing them), its edge receives the
messages, and its worker sends through `send`. Providers never see HTTP frameworks, Redis or
Temporal; adding one is a folder and a line in `providers.CHANNELS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chatflow.domain.addresses import AddressKind, register_kind
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import DeliveryUpdate, InboundMessage, MediaContent, OutboundMessage, SendResult
from chatflow.domain.templates import TemplateSync

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


class MediaSource(Protocol):
    """A channel whose customers' media are fetched by id with its credentials (the Cloud API)."""

    async def fetch_media(self, media_id: str, max_bytes: int) -> MediaContent:
        """The media's bytes and type; MediaUnavailable when it cannot be had (over `max_bytes`,
        gone, not what the provider said it is)."""
        ...


@dataclass(frozen=True)
class Resources:
    """What channels share with the rest of the process."""

    http: httpx.AsyncClient
    redis: Redis | None = None


S = TypeVar("S")


def setting(env: str, default: str = "", *, required: bool = False, doc: str = "") -> str:
    """A field of a channel's settings dataclass, read from the environment variable `env`
    (`default` when it is unset or empty); a `required` one must be set for the channel to run.
    `doc` says what it is, for the settings reference (`chatflow.runtime.config.SETTINGS`)."""
    return field(default=default, metadata={"env": env, "required": required, "doc": doc})


def read_settings(cls: type[S], environment: Mapping[str, str]) -> S:
    """An instance of the settings dataclass `cls`, its `setting` fields read from `environment`."""
    values = {f.name: environment.get(f.metadata["env"]) or f.default for f in _settings_fields(cls)}
    return cls(**values)


def environment_names(cls: type[Any]) -> tuple[str, ...]:
    """The environment variables the settings dataclass `cls` reads."""
    return tuple(f.metadata["env"] for f in _settings_fields(cls))


def missing_settings(values: object) -> list[str]:
    """The environment variables of the required settings that `values` lacks."""
    return [
        f.metadata["env"]
        for f in _settings_fields(type(values))
        if f.metadata["required"] and not getattr(values, f.name)
    ]


def _settings_fields(cls: type[Any]) -> list[Any]:
    return [f for f in fields(cls) if "env" in f.metadata]


@dataclass(frozen=True)
class NoSettings:
    """The settings of a channel that needs none (the console)."""


def no_options(entry: Mapping[str, object]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ChannelSpec:
    """What chatflow knows of a channel before building it: enough to read and check the config."""

    name: str  # `provider` in chatflow.toml
    # The channels it carries (`channel` in chatflow.toml), each with the kind of the addresses on
    # it (ours and the customers'); the first is the default. The kinds are registered with it.
    address_kinds: Mapping[str, AddressKind]
    # Its settings: a dataclass whose fields are made with `setting`; `build` reads them with
    # `spec.read_settings(config.settings)`.
    settings: type[Any]
    build: Callable[[Config, Resources], Channel]
    # The keys of a [[numbers]] entry that are its own (whatsapp_cloud: phone_number_id), and how
    # it reads them into `NumberBinding.options`: ValueError saying what is wrong.
    option_keys: tuple[str, ...] = ()
    options: Callable[[Mapping[str, object]], dict[str, str]] = no_options
    # Its webhooks' signatures cover the URL called: `chatflow web` then needs CHATFLOW_PUBLIC_URL.
    signs_url: bool = False
    # How `chatflow templates sync` checks the flows' WhatsApp templates against its account's
    # (None: it has no templates to check).
    sync_templates: TemplateSync | None = None

    def __post_init__(self) -> None:
        for kind in self.address_kinds.values():
            register_kind(kind)

    @property
    def carries(self) -> tuple[str, ...]:
        return tuple(self.address_kinds)

    @property
    def environment(self) -> tuple[str, ...]:
        """The environment variables it reads."""
        return environment_names(self.settings)

    def read_settings(self, settings: Settings) -> Any:
        return read_settings(self.settings, settings.environment)

    def missing_settings(self, settings: Settings) -> list[str]:
        """The environment variables it needs that are not set."""
        return missing_settings(self.read_settings(settings))


def specs_by_name(specs: Sequence[ChannelSpec]) -> dict[str, ChannelSpec]:
    return {spec.name: spec for spec in specs}
