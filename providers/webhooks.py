"""The webhook routes of every provider, for the web app to mount."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from chatflow.config import Config
from providers.intake import Report
from providers.twilio_webhooks import TwilioWebhooks
from providers.whatsapp_cloud_webhooks import WhatsAppCloudWebhooks

if TYPE_CHECKING:
    from chatflow.app import Deliver


def webhook_routes(config: Config, deliver: Deliver, report: Report) -> list[BaseRoute]:
    """`/webhooks/twilio`, `/webhooks/twilio/status` and `/webhooks/whatsapp`."""
    return [
        *TwilioWebhooks(config, deliver, report).routes(),
        *WhatsAppCloudWebhooks(config, deliver, report).routes(),
    ]
