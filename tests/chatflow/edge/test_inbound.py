import uuid

import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.config import NumberBinding
from chatflow.domain.errors import TooLarge
from chatflow.domain.keywords import OPT_OUT_WORDS
from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import BufferedDelivery, decode
from chatflow.edge.consent import How
from chatflow.edge.dedupe import Dedupe, deduped
from chatflow.edge.inbound import InboundEdge
from chatflow.edge.optout import OptOuts
from chatflow.edge.rate_limit import RateLimiter
from chatflow.edge.send_guard import SendGuard
from chatflow.temporal.client import start_journey
from chatflow.temporal.worker import build_worker
from providers.console import ConsoleChannel, Outbox
from tests.flows import FLOWS
from tests.helpers import stream_entries

NUMBER = "+15005550006"
CUSTOMER = "+14155550100"
BINDING = NumberBinding(
    address=Address("tel", NUMBER),
    provider="console",
    channel="sms",
    flow="echo",
    keywords={"JOIN": "burst"},
    help_text="Acme: reply STOP to stop.",
)


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.delivered: list[tuple[str, str]] = []
        self.fail = fail

    async def __call__(self, message: InboundMessage, flow: str) -> None:
        if self.fail:
            raise ConnectionError("Temporal is unreachable")
        self.delivered.append((message.id, flow))


def message(text: str, id: str | None = None, customer: str = CUSTOMER) -> InboundMessage:
    return InboundMessage(
        id=id or uuid.uuid4().hex, channel="sms", provider="console", customer=customer, number=NUMBER, text=text
    )


def edge_for(redis: Redis, recorder: Recorder) -> InboundEdge:
    dedupe = Dedupe(redis)
    return InboundEdge(deduped(recorder, dedupe), OptOuts(redis), dedupe)


@pytest.mark.parametrize("word", sorted(OPT_OUT_WORDS) + ["stop", " Stop. ", "unsubscribe"])
async def test_every_opt_out_word_opts_out_with_one_confirmation(redis: Redis, word: str) -> None:
    recorder = Recorder()
    edge = edge_for(redis, recorder)
    first = await edge.receive(BINDING, message(word))
    assert first.action == "opted_out" and "unsubscribed" in first.reply
    again = await edge.receive(BINDING, message(word))
    assert again.action == "opted_out" and again.reply == ""
    assert await OptOuts(redis).is_opted_out(Address("tel", NUMBER), Address("tel", CUSTOMER))
    assert recorder.delivered == []


async def test_stop_inside_a_sentence_is_a_message_for_the_flow(redis: Redis) -> None:
    recorder = Recorder()
    verdict = await edge_for(redis, recorder).receive(BINDING, message("please stop the delivery"))
    assert verdict.action == "delivered"
    assert not await OptOuts(redis).is_opted_out(Address("tel", NUMBER), Address("tel", CUSTOMER))


async def test_start_opts_back_in_and_messages_flow_again(redis: Redis) -> None:
    recorder = Recorder()
    edge = edge_for(redis, recorder)
    await edge.receive(BINDING, message("STOP"))
    assert (await edge.receive(BINDING, message("hello"))).action == "ignored"
    verdict = await edge.receive(BINDING, message("unstop"))
    assert verdict.action == "opted_in" and verdict.reply
    assert (await edge.receive(BINDING, message("hello", id="SM-hello"))).action == "delivered"
    assert recorder.delivered == [("SM-hello", "echo")]


async def test_help_answers_with_the_numbers_text(redis: Redis) -> None:
    verdict = await edge_for(redis, Recorder()).receive(BINDING, message("help"))
    assert (verdict.action, verdict.reply) == ("help", "Acme: reply STOP to stop.")


async def test_keywords_pick_the_flow_and_duplicates_are_dropped(redis: Redis) -> None:
    recorder = Recorder()
    edge = edge_for(redis, recorder)
    await edge.receive(BINDING, message("JOIN now", id="SM-1"))
    await edge.receive(BINDING, message("JOIN now", id="SM-1"))
    await edge.receive(BINDING, message("hi", id="SM-2"))
    assert recorder.delivered == [("SM-1", "burst"), ("SM-2", "echo")]


async def test_a_failed_hand_on_does_not_mark_the_message_seen(redis: Redis) -> None:
    with pytest.raises(ConnectionError):
        await edge_for(redis, Recorder(fail=True)).receive(BINDING, message("hi", id="SM-9"))
    recorder = Recorder()
    await edge_for(redis, recorder).receive(BINDING, message("hi", id="SM-9"))  # the provider's retry
    assert recorder.delivered == [("SM-9", "echo")]


async def test_stop_blocks_a_journey_started_right_after_it(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    task_queue = f"optout-{uuid.uuid4().hex}"
    outbox = Outbox()
    guard = SendGuard(OptOuts(redis), RateLimiter(redis))
    customer = "+14155550177"
    edge = InboundEdge(Recorder(), OptOuts(redis), Dedupe(redis), client=dev_env.client)
    assert (await edge.receive(BINDING, message("STOP", customer=customer))).action == "opted_out"
    async with build_worker(
        dev_env.client, FLOWS, {"console": ConsoleChannel(outbox)}, task_queue=task_queue, guard=guard
    ):
        ref = ConversationRef("sms", NUMBER, customer, "console")
        handle = await start_journey(dev_env.client, ref, "payment", {}, task_queue=task_queue)
        result = await handle.result()
    assert result.outcome == "failed"
    assert "opted out" in result.reason
    assert outbox.sent[customer] == []


async def test_a_message_over_the_size_limit_is_refused_before_it_is_acknowledged(redis: Redis) -> None:
    recorder = Recorder()
    huge = message("a" * 300 * 1024, id="SM-huge")  # over the 256 KiB a conversation takes
    with pytest.raises(TooLarge) as refused:
        await edge_for(redis, recorder).receive(BINDING, huge)
    assert "SM-huge" in refused.value.reason and "limit" in refused.value.reason
    assert recorder.delivered == []
    assert not await redis.exists(Dedupe(redis).key(huge))  # not claimed: nothing acknowledged it
    fits = await edge_for(redis, recorder).receive(BINDING, message("a" * 200 * 1024, id="SM-fits"))
    assert fits.action == "delivered"


class FailingOnce(OptOuts):
    """Opt-outs whose first STOP fails (Redis dropped the connection as it was written, say)."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.failed = False

    async def opt_out(self, ours: Address, customer: Address, *, how: How = "keyword", word: str = "") -> bool:
        if not self.failed:
            self.failed = True
            raise ConnectionError("connection reset")
        return await super().opt_out(ours, customer, how=how, word=word)


async def test_a_stop_that_failed_half_way_is_not_taken_for_a_duplicate_when_the_provider_retries(redis: Redis) -> None:
    recorder = Recorder()
    dedupe = Dedupe(redis)
    edge = InboundEdge(deduped(recorder, dedupe), FailingOnce(redis), dedupe)
    stop = message("STOP", id="SM-stop")
    with pytest.raises(ConnectionError):
        await edge.receive(BINDING, stop)
    retried = await edge.receive(BINDING, stop)  # the provider's retry of the same webhook
    assert (retried.action, "unsubscribed" in retried.reply) == ("opted_out", True)
    assert await OptOuts(redis).is_opted_out(Address("tel", NUMBER), Address("tel", CUSTOMER))


async def test_through_the_buffer_an_opted_out_customer_is_ignored_until_start_and_repeats_are_dropped(
    redis: Redis,
) -> None:
    buffer = BufferedDelivery(redis, partitions=1)
    edge = InboundEdge(buffer, OptOuts(redis), Dedupe(redis, partitions=1))
    await edge.receive(BINDING, message("STOP"))
    assert (await edge.receive(BINDING, message("hello", id="SM-while-out"))).action == "ignored"
    await edge.receive(BINDING, message("START"))
    # Ignored while opted out, so not taken for a repeat once they are back.
    assert (await edge.receive(BINDING, message("hello", id="SM-while-out"))).action == "delivered"
    assert (await edge.receive(BINDING, message("hello", id="SM-while-out"))).action == "duplicate"
    buffered = await stream_entries(redis, keys.inbox(0))
    assert [decode(fields["m"]) for _, fields in buffered] == [(message("hello", id="SM-while-out"), "echo")]
