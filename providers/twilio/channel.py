"""SMS and WhatsApp through one Twilio account, as a chatflow channel."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from twilio.rest import Client

from chatflow.domain.channel import Received, WebhookAnswer, WebhookRoute, read_settings
from chatflow.domain.config import Config
from chatflow.domain.messages import InboundMessage, OutboundMessage, SendResult
from providers.twilio.client import HttpxTwilioClient
from providers.twilio.content import ContentApi, Contents
from providers.twilio.send import send as send_message
from providers.twilio.settings import TwilioSettings
from providers.twilio.twiml import twiml
from providers.twilio.webhooks import FORM, MAX_REQUEST_BYTES, TwilioWebhooks

INBOUND_PATH = "/webhooks/twilio"
STATUS_PATH = "/webhooks/twilio/status"


class TwilioChannel:
    name = "twilio"

    def __init__(self, config: Config, http: httpx.AsyncClient) -> None:
        self.public_url = config.settings.public_url
        settings = read_settings(TwilioSettings, config.settings.environment)
        self.http_client = HttpxTwilioClient(http, settings.api_url.rstrip("/"))
        # The SDK refuses to be built without credentials: `spec.build` is only called with them.
        self.client = Client(settings.account_sid, settings.auth_token, http_client=self.http_client)
        self.contents = Contents(ContentApi(settings, http))
        self.webhooks = TwilioWebhooks(config)

    @property
    def status_callback(self) -> str:
        # Twilio needs an absolute URL it can reach; without a public URL there are no statuses.
        base = self.public_url
        return f"{base}{STATUS_PATH}" if base else ""

    def routes(self) -> Sequence[WebhookRoute]:
        return [
            WebhookRoute(INBOUND_PATH, "POST", self.webhooks.inbound, FORM, MAX_REQUEST_BYTES),
            WebhookRoute(STATUS_PATH, "POST", self.webhooks.status, FORM, MAX_REQUEST_BYTES),
        ]

    async def send(self, message: OutboundMessage) -> SendResult:
        return await send_message(self.client, message, status_callback=self.status_callback, contents=self.contents)

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        # One inbound webhook carries one message, so its replies all go to that message's sender.
        return twiml([text for _, text in replies])
