"""An SMTP server on this machine that keeps what it receives: `chatflow dev` points the email
channel at it when CHATFLOW_SMTP_URL is unset, so a newcomer sees a flow's email without an
account, and tests send to it as to a real server (aiosmtpd, in the running event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

KEPT = 200  # emails kept, newest last


@dataclass
class CaughtEmail:
    """One email as the catcher received it."""

    sender: str  # the envelope's MAIL FROM
    to: list[str]  # the envelope's RCPT TO
    subject: str
    text: str
    html: str
    message: EmailMessage

    def header(self, name: str) -> str:
        value = self.message[name]
        return str(value) if value is not None else ""


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        message = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(message, EmailMessage)
        self.catcher.keep(
            CaughtEmail(
                sender=envelope.mail_from or "",
                to=list(envelope.rcpt_tos),
                subject=str(message["Subject"] or ""),
                text=_body(message, "plain").replace("\r\n", "\n").strip(),
                html=_body(message, "html"),
                message=message,
            )
        )
        return "250 OK"


class MailCatcher:
    """`async with MailCatcher() as catcher:` an SMTP server on 127.0.0.1 at `catcher.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.caught: deque[CaughtEmail] = deque(maxlen=KEPT)
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self._count = 0

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def keep(self, email: CaughtEmail) -> None:
        self.caught.append(email)
        self._count += 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    async def start(self) -> None:
        handler = _Handler(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="chatflow-dev", ident="chatflow dev mail catcher"), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MailCatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    @property
    def count(self) -> int:
        """Emails caught since the start (the oldest beyond KEPT are no longer kept)."""
        return self._count

    def since(self, count: int) -> list[CaughtEmail]:
        """The emails caught after the first `count` (those still kept)."""
        new = max(0, self._count - count)
        return list(self.caught)[-new:] if new else []

    async def wait_after(self, count: int, timeout: float) -> None:
        """Return once more than `count` emails were caught, or `timeout` seconds passed."""
        async with self._arrived:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait_for(lambda: self._count > count), timeout)

    def to(self, address: str) -> list[CaughtEmail]:
        return [email for email in self.caught if address.lower() in (rcpt.lower() for rcpt in email.to)]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 30.0) -> list[CaughtEmail]:
        """The emails to `address` once there are `count`; TimeoutError otherwise."""

        async def enough() -> list[CaughtEmail]:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.to(address)) >= count)
            return self.to(address)

        return await asyncio.wait_for(enough(), timeout)
