"""The Twilio account chatflow sends with, from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from chatflow.domain.channel import setting


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str = setting("TWILIO_ACCOUNT_SID", required=True, doc="the account's SID (Console > Account info)")
    auth_token: str = setting(
        "TWILIO_AUTH_TOKEN", required=True, doc="the account's auth token; it also signs Twilio's webhooks"
    )
    # Another API host: a test double, or a regional edge.
    api_url: str = setting(
        "CHATFLOW_TWILIO_API_URL", "https://api.twilio.com", doc="Twilio API base (tests point it elsewhere)"
    )
    # Another host for the Content API (content templates, their WhatsApp approvals).
    content_url: str = setting(
        "CHATFLOW_TWILIO_CONTENT_URL",
        "https://content.twilio.com",
        doc="Twilio Content API base: content templates and their WhatsApp approvals (tests point it elsewhere)",
    )
