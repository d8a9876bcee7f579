"""A small HTTP/1.1 client for the load generator, and the signed Twilio webhook it posts.

The load generator must cost far less than what it measures: on two shared cores, httpx's
per-request work (~0.3 ms of CPU) shows in the figures at hundreds of requests a second. This
client writes prepared bytes to kept-alive connections and reads the status line, the headers
and the body, nothing more (~0.05 ms a request).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit
from uuid import uuid4

from twilio.request_validator import RequestValidator

from bench.config import ACCOUNT_SID, AUTH_TOKEN, NUMBER

WEBHOOK_PATH = "/webhooks/twilio"
# uvicorn closes a connection idle for 5 s (timeout_keep_alive): reuse only fresher ones.
IDLE_LIMIT = 3.0


@dataclass
class Prepared:
    """A request as bytes on the wire, ready to send."""

    head: bytes
    body: bytes


def twilio_webhook(url: str, customer: str, text: str, *, token: str = AUTH_TOKEN, number: str = NUMBER) -> Prepared:
    """A customer's SMS as Twilio delivers it: form-encoded, signed over the URL and the fields."""
    sid = "SM" + uuid4().hex
    fields = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "From": customer,
        "To": number,
        "Body": text,
        "NumMedia": "0",
    }
    signature = RequestValidator(token).compute_signature(url, fields)
    body = urlencode(fields).encode()
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return Prepared(head, body)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class HttpPool:
    """Kept-alive connections to one host; at most `limit` requests in flight (the rest wait)."""

    def __init__(self, host: str, port: int, *, limit: int = 1000, timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    @classmethod
    def for_url(cls, url: str, **kwargs: float) -> HttpPool:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, **kwargs)  # type: ignore[arg-type]

    async def warm(self, connections: int) -> None:
        """Open connections ahead of a burst, as a provider's webhook sender keeps them open."""
        opened = await asyncio.gather(*(self._open() for _ in range(connections)))
        self._idle.extend(opened)

    async def request(self, prepared: Prepared) -> tuple[int, bytes]:
        """Status and body; raises OSError/TimeoutError when no answer came."""
        async with self._slots:
            async with asyncio.timeout(self.timeout):
                while True:
                    connection, reused = await self._take()
                    try:
                        answer = await self._exchange(connection, prepared)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        connection.close()
                        if reused:
                            continue  # the server closed an idle connection: nothing was read, send again
                        raise
                    except BaseException:
                        connection.close()
                        raise
                    return answer

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return _Connection(reader, writer)

    async def _take(self) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.used < IDLE_LIMIT and not connection.writer.is_closing():
                return connection, True
            connection.close()
        return await self._open(), False

    async def _exchange(self, connection: _Connection, prepared: Prepared) -> tuple[int, bytes]:
        reader, writer = connection.reader, connection.writer
        writer.write(prepared.head + prepared.body)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("connection closed before an answer")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, keep = 0, False, True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionResetError("connection closed in the headers")
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep = b"close" not in value.lower()
        if chunked:
            body = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await reader.readexactly(length)
        if keep:
            connection.used = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return status, body
