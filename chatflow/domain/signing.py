"""HMAC-SHA256 signatures over raw bytes, as Meta signs its webhooks and we sign delivery reports."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """Compared in constant time, so the check leaks nothing about the expected value."""
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())
