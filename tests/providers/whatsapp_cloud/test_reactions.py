"""Reactions through the real app and worker, Meta's webhook payloads signed as Meta signs them:
a customer's reaction reaches the conversation as data (transcript, trace, the `reaction()`
matcher) and is never the answer to a question that does not ask for one; a flow reacts to the
customer's last message with `convo.react`, sent as Meta documents a reaction message."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, Convo, End, Flow, anything, reaction
from chatflow.domain.addresses import ConversationRef
from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import PermanentSendError
from chatflow.domain.messages import OutboundMessage, Reaction, SendResult
from chatflow.testing import FlowTest
from providers.console import ConsoleChannel
from providers.whatsapp_cloud.inbound import parse_message
from tests.helpers import new_customer
from tests.providers.conftest import WHATSAPP_NUMBER, make_config, meta_messages, meta_post, meta_text
from tests.providers.whatsapp_stack import whatsapp_stack

PROMPT = "How was your delivery? React with 👍 to this message, or tell us."


class Rating(Flow):
    name = "rating_by_reaction"

    ask = Ask(PROMPT, branches={reaction("👍"): "liked", anything: "told"}, save_as="rating")

    async def liked(self, convo: Convo) -> Any:
        await convo.react("🙏")
        return self.thanks

    thanks = End("completed", "Thanks!")
    told = End("completed", "Noted, thank you.")


def meta_reaction(wamid: str, on: str, emoji: str | None, sender: str) -> dict[str, Any]:
    """A reaction as Meta's webhook reference shows it; a removed reaction comes without its emoji."""
    body = {"message_id": on} if emoji is None else {"message_id": on, "emoji": emoji}
    return {"from": sender, "id": wamid, "timestamp": "1760000000", "type": "reaction", "reaction": body}


def binding() -> NumberBinding:
    found = make_config().binding(WHATSAPP_NUMBER, "whatsapp_cloud")
    assert found is not None
    return found


def test_a_reaction_is_read_as_data_and_a_removed_one_has_no_emoji() -> None:
    added = parse_message(meta_reaction("wamid.R1", "wamid.OUT1", "👍", "14155550100"), [], binding(), "m", str)
    removed = parse_message(meta_reaction("wamid.R2", "wamid.OUT1", None, "14155550100"), [], binding(), "m", str)
    assert added is not None and removed is not None
    assert (added.text, added.reaction) == ("", Reaction("wamid.OUT1", "👍"))
    assert (removed.text, removed.reaction) == ("", Reaction("wamid.OUT1", ""))


async def test_a_reaction_is_recorded_and_only_the_asked_for_one_answers(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    sender = customer[1:]
    ref = ConversationRef("whatsapp", WHATSAPP_NUMBER, customer)
    async with whatsapp_stack(dev_env.client, redis, [Rating], Rating.name) as stack:
        hello = "wamid.IN" + uuid.uuid4().hex
        webhook = meta_messages(
            meta_text(hello, "hi", sender=sender), contacts=[{"profile": {"name": "Ada"}, "wa_id": sender}]
        )
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(webhook))).status_code == 200
        [prompt] = await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) == 1)
        assert prompt["text"]["body"] == PROMPT
        prompt_id = (await stack.view_until(ref, lambda v: any(t["message_id"] for t in v["transcript"][1:])))[
            "transcript"
        ][1]["message_id"]

        # 😮, then taken away: recorded, not an answer, and no "please answer" prompt again.
        for emoji in ("😮", None):
            webhook = meta_messages(meta_reaction("wamid.IN" + uuid.uuid4().hex, prompt_id, emoji, sender))
            assert (await stack.web.post("/webhooks/whatsapp", **meta_post(webhook))).status_code == 200
        view = await stack.view_until(ref, lambda v: sum("not an answer" in line["text"] for line in v["trace"]) == 2)
        assert [t["text"] for t in view["transcript"] if t["direction"] == "in"] == [
            "hi",
            f"reacted 😮 to {prompt_id}",
            f"removed a reaction to {prompt_id}",
        ]
        assert any(line["text"] == f"the customer reacted 😮 to {prompt_id}" for line in view["trace"])
        assert view["step"] == "ask" and len(stack.graph_sent(customer)) == 1

        # 👍 is what the step asks for: it answers, and the flow reacts 🙏 to the customer's "hi".
        webhook = meta_messages(meta_reaction("wamid.IN" + uuid.uuid4().hex, prompt_id, "👍", sender))
        assert (await stack.web.post("/webhooks/whatsapp", **meta_post(webhook))).status_code == 200
        sent = await stack.until(lambda: stack.graph_sent(customer), lambda sent: len(sent) == 3)
        assert sent[1:] == [
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": sender,
                "type": "reaction",
                "reaction": {"message_id": hello, "emoji": "🙏"},
            },
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": sender,
                "type": "text",
                "text": {"body": "Thanks!", "preview_url": False},
            },
        ]
        view = await stack.view_until(ref, lambda v: v.get("outcome") == "completed")
        assert view["data"]["rating"] == {"emoji": "👍", "message_id": prompt_id}


class RefusesReactions(ConsoleChannel):
    """Takes messages; refuses reactions as Meta does one to a message over 30 days old."""

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.reaction is not None:
            raise PermanentSendError("refused (131009): Parameter value is not valid", code="131009")
        return await super().send(message)


class Acknowledge(Flow):
    name = "reaction_refused"

    async def thumbs_up(self, convo: Convo) -> Any:
        await convo.react("👍")
        return self.done

    done = End("completed", "Noted.")


async def test_a_refused_reaction_is_in_the_trace_and_the_flow_goes_on(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(
        skipping_env, Acknowledge, channel="whatsapp", number=WHATSAPP_NUMBER, provider=RefusesReactions()
    ) as chat:
        await chat.send("hi")
        result = await chat.result()
        snapshot = await chat.snapshot()
        assert result.outcome == "completed" and chat.said == ["Noted."]
        assert snapshot is not None and any("send refused (131009)" in line.text for line in snapshot.trace)
