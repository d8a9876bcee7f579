"""Who may use the dashboard: a signed session cookie, and a CSRF token bound to it.

With CHATFLOW_API_KEY set, an operator signs in with the key and gets a session cookie
(`<expires>.<nonce>.<HMAC-SHA256 of both, keyed by the API key>`): HttpOnly, SameSite=Strict,
scoped to /dashboard. Changing the key signs everyone out. Every action carries the session's
CSRF token (an HMAC of its nonce) in a hidden form field, compared in constant time.

Without a key the dashboard is open, but actions still need a session (issued on the first page
seen, signed with a secret of this process's own) and its CSRF token: another site the operator
visits cannot make their browser end a conversation.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from chatflow.domain.signing import signature, signature_matches

COOKIE = "chatflow_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_TTL = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int  # Unix time
    csrf: str  # the token every action of this session must carry


class Sessions:
    def __init__(self, api_key: str, ttl: timedelta = SESSION_TTL) -> None:
        self.required = bool(api_key)  # sign-in needed (else the dashboard is open)
        self._api_key = api_key
        # Open dashboard: sessions exist only for CSRF tokens, signed with a secret of this process.
        self._secret = api_key or secrets.token_urlsafe(32)
        self.ttl = ttl

    def key_matches(self, key: str) -> bool:
        """The API key, compared in constant time; never true when no key is set."""
        return self.required and hmac.compare_digest(key.encode(), self._api_key.encode())

    def issue(self, now: float | None = None) -> tuple[Session, str]:
        """A new session and the cookie value that carries it."""
        now = time.time() if now is None else now
        nonce = secrets.token_urlsafe(18)  # letters, digits, - and _: never a dot
        expires = int(now + self.ttl.total_seconds())
        payload = f"{expires}.{nonce}"
        return self._session(nonce, expires), f"{payload}.{self._sign('session', payload)}"

    def read(self, cookie: str, now: float | None = None) -> Session | None:
        """The session a cookie carries; None when it is missing, forged, or has expired."""
        now = time.time() if now is None else now
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        expires, nonce, signed = parts
        payload = f"{expires}.{nonce}"
        if not signature_matches(self._secret, self._signed_text("session", payload), "sha256=" + signed):
            return None
        if int(expires) <= now:
            return None
        return self._session(nonce, int(expires))

    def csrf_matches(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(session.csrf.encode(), token.encode())

    def _session(self, nonce: str, expires: int) -> Session:
        return Session(nonce, expires, self._sign("csrf", nonce))

    def _sign(self, purpose: str, payload: str) -> str:
        return signature(self._secret, self._signed_text(purpose, payload)).removeprefix("sha256=")

    @staticmethod
    def _signed_text(purpose: str, payload: str) -> bytes:
        # The purpose keeps a session's signature from ever serving as a CSRF token, and back.
        return f"chatflow-dashboard-{purpose}:{payload}".encode()
