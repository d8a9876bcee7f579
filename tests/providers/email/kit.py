"""The conformance kit of the email channel (see tests/providers/conformance.py): Mailgun's
inbound route and event webhooks signed as Mailgun signs them, sends refused by a real SMTP
server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from aiosmtpd.smtp import SMTP, Envelope, Session

import providers
from chatflow.domain.addresses import Address
from chatflow.domain.channel import Channel
from chatflow.domain.config import Config, parse_config
from chatflow.domain.messages import OutboundMessage
from providers.email.channel import EVENTS_PATH, INBOUND_PATH, EmailChannel
from tests.providers.conformance import Call, ChannelKit, SendFailure
from tests.providers.conftest import PUBLIC_URL, make_settings
from tests.providers.email.conftest import (
    CUSTOMER,
    FORM,
    SECRET,
    SENDER,
    SIGNING_KEY,
    email_settings,
    event_body,
    inbound_fields,
    mailgun_signature,
)

TOML = f'[[numbers]]\naddress = "{SENDER}"\nprovider = "email"\nflow = "demo"\n'


def config() -> Config:
    settings = make_settings(
        CHATFLOW_SMTP_URL="smtp://127.0.0.1:1",  # the sends are made by `refusing` below
        CHATFLOW_EMAIL_FROM=f"Shop <{SENDER}>",
        CHATFLOW_EMAIL_SECRET=SECRET,
        MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY,
    )
    return parse_config(TOML, settings, channels=providers.CHANNELS)


def inbound(fields: dict[str, str]) -> Call:
    return Call("POST", PUBLIC_URL + INBOUND_PATH, urlencode(fields).encode(), {"content-type": FORM})


def event(body: dict[str, object]) -> Call:
    return Call("POST", PUBLIC_URL + EVENTS_PATH, json.dumps(body).encode(), {"content-type": "application/json"})


def forged() -> Call:
    fields = inbound_fields("Hello")
    fields.update(mailgun_signature(key="not-the-signing-key"))
    return inbound(fields)


def malformed() -> Call:
    fields = inbound_fields("Hello", sender="not an address")
    return inbound(fields)


def refusing(reply: str) -> SendFailure:
    """An SMTP server on loopback that answers RCPT TO with `reply`."""

    class Handler:
        async def handle_RCPT(
            self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
        ) -> str:
            return reply

    @contextlib.asynccontextmanager
    async def failure(config: Config) -> AsyncIterator[tuple[Channel, OutboundMessage]]:
        server = await asyncio.get_running_loop().create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            channel = EmailChannel(config, email_settings(smtp_url=f"smtp://127.0.0.1:{port}"))
            yield channel, OutboundMessage("email", "email", SENDER, CUSTOMER, "Hello")
        finally:
            server.close()
            await server.wait_closed()

    return failure


MESSAGE_ID = "20261207140000.1@shop.example"

KIT = ChannelKit(
    config=config,
    good=inbound(inbound_fields("Hello, where is my parcel?")),
    forged=forged(),
    bad=malformed(),
    customer=Address("mailto", CUSTOMER),
    permanent=refusing("550 5.1.1 no such user"),
    retryable=refusing("451 4.3.0 try again later"),
    statuses=[
        (event(event_body("delivered", MESSAGE_ID)), "delivered"),
        (event(event_body("failed", MESSAGE_ID, severity="permanent", reason="bounce")), "undelivered"),
        (event(event_body("failed", MESSAGE_ID, severity="permanent", reason="suppress-bounce")), "failed"),
    ],
)
