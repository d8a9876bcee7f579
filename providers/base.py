"""The provider interface every channel adapter implements.

The engine only needs `send`; the web tier also uses the inbound side (verify and parse) that
each provider adds. Errors are classified here, once, so the send activity can tell Temporal
whether to retry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from chatflow.domain.messages import OutboundMessage, SendResult


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


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a `Retry-After` header given in seconds (the HTTP-date form is ignored)."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


class Provider(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> SendResult: ...
