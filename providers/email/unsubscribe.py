"""One-click unsubscribe links (RFC 8058): a token that names the sender and the recipient,
signed with CHATFLOW_EMAIL_SECRET, so only the link in a recipient's own email opts them out.

    https://chat.shop.example/email/unsubscribe?t=<token>

A mail client POSTs `List-Unsubscribe=One-Click` to it (no cookies, no redirects); a person
who opens the link in a browser gets a page with one button that does the same POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from chatflow.domain.errors import Forbidden

PATH = "/email/unsubscribe"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), b"unsubscribe:" + payload.encode(), hashlib.sha256).digest())


def token(secret: str, sender: str, recipient: str) -> str:
    payload = _b64(json.dumps([sender, recipient], separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_token(secret: str, value: str) -> tuple[str, str]:
    """(sender, recipient) of a token this secret signed; Forbidden otherwise."""
    payload, dot, mac = value.partition(".")
    if not secret or not dot or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise Forbidden("this unsubscribe link is not one we sent")
    try:
        sender, recipient = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise Forbidden("this unsubscribe link is not one we sent") from None
    if not isinstance(sender, str) or not isinstance(recipient, str):
        raise Forbidden("this unsubscribe link is not one we sent")
    return sender, recipient


def url(public_url: str, secret: str, sender: str, recipient: str) -> str:
    """The one-click URL, "" when there is no public URL or no secret to sign with."""
    if not public_url or not secret:
        return ""
    return f"{public_url.rstrip('/')}{PATH}?t={token(secret, sender, recipient)}"
