"""Mailgun's inbound routes and event webhooks, signed as Mailgun signs them, and the one-click
unsubscribe link: what each becomes for the edge (a reply, a status, an opt-out), and the 4xx
for anything forged or malformed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.asyncio import Redis

from chatflow.domain.addresses import Address
from chatflow.domain.channel import WebhookRequest
from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import BadRequest, Forbidden, NotFound
from chatflow.domain.messages import OutboundMessage
from providers.email import unsubscribe
from providers.email.catcher import MailCatcher
from providers.email.channel import EVENTS_PATH, INBOUND_PATH, EmailChannel
from tests.providers.email.conftest import (
    CUSTOMER,
    FORM,
    PUBLIC_URL,
    SECRET,
    SENDER,
    email_config,
    email_settings,
    event_body,
    form_request,
    inbound_fields,
    json_request,
    mailgun_signature,
)

SMS_NUMBER = "+15005550006"
PHONE = "+14155550100"
SMS_CONVERSATION = f"chat:sms:{SMS_NUMBER}:{PHONE}"


@pytest.fixture
def channel(catcher: MailCatcher, redis: Redis) -> EmailChannel:
    bindings = [NumberBinding(address=Address("tel", SMS_NUMBER), provider="console", channel="sms", flow="demo")]
    return EmailChannel(email_config(bindings), email_settings(smtp_url=catcher.url), redis=redis)


async def sent_from_sms_conversation(channel: EmailChannel) -> str:
    """An email a flow on SMS sent the customer (`Notify`); its Message-ID."""
    message = OutboundMessage("email", "email", "", CUSTOMER, "Reply YES to confirm.", conversation_id=SMS_CONVERSATION)
    return (await channel.send(message)).message_id


async def test_a_reply_goes_on_in_the_conversation_whose_email_it_answers(channel: EmailChannel) -> None:
    sent = await sent_from_sms_conversation(channel)
    body = "Yes please!\n\nOn Mon, 7 Dec 2026 at 14:00, Shop <support@shop.example> wrote:\n> Reply YES to confirm."
    received = await channel.inbound(form_request(INBOUND_PATH, inbound_fields(body, in_reply_to=sent)))

    [(message, binding)] = received.messages
    assert (message.channel, message.number, message.customer) == ("sms", SMS_NUMBER, PHONE)
    assert message.text == "Yes please!"  # what it quotes is left out
    assert binding.number == SMS_NUMBER


async def test_a_reply_from_someone_else_does_not_enter_the_conversation(channel: EmailChannel) -> None:
    sent = await sent_from_sms_conversation(channel)
    fields = inbound_fields("Yes", sender="mallory@example.net", in_reply_to=sent)
    with pytest.raises(NotFound, match="not bound to a flow for email"):
        await channel.inbound(form_request(INBOUND_PATH, fields))


async def test_a_multipart_post_with_an_attachment_is_read_too(channel: EmailChannel) -> None:
    sent = await sent_from_sms_conversation(channel)
    fields = inbound_fields("Yes, see the photo", in_reply_to=sent)
    boundary = "mailgun-boundary-42"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment-1"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n"
    )
    request = WebhookRequest(
        "POST",
        PUBLIC_URL + INBOUND_PATH,
        {"content-type": f"multipart/form-data; boundary={boundary}"},
        {},
        ("".join(parts) + f"--{boundary}--\r\n").encode("latin-1"),
    )
    [(message, _)] = (await channel.inbound(request)).messages
    assert message.text == "Yes, see the photo"


@pytest.mark.parametrize(
    "forge",
    [
        lambda f: f.update(signature="0" * 64),  # signed with another key
        lambda f: f.update(mailgun_signature(timestamp="1000000000")),  # long ago: a replay
        lambda f: f.pop("signature"),
    ],
)
async def test_forged_or_stale_inbound_posts_are_refused(channel: EmailChannel, forge: object) -> None:
    fields = inbound_fields("Yes")
    forge(fields)  # type: ignore[operator]
    with pytest.raises(Forbidden):
        await channel.inbound(form_request(INBOUND_PATH, fields))


async def test_an_inbound_post_without_message_id_is_a_bad_request(channel: EmailChannel) -> None:
    fields = inbound_fields("Yes")
    fields["message-headers"] = "[]"
    del fields["Message-Id"]
    with pytest.raises(BadRequest, match="Message-Id"):
        await channel.inbound(form_request(INBOUND_PATH, fields))


async def test_unsubscribe_by_email_is_an_opt_out_of_that_sender(channel: EmailChannel) -> None:
    fields = inbound_fields("", subject="unsubscribe")
    [(message, binding)] = (await channel.inbound(form_request(INBOUND_PATH, fields))).messages
    assert (message.text, message.number, message.customer) == ("STOP", SENDER, CUSTOMER)
    assert (binding.provider, binding.number) == ("email", SENDER)


async def test_a_permanent_failure_is_undelivered_and_names_the_conversation(channel: EmailChannel) -> None:
    sent = await sent_from_sms_conversation(channel)
    status: dict[str, Any] = {"delivery-status": {"code": 550, "message": "no"}}
    body = event_body("failed", sent, severity="permanent", reason="bounce", **status)
    received = await channel.events(json_request(EVENTS_PATH, body))
    [report] = received.statuses
    assert (report.update.message_id, report.update.status, report.update.error_code) == (sent, "undelivered", "550")
    assert report.conversations == [SMS_CONVERSATION]
    assert received.messages == []


async def test_delivered_and_temporary_failures(channel: EmailChannel) -> None:
    sent = await sent_from_sms_conversation(channel)
    [report] = (await channel.events(json_request(EVENTS_PATH, event_body("delivered", sent)))).statuses
    assert report.update.status == "delivered"
    temporary = event_body("failed", sent, severity="temporary", reason="generic")
    assert (await channel.events(json_request(EVENTS_PATH, temporary))).statuses == []  # Mailgun retries it


async def test_a_complaint_opts_the_recipient_out_of_the_sender(channel: EmailChannel) -> None:
    sent = await sent_from_sms_conversation(channel)
    received = await channel.events(json_request(EVENTS_PATH, event_body("complained", sent)))
    [(message, _)] = received.messages
    assert (message.text, message.number, message.customer) == ("STOP", SENDER, CUSTOMER)
    assert message.id.startswith("complaint-")


async def test_a_forged_event_is_refused(channel: EmailChannel) -> None:
    body = event_body("complained", "x@shop.example")
    body["signature"]["signature"] = "f" * 64
    with pytest.raises(Forbidden):
        await channel.events(json_request(EVENTS_PATH, body))
    with pytest.raises(BadRequest):
        await channel.events(WebhookRequest("POST", "", {}, {}, b"[1, 2]"))


async def test_the_one_click_link_opts_out_its_own_recipient_only(channel: EmailChannel) -> None:
    link = urlsplit(unsubscribe.url(PUBLIC_URL, SECRET, SENDER, CUSTOMER))
    query = {key: values[0] for key, values in parse_qs(link.query).items()}
    request = WebhookRequest("POST", link.geturl(), {"content-type": FORM}, query, b"List-Unsubscribe=One-Click")
    [(message, _)] = (await channel.unsubscribe(request)).messages
    assert (message.text, message.number, message.customer) == ("STOP", SENDER, CUSTOMER)

    other = unsubscribe.token(SECRET, SENDER, "bob@example.com")
    tampered = query["t"].split(".")[0] + "." + other.split(".")[1]  # someone else's signature
    for token in (tampered, "", "not-a-token"):
        with pytest.raises(Forbidden):
            await channel.unsubscribe(WebhookRequest("POST", "", {}, {"t": token}, b""))


async def test_opening_the_link_in_a_browser_asks_first(channel: EmailChannel) -> None:
    token = unsubscribe.token(SECRET, SENDER, CUSTOMER)
    received = await channel.unsubscribe_page(WebhookRequest("GET", "", {}, {"t": token}, b""))
    assert received.messages == [] and received.answer is not None
    assert '<form method="post">' in received.answer.body and CUSTOMER in received.answer.body


async def test_a_stop_confirmation_goes_by_email_but_an_unsubscribe_gets_none(
    channel: EmailChannel, catcher: MailCatcher
) -> None:
    stop = (await channel.inbound(form_request(INBOUND_PATH, inbound_fields("STOP")))).messages[0][0]
    await channel.answer(await channel.inbound(form_request(INBOUND_PATH, inbound_fields("STOP"))), [(stop, "Bye")])
    [email] = await catcher.wait_for(CUSTOMER)
    assert email.text == "Bye"
    token = unsubscribe.token(SECRET, SENDER, CUSTOMER)
    clicked = await channel.unsubscribe(WebhookRequest("POST", "", {"content-type": FORM}, {"t": token}, b""))
    answer = await channel.answer(clicked, [(clicked.messages[0][0], "Bye")])
    assert answer.status == 200 and "unsubscribed" in answer.body
    assert len(catcher.to(CUSTOMER)) == 1
