"""The provider interface every channel adapter implements.

The engine only needs `send`; the web tier also uses the inbound side (verify and parse) that
each provider adds. Errors are classified here, once, so the send activity can tell Temporal
whether to retry.
"""

from __future__ import annotations

from typing import Protocol

from chatflow.messages import OutboundMessage, SendResult


class SendError(Exception):
    """Base of provider send errors; `code` is the provider's own error code when it gave one."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.code = code


class PermanentSendError(SendError):
    """Retrying cannot help: invalid number, opted out, outside the WhatsApp 24-hour window..."""


class RetryableSendError(SendError):
    """Try again later (429, 5xx, network); `retry_after` in seconds when the provider said."""

    def __init__(self, reason: str, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, code)
        self.retry_after = retry_after


class Provider(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> SendResult: ...
