"""The inbound edge: what a webhook calls with each parsed message, before any flow sees it.

Opt-out, opt-in and help are answered here, outside every flow, because they apply to every flow
on the number and must work even when no conversation runs (or Temporal is down). Everything else
is routed (keywords) and handed on to the conversation.

    verdict = await edge.receive(binding, message)
    if verdict.reply:
        ...send verdict.reply to the customer straight through the provider (TwiML or API)...
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from temporalio.client import Client
from temporalio.service import RPCError

from chatflow.domain.addresses import conversation_id
from chatflow.domain.config import NumberBinding
from chatflow.domain.keywords import HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS, command
from chatflow.domain.messages import InboundMessage
from chatflow.edge.dedupe import Dedupe
from chatflow.edge.delivery import Deliver
from chatflow.edge.optout import HELP_TEXT, OPTED_IN_TEXT, OPTED_OUT_TEXT, OptOuts
from chatflow.edge.triggers import route
from chatflow.temporal.client import end

log = logging.getLogger(__name__)

Action = Literal["delivered", "duplicate", "opted_out", "opted_in", "help", "ignored"]


Receive = Callable[[NumberBinding, InboundMessage], Awaitable["Verdict"]]


@dataclass
class Verdict:
    action: Action
    flow: str = ""  # the flow the message was routed to, when delivered
    # What to answer the customer, outside any flow; "" for nothing. The confirmation of STOP
    # must reach an opted-out customer, so it never goes through the (refusing) send activity.
    reply: str = ""

    @property
    def handled(self) -> bool:
        """True when the edge dealt with the message and no flow will see it."""
        return self.action != "delivered"


class InboundEdge:
    def __init__(
        self,
        deliver: Deliver,
        optouts: OptOuts | None = None,
        dedupe: Dedupe | None = None,
        *,
        client: Client | None = None,
        help_text: str = HELP_TEXT,
    ) -> None:
        # `deliver` must dedupe itself: `deduped(direct_delivery(client), dedupe)` or a
        # BufferedDelivery, which claims the id atomically with buffering it.
        self._deliver = deliver
        self._optouts = optouts
        self._dedupe = dedupe
        self._client = client  # to end the running conversation at once on STOP
        self._help_text = help_text

    async def receive(self, binding: NumberBinding, message: InboundMessage) -> Verdict:
        if self._optouts is None or self._dedupe is None:
            # Without Redis there is nowhere to keep opt-outs: every message goes to its flow.
            flow = route(binding, message)
            await self._deliver(message, flow)
            return Verdict("delivered", flow=flow)
        word = command(message.text)
        number, customer = message.number, message.customer
        if word in OPT_OUT_WORDS or word in HELP_WORDS:
            if not await self._dedupe.claim(message.id):
                return Verdict("duplicate")
            if word in HELP_WORDS:
                return Verdict("help", reply=binding.help_text or self._help_text)
            newly = await self._optouts.opt_out(number, customer)
            await self._end_conversation(conversation_id(message.channel, number, customer))
            return Verdict("opted_out", reply=OPTED_OUT_TEXT if newly else "")
        if word in OPT_IN_WORDS and await self._optouts.opt_in(number, customer):
            return Verdict("opted_in", reply=OPTED_IN_TEXT)
        if await self._optouts.is_opted_out(number, customer):
            # No flow could answer them anyway; they come back with START.
            return Verdict("ignored")
        flow = route(binding, message)
        await self._deliver(message, flow)
        return Verdict("delivered", flow=flow)

    async def _end_conversation(self, conversation: str) -> None:
        if self._client is None:
            return
        try:
            await end(self._client, conversation, "the customer opted out")
        except RPCError as error:
            # None running, or Temporal away: the send path refuses every later send anyway.
            log.info("opt-out: could not end %s: %s", conversation, error)
