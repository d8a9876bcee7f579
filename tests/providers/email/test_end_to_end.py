"""End to end: a flow on SMS emails the customer (`Notify`), the email reaches a real SMTP
server, the customer answers it, and Mailgun's inbound webhook (signed as Mailgun signs it)
carries the answer back into the SMS conversation, which goes on. `Services` as `chatflow web`
and `chatflow worker` run it: the Redis edge, the send guard, Temporal."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

import providers
from chatflow import Ask, End, Flow, Notify, Wait, hours, number, yes
from chatflow.domain.addresses import ID_KEY, Address, ConversationRef
from chatflow.domain.config import parse_config
from chatflow.edge.optout import OptOuts
from chatflow.temporal.client import start_journey
from chatflow.temporal.workflow import ConversationWorkflow
from providers.email.catcher import MailCatcher
from providers.email.channel import INBOUND_PATH, EmailChannel
from tests.helpers import (
    ConversationHandle,
    RecordingChannel,
    new_customer,
    running_app,
    running_worker,
    started_services,
)
from tests.providers.conftest import TWILIO_NUMBER, make_config, make_settings
from tests.providers.email.conftest import SECRET, SENDER, SIGNING_KEY, email_settings, inbound_fields

ON_QUOTE = "\n\nOn Mon, 7 Dec 2026 at 14:00, Shop <support@shop.example> wrote:\n> Reply YES to confirm order A-7."


class ConfirmByEmail(Flow):
    ask = Notify(
        "Reply YES to confirm order {order}.",
        to="{email}",
        channel="email",
        subject="Confirm order {order}",
        on_error="no_email",
    )
    wait = Wait(branches={yes: "confirmed"}, timeout=hours(1), on_timeout="expired")
    confirmed = End("completed", "Order {order} confirmed, thanks!")
    no_email = End("failed", "We could not email you about order {order}.")


@pytest.mark.parametrize("hashed", [False, True], ids=["plain-ids", "with-id-key"])
async def test_a_reply_by_email_continues_the_flow(
    dev_env: WorkflowEnvironment, redis: Redis, catcher: MailCatcher, hashed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if hashed:  # the conversation's id names the SMS customer by a token: the reply still finds it
        monkeypatch.setenv(ID_KEY, base64.b64encode(os.urandom(32)).decode())
    customer, email = new_customer(), f"ana-{uuid.uuid4().hex[:8]}@example.com"
    config = make_config()
    async with started_services(config, [ConfirmByEmail], client=dev_env.client, redis=redis) as services:
        sms = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        services.channels["email"] = EmailChannel(config, email_settings(smtp_url=catcher.url), redis=redis)
        async with running_worker(services), running_app(services) as web:
            ref = ConversationRef("sms", TWILIO_NUMBER, customer, "twilio")
            handle = await start_journey(
                dev_env.client,
                ref,
                "confirm_by_email",
                {"email": email, "order": "A-7"},
                task_queue=services.task_queue,
            )
            [sent] = await catcher.wait_for(email)
            assert (sent.subject, sent.text) == ("Confirm order A-7", "Reply YES to confirm order A-7.")
            assert sent.header("From") == f"Shop <{SENDER}>"
            assert sms.to(customer) == []  # the conversation did not move to email

            message_id = sent.header("Message-ID").strip("<>")
            fields = inbound_fields("YES" + ON_QUOTE, sender=email, in_reply_to=message_id)
            answer = await web.post(
                INBOUND_PATH, content=urlencode(fields), headers={"content-type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code == 200, answer.text
            assert await sms.wait_for(customer, 1) == ["Order A-7 confirmed, thanks!"]
            result = await handle.result()
            snapshot = await handle.query(ConversationWorkflow.snapshot)

    assert result.outcome == "completed"
    notified, reply, confirmed = snapshot.transcript
    assert (notified.direction, notified.to, notified.channel, notified.text) == (
        "out",
        email,
        "email",
        "Reply YES to confirm order A-7.",
    )
    assert notified.message_id == message_id and notified.status == "sent"
    assert (reply.direction, reply.text) == ("in", "YES")
    assert (confirmed.direction, confirmed.to, confirmed.text) == ("out", "", "Order A-7 confirmed, thanks!")
    assert any(line.text == f"notified {email} by email" for line in snapshot.trace)


async def test_a_recipient_who_opted_out_gets_no_email(
    dev_env: WorkflowEnvironment, redis: Redis, catcher: MailCatcher
) -> None:
    customer, email = new_customer(), f"bob-{uuid.uuid4().hex[:8]}@example.com"
    await OptOuts(redis).opt_out(Address("mailto", SENDER), Address("mailto", email))  # they clicked List-Unsubscribe
    config = make_config()
    async with started_services(config, [ConfirmByEmail], client=dev_env.client, redis=redis) as services:
        sms = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        services.channels["email"] = EmailChannel(config, email_settings(smtp_url=catcher.url), redis=redis)
        async with running_worker(services):
            ref = ConversationRef("sms", TWILIO_NUMBER, customer, "twilio")
            handle = await start_journey(
                dev_env.client,
                ref,
                "confirm_by_email",
                {"email": email, "order": "A-8"},
                task_queue=services.task_queue,
            )
            result = await handle.result()
            snapshot = await handle.query(ConversationWorkflow.snapshot)
    assert result.outcome == "failed"
    assert sms.to(customer) == ["We could not email you about order A-8."]
    assert catcher.to(email) == []
    assert (snapshot.transcript[0].to, snapshot.transcript[0].status, snapshot.transcript[0].error_code) == (
        email,
        "failed",
        "opted_out",
    )


class OrderHelp(Flow):
    ask = Ask("Hello! Reply with your order number.", branches={number(): "thanks"}, save_as="order")
    thanks = End("completed", "Thanks, we are on order {order}.")


@pytest.mark.parametrize("hashed", [False, True], ids=["plain-ids", "with-id-key"])
async def test_an_email_address_bound_to_a_flow_talks_by_email(
    dev_env: WorkflowEnvironment, redis: Redis, catcher: MailCatcher, hashed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if hashed:  # the id names the customer by a token: their reply in the thread still finds it
        monkeypatch.setenv(ID_KEY, base64.b64encode(os.urandom(32)).decode())
    email = f"cleo-{uuid.uuid4().hex[:8]}@example.com"
    settings = make_settings(
        CHATFLOW_SMTP_URL=catcher.url,
        CHATFLOW_EMAIL_FROM=f"Shop <{SENDER}>",
        CHATFLOW_EMAIL_SECRET=SECRET,
        MAILGUN_WEBHOOK_SIGNING_KEY=SIGNING_KEY,
    )
    toml = f'[[numbers]]\naddress = "{SENDER}"\nprovider = "email"\nflow = "order_help"\n'
    config = parse_config(toml, settings, channels=providers.CHANNELS)
    [binding] = config.numbers
    assert (str(binding.address), binding.channel) == (f"mailto:{SENDER}", "email")

    form = {"content-type": "application/x-www-form-urlencoded"}

    async with started_services(config, [OrderHelp], client=dev_env.client, redis=redis) as services:
        async with running_worker(services), running_app(services) as web:
            # A new email (answering nothing we sent) starts the address's flow.
            hello = inbound_fields("Hi, where is my parcel?", sender=email, subject="My parcel")
            first = await web.post(INBOUND_PATH, content=urlencode(hello), headers=form)
            assert first.status_code == 200, first.text
            [prompt] = await catcher.wait_for(email)
            # Answered in the thread of their email.
            assert (prompt.subject, prompt.text) == ("Re: My parcel", "Hello! Reply with your order number.")
            assert prompt.header("In-Reply-To") == hello["Message-Id"]
            answer = inbound_fields(
                "1234\n\nOn Mon, 7 Dec 2026 at 14:00, Shop <support@shop.example> wrote:\n> Hello!", sender=email,
                in_reply_to=prompt.header("Message-ID").strip("<>"), subject="Re: My parcel",
            )  # fmt: skip
            assert (await web.post(INBOUND_PATH, content=urlencode(answer), headers=form)).status_code == 200
            [_, thanks] = await catcher.wait_for(email, 2)
            conversation = ConversationRef("email", SENDER, email).id
            assert (email not in conversation) is hashed
            handle: ConversationHandle = dev_env.client.get_workflow_handle_for(ConversationWorkflow.run, conversation)
            result = await asyncio.wait_for(handle.result(), 60)
    assert thanks.text == "Thanks, we are on order 1234."
    # Our answer is in the thread of the customer's reply: mail clients show one conversation.
    assert thanks.subject == "Re: My parcel"
    assert thanks.header("In-Reply-To") == f"<{answer['Message-Id'].strip('<>')}>"
    assert result.outcome == "completed" and result.data["order"] == 1234


async def test_the_one_click_unsubscribe_link_stops_the_next_email(
    dev_env: WorkflowEnvironment, redis: Redis, catcher: MailCatcher
) -> None:
    email = f"dana-{uuid.uuid4().hex[:8]}@example.com"
    config = make_config()
    async with started_services(config, [ConfirmByEmail], client=dev_env.client, redis=redis) as services:
        sms = services.channels["twilio"] = RecordingChannel(services.channels["twilio"])
        services.channels["email"] = EmailChannel(config, email_settings(smtp_url=catcher.url), redis=redis)
        async with running_worker(services), running_app(services) as web:

            async def journey(order: str) -> ConversationRef:
                ref = ConversationRef("sms", TWILIO_NUMBER, new_customer(), "twilio")
                data = {"email": email, "order": order}
                await start_journey(dev_env.client, ref, "confirm_by_email", data, task_queue=services.task_queue)
                return ref

            await journey("A-9")
            [sent] = await catcher.wait_for(email)
            links = " ".join(sent.header("List-Unsubscribe").split())
            one_click = urlsplit(links.split(", ")[1].strip("<>"))
            # What a mail client does with List-Unsubscribe-Post (RFC 8058): no cookies, no redirect.
            clicked = await web.post(
                f"{one_click.path}?{one_click.query}",
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert clicked.status_code == 200 and "unsubscribed" in clicked.text
            assert len(catcher.to(email)) == 1  # no confirmation email for a one-click unsubscribe

            second = await journey("A-10")
            assert await sms.wait_for(second.customer, 1) == ["We could not email you about order A-10."]
    assert len(catcher.to(email)) == 1
