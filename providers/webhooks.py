"""The webhook routes of every provider, for the web app to mount."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from chatflow.domain.config import Config
from providers.intake import Report
from providers.twilio_webhooks import TwilioWebhooks
from providers.whatsapp_cloud_webhooks import Answer, WhatsAppCloudWebhooks

if TYPE_CHECKING:
    from chatflow.edge.inbound import Receive


def webhook_routes(
    config: Config, receive: Receive, report: Report, answer: Answer | None = None
) -> list[BaseRoute]:
    """`/webhooks/twilio`, `/webhooks/twilio/status` and `/webhooks/whatsapp`."""
    return [
        *TwilioWebhooks(config, receive, report).routes(),
        *WhatsAppCloudWebhooks(config, receive, report, answer).routes(),
    ]
