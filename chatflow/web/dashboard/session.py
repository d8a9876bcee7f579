"""Who may use the dashboard: a session kept in Redis, and a CSRF token bound to it.

An operator signs in with CHATFLOW_API_KEY and gets a cookie holding a random session id:
HttpOnly, SameSite=Strict, scoped to /dashboard, `Secure` unless the app is served over plain
http on loopback. Redis keeps the session under a hash of that id (whoever reads Redis cannot
sign in with what they read) for `SESSION_TTL`; signing out deletes it, so a copied cookie is
refused from then on. Changing the key signs everyone out. Every action carries the session's
CSRF token in a hidden form field, compared in constant time.

Without a key there is no dashboard (503): it is never open to whoever reaches the app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis

from chatflow.edge import keys

COOKIE = "chatflow_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_TTL = timedelta(hours=12)
KEY_PREFIX = keys.dashboard_session()


@dataclass(frozen=True)
class Session:
    id: str  # the cookie's value
    csrf: str  # the token every action of this session must carry


class Sessions:
    def __init__(self, api_key: str, redis: Redis, ttl: timedelta = SESSION_TTL) -> None:
        self._api_key = api_key
        self._redis = redis
        self.ttl = ttl
        # Stored with each session: a session made under another key is no session.
        self._key_mark = hmac.new(api_key.encode(), b"chatflow-dashboard-session", hashlib.sha256).hexdigest()

    def key_matches(self, key: str) -> bool:
        """The API key, compared in constant time; never true when no key is set."""
        return bool(self._api_key) and hmac.compare_digest(key.encode(), self._api_key.encode())

    async def issue(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        record = json.dumps({"csrf": session.csrf, "key": self._key_mark})
        await self._redis.set(self._key(session.id), record, ex=int(self.ttl.total_seconds()))
        return session

    async def read(self, cookie: str) -> Session | None:
        """The session a cookie carries; None when it is missing, unknown, signed out or expired."""
        if not cookie or len(cookie) > 100:
            return None
        raw = await self._redis.get(self._key(cookie))
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            csrf, mark = str(record["csrf"]), str(record["key"])
        except (ValueError, KeyError, TypeError):
            return None
        if not hmac.compare_digest(mark, self._key_mark):
            return None
        return Session(cookie, csrf)

    async def revoke(self, session: Session) -> None:
        await self._redis.delete(self._key(session.id))

    def csrf_matches(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(session.csrf.encode(), token.encode())

    @staticmethod
    def _key(cookie: str) -> str:
        return KEY_PREFIX + hashlib.sha256(cookie.encode()).hexdigest()
