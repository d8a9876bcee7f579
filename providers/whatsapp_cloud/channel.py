"""Meta's WhatsApp Cloud API as a chatflow channel."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

from chatflow.domain.channel import Received, WebhookAnswer, WebhookRoute, read_settings
from chatflow.domain.config import Config
from chatflow.domain.errors import SendError
from chatflow.domain.messages import InboundMessage, MediaContent, OutboundMessage, SendResult
from providers._messages import reply_to
from providers.whatsapp_cloud.media import CloudMedia
from providers.whatsapp_cloud.send import CloudApi
from providers.whatsapp_cloud.settings import CloudSettings
from providers.whatsapp_cloud.webhooks import JSON, MAX_REQUEST_BYTES, WhatsAppCloudWebhooks

PATH = "/webhooks/whatsapp"

log = logging.getLogger(__name__)


class WhatsAppCloudChannel:
    name = "whatsapp_cloud"

    def __init__(self, config: Config, http: httpx.AsyncClient) -> None:
        self.api = CloudApi(config, http)
        self.webhooks = WhatsAppCloudWebhooks(config)
        self.media = CloudMedia(read_settings(CloudSettings, config.settings.environment), http)

    def routes(self) -> Sequence[WebhookRoute]:
        return [
            WebhookRoute(PATH, "GET", self.webhooks.handshake),
            WebhookRoute(PATH, "POST", self.webhooks.receive, JSON, MAX_REQUEST_BYTES),
        ]

    async def send(self, message: OutboundMessage) -> SendResult:
        return await self.api.send(message)

    async def fetch_media(self, media_id: str, max_bytes: int) -> MediaContent:
        return await self.media.fetch(media_id, max_bytes)

    async def answer(self, received: Received, replies: Sequence[tuple[InboundMessage, str]]) -> WebhookAnswer:
        # Meta's webhook cannot carry an answer: replies go through the API, straight away and
        # not through the send path, which refuses a customer who has just opted out.
        for message, text in replies:
            try:
                await self.api.send(reply_to(message, text))
            except SendError as error:
                # The messages are handed on already: failing the webhook would only make Meta
                # send them again, and the dedupe drop them.
                log.warning("could not answer %s outside a flow: %s", message.id, error)
        return WebhookAnswer(200, "ok")
