"""Email: send through SMTP or Mailgun; replies, bounces and complaints through Mailgun's webhooks.

channel.py      the Channel: routes, send, answer; replies matched to their conversation
settings.py     its environment names (CHATFLOW_SMTP_URL, CHATFLOW_EMAIL_FROM, MAILGUN_*)
mime.py         an OutboundMessage as an email: subject, text and HTML, Message-ID, List-Unsubscribe
smtp.py         aiosmtplib, its answers as permanent or retryable errors
mailgun.py      Mailgun's send API and its webhook signature
inbound.py      Mailgun's inbound route and event payloads, read
replies.py      the reply's own text, without what it quotes
unsubscribe.py  signed one-click unsubscribe links (RFC 8058)
"""

from __future__ import annotations

from dataclasses import dataclass

from chatflow.domain.addresses import MAILTO
from chatflow.domain.channel import ChannelSpec, Resources
from chatflow.domain.config import Config, Settings
from providers.email.channel import EmailChannel
from providers.email.settings import EmailSettings


def build(config: Config, resources: Resources) -> EmailChannel:
    settings = read(config.settings)
    return EmailChannel(config, settings, http=resources.http, redis=resources.redis)


def read(settings: Settings) -> EmailSettings:
    values: EmailSettings = spec.read_settings(settings)
    return values


@dataclass(frozen=True)
class EmailSpec(ChannelSpec):
    """Email needs one way to send of two (SMTP or Mailgun): neither setting is required alone."""

    def missing_settings(self, settings: Settings) -> list[str]:
        return read(settings).missing()


spec = EmailSpec(name="email", address_kinds={"email": MAILTO}, settings=EmailSettings, build=build)

__all__ = ["EmailChannel", "EmailSettings", "spec"]
