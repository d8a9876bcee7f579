"""WhatsApp refusals reported after the provider took the message (200 and a wamid, then a
`failed` status with Meta's 131047/131026, or Twilio's status callback with 63016) are handled by
the conversation that sent the message, as a refusal at send time is: the message again as its
template, else its step's failure branch, else the number's SMS fallback, in the transcript, and
the conversation goes on. The fallback's sweeper never says it too; for a conversation that has
ended, it alone does. Through the real app and worker, the webhooks signed as Meta and Twilio sign
them, the providers' APIs mocked with respx."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, Say, Template, anything
from chatflow.domain.addresses import ConversationRef
from chatflow.edge import keys
from chatflow.temporal import constants
from tests.helpers import new_customer
from tests.providers.conftest import (
    ACCOUNT_SID,
    PUBLIC_URL,
    TWILIO_NUMBER,
    WHATSAPP_NUMBER,
    meta_messages,
    meta_post,
    meta_text,
    twilio_inbound,
    twilio_post,
)
from tests.providers.whatsapp_stack import STATUS_URL, TWILIO_WHATSAPP, Stack, whatsapp_stack

# Meta's error objects as its error-code reference documents them.
RE_ENGAGEMENT = {
    "code": 131047,
    "title": "Re-engagement message",
    "message": "Re-engagement message",
    "error_data": {
        "details": "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number."
    },
    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
}
UNDELIVERABLE = {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Message undeliverable",
    "error_data": {"details": "Message Undeliverable."},
}


class Reminder(Flow):
    name = "late_refusal_reminder"

    notice = Say(
        "Your order {order_id} is ready.", template=Template("order_ready", language="en", body=["{order_id}"])
    )
    ask = Ask("Reply with anything.", branches={anything: "done"})
    done = End("completed", "Thanks!")
    defaults = {"order_id": "A-7"}


class Notice(Flow):
    name = "late_refusal_notice"

    notice = Say("Your order is ready.")
    ask = Ask("Reply with anything.", branches={anything: "done"})
    done = End("completed", "Thanks!")


class OwnBranch(Flow):
    name = "late_refusal_own_branch"

    notice = Say("Your order is ready.", on_error="sorry")
    ask = Ask("Reply with anything.", branches={anything: "done"})
    done = End("completed")
    sorry = End("failed")


class Goodbye(Flow):
    name = "late_refusal_goodbye"

    bye = End("completed", "Your order is on its way.")


def meta_failed(message_id: str, customer: str, error: dict[str, Any]) -> dict[str, Any]:
    status = {
        "id": message_id,
        "status": "failed",
        "timestamp": "1763807400",
        "recipient_id": customer[1:],
        "errors": [error],
    }
    return meta_messages(statuses=[status])


def twilio_failed(message_sid: str, customer: str) -> dict[str, str]:
    """Twilio's status callback of a WhatsApp message it could not deliver outside the window."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "ChannelPrefix": "whatsapp",
        "ChannelToAddress": customer,
        "ErrorCode": "63016",
        "From": f"whatsapp:{TWILIO_WHATSAPP}",
        "MessageSid": message_sid,
        "MessageStatus": "failed",
        "SmsSid": message_sid,
        "SmsStatus": "failed",
        "StructuredMessage": "false",
        "To": f"whatsapp:{customer}",
    }


async def meta_hello(stack: Stack, customer: str) -> ConversationRef:
    """The customer writes to the Cloud API number: the flow starts, its notice goes as free text."""
    webhook = meta_messages(meta_text("wamid.IN" + uuid.uuid4().hex, "hi", sender=customer[1:]))
    webhook["entry"][0]["changes"][0]["value"]["contacts"] = [{"profile": {"name": "Ada"}, "wa_id": customer[1:]}]
    assert (await stack.web.post("/webhooks/whatsapp", **meta_post(webhook))).status_code == 200
    return ConversationRef("whatsapp", WHATSAPP_NUMBER, customer)


async def sent_out(stack: Stack, ref: ConversationRef, count: int) -> list[dict[str, Any]]:
    """The conversation's outbound lines once `count` have their provider's id."""
    view = await stack.view_until(
        ref, lambda v: sum(1 for t in v["transcript"] if t["direction"] == "out" and t["message_id"]) >= count
    )
    return [t for t in view["transcript"] if t["direction"] == "out"]


async def refused_later(stack: Stack, customer: str, error: dict[str, Any]) -> tuple[ConversationRef, str]:
    """The customer writes, the flow's notice goes (free text), and Meta reports it failed."""
    ref = await meta_hello(stack, customer)
    notice, _prompt = await sent_out(stack, ref, 2)
    failed = meta_failed(notice["message_id"], customer, error)
    assert (await stack.web.post("/webhooks/whatsapp", **meta_post(failed))).status_code == 200
    return ref, notice["message_id"]


async def continued_as_new(stack: Stack, ref: ConversationRef) -> bool:
    """Whether the conversation's current run is one continued as new (waited for a while)."""
    handle = stack.client.get_workflow_handle(ref.id)
    for _ in range(200):
        started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        if started.continued_execution_run_id:
            return True
        await asyncio.sleep(0.05)
    return False


async def not_swept(stack: Stack, message_id: str) -> bool:
    """The fallback's sweeper has nothing of `message_id` (neither due nor watched)."""
    due = await stack.redis.zscore(keys.fallback_due(), message_id)
    return due is None and not await stack.redis.exists(keys.fallback_watch(message_id))


async def test_a_re_engagement_refusal_reported_later_sends_the_template_in_the_conversation(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with whatsapp_stack(dev_env.client, redis, [Reminder], Reminder.name) as stack:
        ref, notice = await refused_later(stack, customer, RE_ENGAGEMENT)
        sent = await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) == 3)
        assert (
            sent[0]["type"] == "text"
            and sent[2]["type"] == "template"
            and sent[2]["template"]
            == {
                "name": "order_ready",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-7"}]}],
            }
        )
        view = await stack.view_until(ref, lambda v: len(v["transcript"]) >= 4)
        assert [(t["text"], t["status"], t["error_code"]) for t in view["transcript"][1:]] == [
            ("Your order A-7 is ready.", "failed", "131047"),
            ("Reply with anything.", "accepted", ""),
            ("Your order A-7 is ready.", "accepted", ""),
        ]
        assert any("sending it again as its template order_ready:en" in line["text"] for line in view["trace"])
        assert view["step"] == "ask"
        assert await not_swept(stack, notice) and stack.twilio_sent(customer) == []

        # The conversation goes on where it was.
        answer = meta_messages(meta_text("wamid.IN" + uuid.uuid4().hex, "ok", sender=customer[1:]))
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(answer))).status_code == 200
        assert (await stack.view_until(ref, lambda v: v.get("outcome") == "completed"))["outcome"] == "completed"


async def test_an_undeliverable_refusal_without_a_template_goes_by_sms_once_in_the_conversation(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with whatsapp_stack(dev_env.client, redis, [Notice], Notice.name) as stack:
        ref, notice = await refused_later(stack, customer, UNDELIVERABLE)
        again = meta_failed(notice, customer, UNDELIVERABLE)  # Meta may report it twice: one SMS
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(again))).status_code == 200
        [sms] = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 1)
        assert (sms["From"], sms["To"], sms["Body"]) == (TWILIO_NUMBER, customer, "Your order is ready.")
        view = await stack.view_until(ref, lambda v: len(v["transcript"]) >= 4 and v["transcript"][3]["message_id"])
        assert [(t["text"], t["status"], t["error_code"]) for t in view["transcript"][1:]] == [
            ("Your order is ready.", "failed", "131026"),
            ("Reply with anything.", "accepted", ""),
            ("Your order is ready.", "queued", ""),
        ]
        assert any(f"sending it by SMS from {TWILIO_NUMBER}" in line["text"] for line in view["trace"])
        assert view["step"] == "ask" and await not_swept(stack, notice)
        await asyncio.sleep(0.5)
        assert len(stack.twilio_sent(customer)) == 1 and len(stack.graph_sent(customer)) == 2


async def test_twilios_63016_in_a_status_callback_goes_by_sms_in_the_conversation(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with whatsapp_stack(dev_env.client, redis, [Notice], Notice.name) as stack:
        inbound = twilio_inbound(
            sid="SM" + uuid.uuid4().hex, From=f"whatsapp:{customer}", To=f"whatsapp:{TWILIO_WHATSAPP}"
        )
        answer = await stack.web.post("/webhooks/twilio", **twilio_post(f"{PUBLIC_URL}/webhooks/twilio", inbound))
        assert answer.status_code == 200
        ref = ConversationRef("whatsapp", TWILIO_WHATSAPP, customer)
        notice, _prompt = await sent_out(stack, ref, 2)
        callback = twilio_failed(notice["message_id"], customer)
        assert (await stack.web.post("/webhooks/twilio/status", **twilio_post(STATUS_URL, callback))).status_code < 300
        sent = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) == 3)
        assert [(form["From"], form["Body"]) for form in sent] == [
            (f"whatsapp:{TWILIO_WHATSAPP}", "Your order is ready."),
            (f"whatsapp:{TWILIO_WHATSAPP}", "Reply with anything."),
            (TWILIO_NUMBER, "Your order is ready."),
        ]
        view = await stack.view_until(ref, lambda v: len(v["transcript"]) >= 4)
        assert (view["transcript"][1]["status"], view["transcript"][1]["error_code"]) == ("failed", "63016")
        assert view["transcript"][3]["text"] == "Your order is ready." and view["step"] == "ask"
        assert await not_swept(stack, notice["message_id"])


async def test_a_step_with_its_own_failure_branch_takes_it_when_refused_later(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with whatsapp_stack(dev_env.client, redis, [OwnBranch], OwnBranch.name) as stack:
        ref, notice = await refused_later(stack, customer, RE_ENGAGEMENT)
        view = await stack.view_until(ref, lambda v: v.get("outcome") == "failed")
        assert view["outcome"] == "failed" and "131047" in view["reason"]
        assert stack.twilio_sent(customer) == [] and await not_swept(stack, notice)


async def test_a_refusal_of_a_conversation_that_has_ended_is_the_sweepers_sms(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    async with whatsapp_stack(dev_env.client, redis, [Goodbye], Goodbye.name) as stack:
        ref = await meta_hello(stack, customer)
        [bye] = await sent_out(stack, ref, 1)
        await stack.view_until(ref, lambda v: v.get("state") == "ended")
        failed = meta_failed(bye["message_id"], customer, RE_ENGAGEMENT)
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(failed))).status_code == 200
        # The worker's sweeper (every 5 s) sends it, once.
        sent = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 1)
        assert [(form["From"], form["Body"]) for form in sent] == [(TWILIO_NUMBER, "Your order is on its way.")]
        assert await not_swept(stack, bye["message_id"])


async def test_a_refusal_after_the_conversation_continued_as_new_still_goes_by_sms(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    # A history limit this low makes the conversation continue as new when it next wakes: the new
    # run has the transcript, not the sends it could send again as their template.
    async with whatsapp_stack(dev_env.client, redis, [Reminder], Reminder.name, history_limit=8) as stack:
        ref = await meta_hello(stack, customer)
        notice, prompt = await sent_out(stack, ref, 2)
        delivered = {"id": prompt["message_id"], "status": "delivered", "timestamp": "1763807400"}
        delivered["recipient_id"] = customer[1:]
        answer = await stack.web.post("/webhooks/whatsapp", **meta_post(meta_messages(statuses=[delivered])))
        assert answer.status_code == 200 and await continued_as_new(stack, ref)

        failed = meta_failed(notice["message_id"], customer, RE_ENGAGEMENT)
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(failed))).status_code == 200
        [sms] = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 1)
        assert (sms["From"], sms["Body"]) == (TWILIO_NUMBER, "Your order A-7 is ready.")
        view = await stack.view_until(ref, lambda v: len(v["transcript"]) >= 4)
        assert (view["transcript"][1]["status"], view["step"]) == ("failed", "ask")
        assert len(stack.graph_sent(customer)) == 2 and await not_swept(stack, notice["message_id"])


async def test_a_conversation_started_before_refusals_were_its_own_leaves_them_to_the_sweeper(
    dev_env: WorkflowEnvironment, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run of revision 0 (started by the code before this deploy) does not act on a refusal
    # reported later until it continues as new: had the message been taken off the sweeper, a
    # conversation that ends first would never say it.
    monkeypatch.setattr(constants, "REVISION", 0)
    customer = new_customer()
    async with whatsapp_stack(dev_env.client, redis, [Notice], Notice.name) as stack:
        ref, notice = await refused_later(stack, customer, UNDELIVERABLE)
        answer = meta_messages(meta_text("wamid.IN" + uuid.uuid4().hex, "ok", sender=customer[1:]))
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(answer))).status_code == 200
        await stack.view_until(ref, lambda v: v.get("state") == "ended")
        # The worker's sweeper (every 5 s) says it by SMS, once; the conversation noted it only.
        [sms] = await stack.until(lambda: stack.twilio_sent(customer), lambda sent: len(sent) >= 1)
        assert (sms["From"], sms["To"], sms["Body"]) == (TWILIO_NUMBER, customer, "Your order is ready.")
        assert await not_swept(stack, notice)
        await asyncio.sleep(0.5)
        assert len(stack.twilio_sent(customer)) == 1
