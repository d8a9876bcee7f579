"""Sending email: through a real SMTP server on loopback, and through Mailgun's API (mocked at
the HTTP layer); each refusal as permanent or retryable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from aiosmtpd.smtp import SMTP, Envelope, Session

from chatflow.domain.errors import PermanentSendError, RetryableSendError
from chatflow.domain.messages import Media, Option, OutboundMessage
from providers.email import unsubscribe
from providers.email.catcher import MailCatcher
from providers.email.channel import EmailChannel
from providers.email.settings import SmtpServer
from tests.providers.email.conftest import (
    CUSTOMER,
    MAILGUN_API,
    MAILGUN_DOMAIN,
    PUBLIC_URL,
    SECRET,
    SENDER,
    email_config,
    email_settings,
)


def to_customer(text: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        channel="email", provider="email", number=SENDER, customer=CUSTOMER, text=text, conversation_id="c", **fields
    )


async def test_an_email_arrives_with_subject_text_html_and_unsubscribe_headers(
    smtp_channel: EmailChannel, catcher: MailCatcher
) -> None:
    result = await smtp_channel.send(
        to_customer("Your order A-1 is confirmed.\n\nTrack it: https://shop.example/A-1 <soon>")
    )

    [email] = await catcher.wait_for(CUSTOMER)
    assert email.to == [CUSTOMER]
    assert email.header("From") == f"Shop <{SENDER}>"
    assert email.subject == "Your order A-1 is confirmed."  # the first line, when no subject is given
    assert email.text == "Your order A-1 is confirmed.\n\nTrack it: https://shop.example/A-1 <soon>"
    assert "<p>Your order A-1 is confirmed.</p>" in email.html
    assert '<a href="https://shop.example/A-1">https://shop.example/A-1</a> &lt;soon&gt;' in email.html
    assert email.header("Message-ID") == f"<{result.message_id}>"
    assert result.message_id.endswith("@shop.example")
    link = unsubscribe.url(PUBLIC_URL, SECRET, SENDER, CUSTOMER)
    # A long header is folded on the way; unfolded, it is the two links.
    assert " ".join(email.header("List-Unsubscribe").split()) == f"<mailto:{SENDER}?subject=unsubscribe>, <{link}>"
    assert email.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"


async def test_a_subject_given_by_the_flow_wins_and_choices_read_as_a_menu(
    smtp_channel: EmailChannel, catcher: MailCatcher
) -> None:
    await smtp_channel.send(
        to_customer(
            "How was your delivery?",
            subject="Order A-1: one question",
            options=[Option("1", "Great"), Option("2", "Late")],
            media=[Media("https://shop.example/receipt.pdf")],
        )
    )
    [email] = await catcher.wait_for(CUSTOMER)
    assert email.subject == "Order A-1: one question"
    assert email.text == "How was your delivery?\n\n1. Great\n2. Late\n\nhttps://shop.example/receipt.pdf"


async def test_without_a_public_url_the_unsubscribe_header_is_a_mailto_alone(catcher: MailCatcher) -> None:
    config = email_config()
    config.settings.public_url = ""
    channel = EmailChannel(config, email_settings(smtp_url=catcher.url))
    await channel.send(to_customer("Hello"))
    [email] = await catcher.wait_for(CUSTOMER)
    assert email.header("List-Unsubscribe") == f"<mailto:{SENDER}?subject=unsubscribe>"
    assert email.header("List-Unsubscribe-Post") == ""


async def test_a_long_first_line_makes_a_cut_subject(smtp_channel: EmailChannel, catcher: MailCatcher) -> None:
    await smtp_channel.send(to_customer("word " * 40))
    [email] = await catcher.wait_for(CUSTOMER)
    assert len(email.subject) == 78 and email.subject.endswith("…")


async def test_an_address_that_is_no_address_is_refused_for_good(smtp_channel: EmailChannel) -> None:
    message = to_customer("Hello")
    message.customer = "+14155550100"
    with pytest.raises(PermanentSendError, match="not an email address"):
        await smtp_channel.send(message)


@pytest.fixture
async def refusing_server() -> AsyncIterator[tuple[asyncio.Server, list[str]]]:
    replies: list[str] = []

    class Handler:
        async def handle_RCPT(
            self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
        ) -> str:
            return replies[0]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
    yield server, replies
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        ("550 5.1.1 no such user", PermanentSendError, "550"),
        ("450 4.2.0 greylisted, try again later", RetryableSendError, "450"),
    ],
)
async def test_the_smtp_servers_refusal_is_permanent_for_5xx_and_retryable_for_4xx(
    refusing_server: tuple[asyncio.Server, list[str]], reply: str, error: type[Exception], code: str
) -> None:
    server, replies = refusing_server
    replies.append(reply)
    port = server.sockets[0].getsockname()[1]
    channel = EmailChannel(email_config(), email_settings(smtp_url=f"smtp://127.0.0.1:{port}"))
    with pytest.raises(error) as raised:
        await channel.send(to_customer("Hello"))
    assert getattr(raised.value, "code", "") == code


async def test_an_smtp_server_that_does_not_answer_is_retryable() -> None:
    async with MailCatcher() as gone:
        url = gone.url
    channel = EmailChannel(email_config(), email_settings(smtp_url=url))
    with pytest.raises(RetryableSendError, match="cannot reach the SMTP server"):
        await channel.send(to_customer("Hello"))


def test_smtp_urls() -> None:
    assert SmtpServer.from_url("smtp://user:p%40ss@smtp.example.com:587") == SmtpServer(
        "smtp.example.com", 587, "user", "p@ss", tls=False, starttls=True
    )
    assert SmtpServer.from_url("smtps://user:pw@smtp.example.com") == SmtpServer(
        "smtp.example.com", 465, "user", "pw", tls=True, starttls=None
    )
    assert SmtpServer.from_url("smtp://127.0.0.1:2525").starttls is None  # the dev catcher: no TLS
    assert str(SmtpServer.from_url("smtp://user:secret@smtp.example.com")) == "smtp://smtp.example.com:587"


# -- Mailgun ---------------------------------------------------------------------------------------

MAILGUN_MESSAGES = f"{MAILGUN_API}/v3/{MAILGUN_DOMAIN}/messages"


@pytest.fixture
async def mailgun_channel() -> AsyncIterator[EmailChannel]:
    async with httpx.AsyncClient() as http:
        settings = email_settings(mailgun_api_key="key-secret", mailgun_domain=MAILGUN_DOMAIN)
        yield EmailChannel(email_config(), settings, http=http)


@respx.mock
async def test_mailgun_gets_the_same_email_as_form_fields(mailgun_channel: EmailChannel) -> None:
    route = respx.post(MAILGUN_MESSAGES).respond(200, json={"id": "<x@mg>", "message": "Queued. Thank you."})
    result = await mailgun_channel.send(to_customer("Your order A-1 is confirmed.", subject="Order A-1"))
    request = route.calls.last.request
    assert request.headers["authorization"] == httpx.BasicAuth("api", "key-secret")._auth_header
    form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
    assert form["from"] == f"Shop <{SENDER}>" and form["to"] == CUSTOMER and form["subject"] == "Order A-1"
    assert form["text"] == "Your order A-1 is confirmed."
    assert "<p>Your order A-1 is confirmed.</p>" in form["html"]
    assert form["h:Message-ID"] == f"<{result.message_id}>"
    assert form["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert form["h:List-Unsubscribe"].startswith(f"<mailto:{SENDER}?subject=unsubscribe>, <{PUBLIC_URL}/email/")


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, PermanentSendError), (401, PermanentSendError), (429, RetryableSendError), (500, RetryableSendError)],
)
@respx.mock
async def test_mailgun_4xx_is_permanent_except_429_and_5xx_is_retryable(
    mailgun_channel: EmailChannel, status: int, error: type[Exception]
) -> None:
    respx.post(MAILGUN_MESSAGES).respond(status, json={"message": "no"}, headers={"retry-after": "7"})
    with pytest.raises(error) as raised:
        await mailgun_channel.send(to_customer("Hello"))
    assert getattr(raised.value, "code", "") == str(status)
    if status == 429:
        assert isinstance(raised.value, RetryableSendError) and raised.value.retry_after == 7


@respx.mock
async def test_mailgun_out_of_reach_is_retryable(mailgun_channel: EmailChannel) -> None:
    respx.post(MAILGUN_MESSAGES).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RetryableSendError, match="cannot reach Mailgun"):
        await mailgun_channel.send(to_customer("Hello"))
