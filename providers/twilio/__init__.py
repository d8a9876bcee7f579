"""Twilio: SMS and WhatsApp through one account (the Messages API, its webhooks, TwiML).

channel.py   the Channel: routes, send, answer
client.py    the SDK's HTTP client over httpx (retryable errors, Retry-After)
send.py      an OutboundMessage as a Messages API call
segments.py  what an SMS costs
webhooks.py  verify X-Twilio-Signature, parse inbound messages and status callbacks
twiml.py     the answer to an inbound webhook
"""

from __future__ import annotations

from chatflow.domain.channel import ChannelSpec, Resources
from chatflow.domain.config import Config, Settings
from providers.twilio.channel import TwilioChannel


def missing_settings(settings: Settings) -> list[str]:
    return [
        name
        for name, value in (
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
        )
        if not value
    ]


def build(config: Config, resources: Resources) -> TwilioChannel:
    return TwilioChannel(config, resources.http)


spec = ChannelSpec(name="twilio", carries=("sms", "whatsapp"), missing_settings=missing_settings, build=build)

__all__ = ["TwilioChannel", "spec"]
