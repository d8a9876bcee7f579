"""Meta's WhatsApp Cloud API: buttons and lists, templates outside the 24-hour window, webhooks.

channel.py   the Channel: routes, send, answer
render.py    an OutboundMessage as Cloud API message objects (and the 24-hour window)
send.py      the messages endpoint: posting, Meta's error codes, what to retry
graph.py     where the Graph API is
webhooks.py  the handshake, X-Hub-Signature-256, one POST's entries and changes
payload.py   reading Meta's JSON shapes; who the customer is (phone or user id)
inbound.py   a customer's message of any kind as an InboundMessage
statuses.py  a delivery status with the conversations it may belong to
"""

from __future__ import annotations

from chatflow.domain.channel import ChannelSpec, Resources
from chatflow.domain.config import Config, Settings
from providers.whatsapp_cloud.channel import WhatsAppCloudChannel


def missing_settings(settings: Settings) -> list[str]:
    return [
        name
        for name, value in (
            ("WHATSAPP_ACCESS_TOKEN", settings.whatsapp_access_token),
            ("WHATSAPP_APP_SECRET", settings.whatsapp_app_secret),
            ("WHATSAPP_VERIFY_TOKEN", settings.whatsapp_verify_token),
        )
        if not value
    ]


def build(config: Config, resources: Resources) -> WhatsAppCloudChannel:
    return WhatsAppCloudChannel(config, resources.http)


spec = ChannelSpec(
    name="whatsapp_cloud",
    carries=("whatsapp",),
    missing_settings=missing_settings,
    build=build,
    required_keys=("phone_number_id",),
)

__all__ = ["WhatsAppCloudChannel", "spec"]
