"""Provider plug-ins, one registry per role: channels (Twilio, Meta's WhatsApp Cloud API, email,
the local console), sources (signed webhooks in: Stripe, Standard Webhooks, Segment, Mixpanel, any
HMAC) and sinks (lifecycle events out: a webhook, Segment, Mixpanel).

Each channel is one package implementing `chatflow.domain.channel.Channel` and exposing its
`ChannelSpec` as `spec`; `CHANNELS` is the one list of them. Adding a channel is a folder here
and a line below (see docs/channels.md). A source kind exposes a `SourceSpec`
(`chatflow.domain.source`) listed in `SOURCES`, a sink kind a `SinkSpec` (`chatflow.domain.sink`)
listed in `SINKS`; one folder may play several roles (segment, mixpanel). Only `chatflow.runtime`
imports this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

import httpx

from chatflow.domain.channel import Channel, ChannelSpec, Resources
from chatflow.domain.config import Config
from chatflow.domain.errors import ConfigError
from chatflow.domain.sink import Sink, SinkSpec
from chatflow.domain.source import Source, SourceSpec
from providers import (
    console,
    email,
    hmac,
    mixpanel,
    segment,
    standard_webhooks,
    stripe,
    twilio,
    webhook,
    whatsapp_cloud,
)

CHANNELS: tuple[ChannelSpec, ...] = (twilio.spec, whatsapp_cloud.spec, email.spec, console.spec)
# Signed inbound webhooks of the systems a business runs ([[sources]] in chatflow.toml).
SOURCES: tuple[SourceSpec, ...] = (stripe.spec, standard_webhooks.spec, segment.spec, mixpanel.spec, hmac.spec)
# Where lifecycle events go ([[sinks]] in chatflow.toml).
SINKS: tuple[SinkSpec, ...] = (webhook.spec, segment.sink_spec, mixpanel.sink_spec)


class _Binding(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


class _KindSpec(Protocol):
    @property
    def kind(self) -> str: ...
    def missing(self, name: str, environment: Mapping[str, str]) -> list[str]: ...


_B = TypeVar("_B", bound=_Binding)
_S = TypeVar("_S", bound=_KindSpec)
_Built = TypeVar("_Built")


def build_channels(config: Config, resources: Resources) -> dict[str, Channel]:
    """The channels of this process, by name: those whose settings are all there, and the console.

    A number bound to a channel that is not configured is refused by the config check, which
    names the missing settings; a channel left out here has nothing to send or serve.
    """
    return {spec.name: spec.build(config, resources) for spec in CHANNELS if not spec.missing_settings(config.settings)}


def build_sources(config: Config, *, source: str = "chatflow.toml") -> dict[str, tuple[Source, SourceSpec]]:
    """The config's sources, by name, each with its spec; ConfigError naming the entry for an
    unknown kind, a key the kind does not take, or a secret missing from the environment."""
    environment = config.settings.environment
    return _built("sources", config.sources, SOURCES, environment, source, lambda spec, b: spec.build(b, environment))


def build_sinks(
    config: Config, http: httpx.AsyncClient, *, source: str = "chatflow.toml"
) -> dict[str, tuple[Sink, SinkSpec]]:
    """The config's sinks, by name, each with its spec; ConfigError naming the entry otherwise."""
    environment = config.settings.environment
    return _built("sinks", config.sinks, SINKS, environment, source, lambda spec, b: spec.build(b, environment, http))


def _built(
    table: str,
    bindings: Sequence[_B],
    specs: Sequence[_S],
    environment: Mapping[str, str],
    source: str,
    build: Callable[[_S, _B], _Built],
) -> dict[str, tuple[_Built, _S]]:
    """Each `[[table]]` entry built by the spec of its kind, by name; one ConfigError per mistake."""
    kinds = {spec.kind: spec for spec in specs}
    built: dict[str, tuple[_Built, _S]] = {}
    for binding in bindings:
        where = f"{source}: [[{table}]] {binding.name!r}"
        spec = kinds.get(binding.kind)
        if spec is None:
            raise ConfigError(f"{where}: kind {binding.kind!r} is not one of {', '.join(kinds)}")
        missing = spec.missing(binding.name, environment)
        if missing:
            raise ConfigError(f"{where} needs {', '.join(missing)} in the environment")
        try:
            built[binding.name] = (build(spec, binding), spec)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
    return built


__all__ = ["CHANNELS", "SINKS", "SOURCES", "build_channels", "build_sinks", "build_sources"]
