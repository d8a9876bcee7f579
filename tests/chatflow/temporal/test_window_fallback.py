"""WhatsApp's refusal of a message outside its window (Meta 131047/131026, Twilio 63016): the
number's SMS fallback says it inside the conversation, whose transcript and trace show the SMS,
and the conversation goes on; a step with its own failure branch takes that instead."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, Say, anything
from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.errors import PermanentSendError
from chatflow.domain.messages import OutboundMessage, SendResult
from chatflow.testing import FlowTest
from providers.console import ConsoleChannel

WHATSAPP, SMS = "+15005550006", "+15005550007"


class WhatsAppRefuses(ConsoleChannel):
    """Takes SMS; refuses every WhatsApp message as Meta does outside the window."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    async def send(self, message: OutboundMessage) -> SendResult:
        if message.channel == "whatsapp":
            raise PermanentSendError(f"refused ({self.code}): re-engagement message", code=self.code)
        return await super().send(message)


def with_fallback() -> Config:
    """The WhatsApp number (on the console provider) and its SMS fallback_number, as chatflow.toml
    binds them."""
    whatsapp = NumberBinding(
        Address("whatsapp", WHATSAPP), "console", "whatsapp", "window_fallback_notice", fallback_number=SMS
    )
    sms = NumberBinding(Address("tel", SMS), "console", "sms", "window_fallback_notice")
    return Config(numbers=[whatsapp, sms], flow_modules=[], settings=Settings())


class Notice(Flow):
    name = "window_fallback_notice"

    notice = Say("Your order {order_id} is ready.")
    ask = Ask("Reply with anything.", branches={anything: "done"})
    done = End("completed", "Thanks!")


class OwnBranch(Flow):
    name = "window_fallback_own_branch"

    notice = Say("Your order is ready.", on_error="sorry")
    done = End("completed")
    sorry = End("failed")


@pytest.mark.parametrize("code", ["131047", "131026", "63016"])
async def test_the_sms_fallback_says_it_in_the_conversation_which_goes_on(
    skipping_env: WorkflowEnvironment, code: str
) -> None:
    async with FlowTest(
        skipping_env,
        Notice,
        config=with_fallback(),
        channel="whatsapp",
        number=WHATSAPP,
        provider=WhatsAppRefuses(code),
    ) as chat:
        await chat.start({"order_id": "A-1"})
        snapshot = await chat.settle()
        assert snapshot.step == "ask"
        assert [(m.channel, m.number, m.text) for m in chat.messages] == [
            ("sms", SMS, "Your order A-1 is ready."),
            ("sms", SMS, "Reply with anything."),
        ]
        outbound = [(t.text, t.status, t.error_code) for t in snapshot.transcript if t.direction == "out"]
        assert outbound == [
            ("Your order A-1 is ready.", "failed", code),
            ("Your order A-1 is ready.", "delivered", ""),
            ("Reply with anything.", "failed", code),
            ("Reply with anything.", "delivered", ""),
        ]
        assert any(f"sending it by SMS from {SMS}" in line.text for line in snapshot.trace)
        await chat.send("ok")
        assert (await chat.result()).outcome == "completed"


async def test_a_steps_own_failure_branch_wins_over_the_sms_fallback(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(
        skipping_env,
        OwnBranch,
        config=with_fallback(),
        channel="whatsapp",
        number=WHATSAPP,
        provider=WhatsAppRefuses("131047"),
    ) as chat:
        await chat.start()
        assert (await chat.result()).outcome == "failed"
        assert chat.messages == []


async def test_without_a_fallback_number_the_refusal_takes_the_failure_branch(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(
        skipping_env, Notice, channel="whatsapp", number=WHATSAPP, provider=WhatsAppRefuses("131047")
    ) as chat:
        await chat.start({"order_id": "A-1"})
        result = await chat.result()
        assert result.outcome == "failed" and "131047" in result.reason
