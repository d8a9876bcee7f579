"""Channel plug-ins: how chatflow talks to Twilio, Meta's WhatsApp Cloud API and the local console.

Each channel is one package implementing `chatflow.domain.channel.Channel` and exposing its
`ChannelSpec` as `spec`; `CHANNELS` is the one list of them. Adding a channel is a folder here
and a line below (see docs/channels.md). Only `chatflow.runtime` imports this package.
"""

from __future__ import annotations

from chatflow.domain.channel import Channel, ChannelSpec, Resources
from chatflow.domain.config import Config
from providers import console, twilio, whatsapp_cloud

CHANNELS: tuple[ChannelSpec, ...] = (twilio.spec, whatsapp_cloud.spec, console.spec)


def build_channels(config: Config, resources: Resources) -> dict[str, Channel]:
    """The channels of this process, by name: those whose settings are all there, and the console.

    A number bound to a channel that is not configured is refused by the config check, which
    names the missing settings; a channel left out here has nothing to send or serve.
    """
    return {spec.name: spec.build(config, resources) for spec in CHANNELS if not spec.missing_settings(config.settings)}


__all__ = ["CHANNELS", "build_channels"]
