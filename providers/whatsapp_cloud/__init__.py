"""Meta's WhatsApp Cloud API: buttons and lists, templates outside the 24-hour window, webhooks.

channel.py   the Channel: routes, send, answer
render.py    an OutboundMessage as Cloud API message objects (and the 24-hour window)
send.py      the messages endpoint: posting, Meta's error codes, what to retry
settings.py  the app's settings, and the phone_number_id each number needs
graph.py     where the Graph API is
webhooks.py  the handshake, X-Hub-Signature-256, one POST's entries and changes
payload.py   reading Meta's JSON shapes; who the customer is (phone or user id)
inbound.py   a customer's message of any kind as an InboundMessage
statuses.py  a delivery status with the conversations it may belong to
"""

from __future__ import annotations

from chatflow.domain.channel import ChannelSpec, Resources
from chatflow.domain.config import Config
from providers._whatsapp import WHATSAPP
from providers.whatsapp_cloud.channel import WhatsAppCloudChannel
from providers.whatsapp_cloud.settings import PHONE_NUMBER_ID, CloudSettings, binding_options
from providers.whatsapp_cloud.templates import sync_templates


def build(config: Config, resources: Resources) -> WhatsAppCloudChannel:
    return WhatsAppCloudChannel(config, resources.http)


spec = ChannelSpec(
    name="whatsapp_cloud",
    address_kinds={"whatsapp": WHATSAPP},
    settings=CloudSettings,
    build=build,
    option_keys=(PHONE_NUMBER_ID,),
    options=binding_options,
    sync_templates=sync_templates,
)

__all__ = ["CloudSettings", "WhatsAppCloudChannel", "spec"]
