"""Sending WhatsApp messages through Meta's WhatsApp Cloud API (the Graph API), over httpx."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from chatflow.domain.channel import read_settings
from chatflow.domain.config import Config
from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import OutboundMessage, SendResult
from providers._http import retry_after
from providers._whatsapp import within_window
from providers.whatsapp_cloud.graph import graph_url
from providers.whatsapp_cloud.render import recipient, render, template
from providers.whatsapp_cloud.settings import PHONE_NUMBER_ID, CloudSettings

OUTSIDE_WINDOW = "131047"  # Meta's code for "re-engagement message": more than 24 hours passed
# Refusals of free text that a template may get past: outside the window (131047) and Meta's
# "message undeliverable" (131026), which it also gives a user it will not start a chat with.
TEMPLATE_MAY_PASS = frozenset({OUTSIDE_WINDOW, "131026"})
# Meta's codes worth asking again for: throttling (4, 80007, 130429), pair rate limit (131056),
# and its own transient failures (1, 2, 131000, 131016, 133004). Any other error is permanent:
# invalid recipient (131026), outside the window (131047), bad parameters (100, 131009)...
RETRYABLE_CODES = frozenset({"1", "2", "4", "80007", "130429", "131000", "131016", "131056", "133004"})
TIMEOUT = 15.0


def _error(response: httpx.Response) -> tuple[str, str]:
    """Meta's error code and message from an error response (the HTTP status when it has none)."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or response.status_code)
    details = error.get("error_data", {}).get("details", "") if isinstance(error.get("error_data"), dict) else ""
    return code, str(details or error.get("message") or response.text[:200])


class CloudApi:
    """The Cloud API's messages endpoint of each of our numbers (by phone_number_id)."""

    def __init__(self, config: Config, http: httpx.AsyncClient) -> None:
        self.config = config
        self.settings = read_settings(CloudSettings, config.settings.environment)
        self.http = http

    def url(self, phone_number_id: str) -> str:
        return graph_url(self.settings, phone_number_id, "messages")

    async def send(self, message: OutboundMessage) -> SendResult:
        binding = self.config.binding(message.number, "whatsapp_cloud")
        if binding is None:
            raise PermanentSendError(f"{message.number} is not bound to whatsapp_cloud in the config")
        declared = message.template_to_send()
        phone_number_id = binding.options[PHONE_NUMBER_ID]
        if within_window(message.last_inbound_at, datetime.now(UTC)) and not message.template_only:
            parts = render(message)
        elif declared is not None:
            parts = [template(declared)]
        else:
            raise PermanentSendError(
                "the customer last wrote more than 24 hours ago (or never): "
                "only a template message may be sent, and this message has none",
                code=OUTSIDE_WINDOW,
            )
        message_id = ""
        for index, part in enumerate(parts):
            try:
                message_id = await self.post(phone_number_id, {**recipient(message.customer), **part})
            except PermanentSendError as error:
                # Meta knew better than our record of the window: the template says it instead
                # (only for the first part: a later one would say again what went before).
                if index > 0 or part["type"] == "template" or declared is None or error.code not in TEMPLATE_MAY_PASS:
                    raise
                message_id = await self.post(phone_number_id, {**recipient(message.customer), **template(declared)})
                break
        # Accepted by Meta, not yet sent: the `sent` status arrives by webhook.
        return SendResult(message_id=message_id, status="accepted")

    async def post(self, phone_number_id: str, part: dict[str, Any]) -> str:
        """Send one message object; the wamid Meta gave it ("" when its answer did not say)."""
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", **part}
        headers = {"Authorization": f"Bearer {self.settings.access_token}"}
        try:
            response = await self.http.post(self.url(phone_number_id), json=payload, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise RetryableSendError(f"WhatsApp Cloud API unreachable: {error!r}") from error
        if response.is_success:
            try:
                return str(response.json()["messages"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError):
                return ""  # accepted all the same: sending again would send it twice
        code, reason = _error(response)
        if response.status_code == 429 or response.status_code >= 500 or code in RETRYABLE_CODES:
            raise RetryableSendError(
                f"WhatsApp Cloud API answered {response.status_code} ({code}): {reason}",
                code=code,
                retry_after=retry_after(response.headers),
            )
        raise PermanentSendError(f"WhatsApp Cloud API refused the message ({code}): {reason}", code=code)
