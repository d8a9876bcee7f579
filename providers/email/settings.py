"""The email channel's settings: its environment names live here, not in chatflow's `Settings`.

CHATFLOW_SMTP_URL               smtp://user:pass@host:587 (STARTTLS when offered; required with
                                a password to a host off this machine), smtps://...:465 (TLS)
CHATFLOW_EMAIL_FROM             the sender when a binding gives none: "Shop <support@shop.example>"
CHATFLOW_EMAIL_SECRET           signs the one-click unsubscribe links (any long random string)
MAILGUN_API_KEY                 send through Mailgun's HTTP API instead of SMTP
MAILGUN_DOMAIN                  the Mailgun sending domain (mg.shop.example)
MAILGUN_WEBHOOK_SIGNING_KEY     verifies Mailgun's inbound routes and event webhooks
CHATFLOW_MAILGUN_API_URL        https://api.mailgun.net (https://api.eu.mailgun.net in the EU)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

from chatflow.domain.channel import read_settings, setting
from chatflow.domain.errors import ConfigError

MAILGUN_API_URL = "https://api.mailgun.net"
SMTP_PORT = 587  # submission, with STARTTLS
SMTPS_PORT = 465  # submission over TLS
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str = ""
    password: str = ""
    tls: bool = False  # smtps://: TLS from the first byte
    # STARTTLS: True required, None when the server offers it (a server on this machine, or
    # no password to protect).
    starttls: bool | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """The server of a CHATFLOW_SMTP_URL; ConfigError naming what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError(f"CHATFLOW_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme or 'nothing'}")
        if not parts.hostname:
            raise ConfigError("CHATFLOW_SMTP_URL names no host (smtp://user:pass@host:587)")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("CHATFLOW_SMTP_URL has a port that is not a number") from None
        tls = parts.scheme == "smtps"
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
        # A password never crosses the network in the clear: off this machine, STARTTLS is a must.
        starttls = None if tls or not password or parts.hostname in LOOPBACK else True
        return cls(parts.hostname, port or (SMTPS_PORT if tls else SMTP_PORT), username, password, tls, starttls)

    def __str__(self) -> str:  # for logs and the dev banner: never the password
        return f"{'smtps' if self.tls else 'smtp'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class EmailSettings:
    smtp_url: str = setting(
        "CHATFLOW_SMTP_URL",
        doc="`smtp://user:pass@smtp.example.com:587` (STARTTLS; required off this machine when there is a "
        "password) or `smtps://...:465` (TLS); this or `MAILGUN_API_KEY` is required",
    )
    email_from: str = setting(
        "CHATFLOW_EMAIL_FROM", doc="the sender when no binding names one: `Shop <support@shop.example>`"
    )
    secret: str = setting(
        "CHATFLOW_EMAIL_SECRET",
        doc="any long random string: signs the one-click unsubscribe links (without it: a mailto only)",
    )
    mailgun_api_key: str = setting("MAILGUN_API_KEY", doc="send through Mailgun's API instead of SMTP")
    mailgun_domain: str = setting(
        "MAILGUN_DOMAIN", doc="the Mailgun sending domain (`mg.shop.example`), with `MAILGUN_API_KEY`"
    )
    mailgun_signing_key: str = setting(
        "MAILGUN_WEBHOOK_SIGNING_KEY", doc="verifies Mailgun's inbound routes and event webhooks (Sending > Webhooks)"
    )
    mailgun_api_url: str = setting(
        "CHATFLOW_MAILGUN_API_URL", MAILGUN_API_URL, doc="Mailgun's API base (`https://api.eu.mailgun.net` in the EU)"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmailSettings:
        return read_settings(cls, os.environ if env is None else env)

    @property
    def transport(self) -> str:
        """ "mailgun" when its key is set, else "smtp" when a server is, else "" (not configured)."""
        if self.mailgun_api_key:
            return "mailgun"
        return "smtp" if self.smtp_url else ""

    def missing(self) -> list[str]:
        """The environment names an email binding needs and that are not set: a way to send
        (either of two, so neither field is `required` on its own)."""
        if not self.transport:
            return ["CHATFLOW_SMTP_URL (or MAILGUN_API_KEY)"]
        if self.transport == "mailgun" and not self.mailgun_domain:
            return ["MAILGUN_DOMAIN"]
        return []


def sender_address(value: str, *, what: str = "CHATFLOW_EMAIL_FROM") -> Address:
    """An address as a header shows it ("Shop <support@shop.example>" or a bare address);
    ConfigError when it is not one."""
    name, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ConfigError(f"{what} {value!r} is not an email address")
    try:
        return Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError) as error:
        raise ConfigError(f"{what} {value!r} is not an email address ({error})") from None
