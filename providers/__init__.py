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


def build_channels(config: Config, resources: Resources) -> dict[str, Channel]:
    """The channels of this process, by name: those whose settings are all there, and the console.

    A number bound to a channel that is not configured is refused by the config check, which
    names the missing settings; a channel left out here has nothing to send or serve.
    """
    return {spec.name: spec.build(config, resources) for spec in CHANNELS if not spec.missing_settings(config.settings)}


def build_sources(config: Config, *, source: str = "chatflow.toml") -> dict[str, tuple[Source, SourceSpec]]:
    """The config's sources, by name, each with its spec; ConfigError naming the entry for an
    unknown kind, a key the kind does not take, or a secret missing from the environment."""
    kinds = {spec.kind: spec for spec in SOURCES}
    built: dict[str, tuple[Source, SourceSpec]] = {}
    for binding in config.sources:
        where = f"{source}: [[sources]] {binding.name!r}"
        spec = kinds.get(binding.kind)
        if spec is None:
            raise ConfigError(f"{where}: kind {binding.kind!r} is not one of {', '.join(kinds)}")
        missing = spec.missing(binding.name, config.settings.environment)
        if missing:
            raise ConfigError(f"{where} needs {', '.join(missing)} in the environment")
        try:
            built[binding.name] = (spec.build(binding, config.settings.environment), spec)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
    return built


def build_sinks(
    config: Config, http: httpx.AsyncClient, *, source: str = "chatflow.toml"
) -> dict[str, tuple[Sink, SinkSpec]]:
    """The config's sinks, by name, each with its spec; ConfigError naming the entry otherwise."""
    kinds = {spec.kind: spec for spec in SINKS}
    built: dict[str, tuple[Sink, SinkSpec]] = {}
    for binding in config.sinks:
        where = f"{source}: [[sinks]] {binding.name!r}"
        spec = kinds.get(binding.kind)
        if spec is None:
            raise ConfigError(f"{where}: kind {binding.kind!r} is not one of {', '.join(kinds)}")
        missing = spec.missing(binding.name, config.settings.environment)
        if missing:
            raise ConfigError(f"{where} needs {', '.join(missing)} in the environment")
        try:
            built[binding.name] = (spec.build(binding, config.settings.environment, http), spec)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
    return built


__all__ = ["CHANNELS", "SINKS", "SOURCES", "build_channels", "build_sinks", "build_sources"]
