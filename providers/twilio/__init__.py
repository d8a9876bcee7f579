"""Twilio: SMS and WhatsApp through one account (the Messages API, its webhooks, TwiML).

channel.py   the Channel: routes, send, answer
client.py    the SDK's HTTP client over httpx (retryable errors, Retry-After)
send.py      an OutboundMessage as a Messages API call
segments.py  what an SMS costs
settings.py  the account, from the environment
webhooks.py  verify X-Twilio-Signature, parse inbound messages and status callbacks
twiml.py     the answer to an inbound webhook
"""

from __future__ import annotations

from chatflow.domain.addresses import TEL
from chatflow.domain.channel import ChannelSpec, Resources
from chatflow.domain.config import Config
from providers._whatsapp import WHATSAPP
from providers.twilio.channel import TwilioChannel
from providers.twilio.settings import TwilioSettings
from providers.twilio.template_sync import sync_templates


def build(config: Config, resources: Resources) -> TwilioChannel:
    return TwilioChannel(config, resources.http)


# Twilio signs the URL it calls with the form: `chatflow web` needs CHATFLOW_PUBLIC_URL to know it.
spec = ChannelSpec(
    name="twilio",
    address_kinds={"sms": TEL, "whatsapp": WHATSAPP},
    settings=TwilioSettings,
    build=build,
    signs_url=True,
    sync_templates=sync_templates,
)

__all__ = ["TwilioChannel", "TwilioSettings", "spec"]
