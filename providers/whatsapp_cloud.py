"""Sending WhatsApp messages through Meta's WhatsApp Cloud API (the Graph API), over httpx.

Choices become reply buttons (up to 3) or a list (up to 10), else a numbered menu. Free-form
messages are only allowed within 24 hours of the customer's last message; outside that window
only an approved template may be sent.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from chatflow.domain.config import Config
from chatflow.domain.messages import Media, OutboundMessage, SendResult, numbered_menu
from providers.base import PermanentSendError, RetryableSendError, retry_after

SERVICE_WINDOW = timedelta(hours=24)
OUTSIDE_WINDOW = "131047"  # Meta's code for "re-engagement message": more than 24 hours passed
MAX_BUTTONS, BUTTON_TITLE = 3, 20
MAX_ROWS, ROW_TITLE, ROW_DESCRIPTION = 10, 24, 72
MAX_INTERACTIVE_BODY = 1024
LIST_BUTTON = "Choose"
DEFAULT_TEMPLATE_LANGUAGE = "en_US"
CAPTIONED = ("image", "video", "document")
# Meta's codes worth asking again for: throttling (4, 80007, 130429), pair rate limit (131056),
# and its own transient failures (1, 2, 131000, 131016, 133004). Any other error is permanent:
# invalid recipient (131026), outside the window (131047), bad parameters (100, 131009)...
RETRYABLE_CODES = frozenset({"1", "2", "4", "80007", "130429", "131000", "131016", "131056", "133004"})


def within_window(last_inbound_at: str, now: datetime) -> bool:
    """True while free-form messages are allowed: the customer wrote less than 24 hours ago."""
    if not last_inbound_at:
        return False
    try:
        last = datetime.fromisoformat(last_inbound_at)
    except ValueError:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return now - last < SERVICE_WINDOW


def recipient(customer: str) -> dict[str, str]:
    """Address a customer by phone (`to`) or, when that is all we know, by business-scoped id."""
    if customer.startswith("+"):
        return {"to": customer[1:]}
    return {"recipient": customer}


def media_kind(media: Media) -> str:
    content_type = media.content_type or mimetypes.guess_type(urlsplit(media.url).path)[0] or ""
    for kind in ("image", "video", "audio"):
        if content_type.startswith(f"{kind}/"):
            return kind
    return "document"


def _buttons(text: str, message: OutboundMessage) -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": text},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": option.id, "title": option.title[:BUTTON_TITLE]}}
                for option in message.options
            ]
        },
    }


def _list(text: str, message: OutboundMessage) -> dict[str, Any]:
    rows = []
    for option in message.options:
        row = {"id": option.id, "title": option.title[:ROW_TITLE]}
        if option.description:
            row["description"] = option.description[:ROW_DESCRIPTION]
        rows.append(row)
    return {
        "type": "list",
        "body": {"text": text},
        "action": {"button": LIST_BUTTON, "sections": [{"rows": rows}]},
    }


def render(message: OutboundMessage) -> list[dict[str, Any]]:
    """The Cloud API message objects (without addressing) that say `message`, in order."""
    parts: list[dict[str, Any]] = []
    text, options = message.text, message.options
    captioned = False
    for media in message.media:
        kind = media_kind(media)
        body = {"link": media.url}
        if text and not options and not captioned and kind in CAPTIONED:
            body["caption"], captioned = text, True
        parts.append({"type": kind, kind: body})
    interactive = options and len(options) <= MAX_ROWS and len(text) <= MAX_INTERACTIVE_BODY
    if interactive:
        prompt = text or "Please choose:"  # an interactive message needs a body
        build = _buttons if len(options) <= MAX_BUTTONS else _list
        parts.append({"type": "interactive", "interactive": build(prompt, message)})
    elif (text or options) and not captioned:
        parts.append({"type": "text", "text": {"body": numbered_menu(text, options), "preview_url": False}})
    return parts


def template(name: str) -> dict[str, Any]:
    """A template message from `name` or `name:language` (language defaults to en_US)."""
    name, _, language = name.partition(":")
    return {"type": "template", "template": {"name": name, "language": {"code": language or DEFAULT_TEMPLATE_LANGUAGE}}}


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


class WhatsAppCloudProvider:
    name = "whatsapp_cloud"

    def __init__(self, config: Config, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.http = http or httpx.AsyncClient()

    def url(self, phone_number_id: str) -> str:
        settings = self.config.settings
        return f"{settings.whatsapp_api_url}/v{settings.whatsapp_api_version}/{phone_number_id}/messages"

    async def send(self, message: OutboundMessage) -> SendResult:
        binding = self.config.binding(message.number, self.name)
        if binding is None:
            raise PermanentSendError(f"{message.number} is not bound to whatsapp_cloud in the config")
        if within_window(message.last_inbound_at, datetime.now(UTC)):
            parts = render(message)
        elif message.template:
            parts = [template(message.template)]
        else:
            raise PermanentSendError(
                "the customer last wrote more than 24 hours ago (or never): "
                "only a template message may be sent, and this message has none",
                code=OUTSIDE_WINDOW,
            )
        message_id = ""
        for part in parts:
            message_id = await self._post(binding.phone_number_id, {**recipient(message.customer), **part})
        # Accepted by Meta, not yet sent: the `sent` status arrives by webhook.
        return SendResult(message_id=message_id, status="accepted")

    async def _post(self, phone_number_id: str, part: dict[str, Any]) -> str:
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", **part}
        headers = {"Authorization": f"Bearer {self.config.settings.whatsapp_access_token}"}
        try:
            response = await self.http.post(self.url(phone_number_id), json=payload, headers=headers, timeout=15.0)
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
