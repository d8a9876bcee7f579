"""Where a provider's delivery status goes: the conversation's transcript, the channel fallback
and, when a callback URL is configured, the business's delivery reports.

The conversation is the one that sent the message, as the send ledger recorded it by the
provider's message id (`SentMessages`); the one the webhook's fields name is only a guess for
messages the ledger does not know (sent before it kept ids, or longer ago than it keeps them).
A status may name no conversation at all ("" for `conversation_id`): Twilio's status callbacks
without To or From, a Meta status whose recipient cannot be read.

A refusal reported after the provider took the message (WhatsApp's window: Meta 131047/131026,
Twilio 63016) is the sending conversation's to act on, as a refusal at send time is (its
template, its step's failure branch, the SMS fallback, in its transcript): the fallback's sweeper
gives the message up to it, and has it back (due at once) when the conversation has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from redis.exceptions import RedisError
from temporalio.client import Client

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.messages import DeliveryUpdate, OutboundMessage
from chatflow.edge.delivery_reports import DeliveryReports
from chatflow.edge.fallback import ChannelFallback
from chatflow.edge.ledger import SentMessages
from chatflow.temporal.client import acts_on_refusals, memo_customer, send_delivery
from chatflow.temporal.delivery_reports import DeliveryReport

# Report a delivery status to a conversation ("" when the webhook names none); False when that
# conversation no longer exists.
Report = Callable[[str, DeliveryUpdate], Awaitable[bool]]

log = logging.getLogger(__name__)

# The ledger records a send once the provider has answered it, and a provider may report the
# message's status in that moment: a status of a message the ledger does not know looks again
# (seconds between looks) before it goes to the conversation its fields name, or to none.
LEDGER_CATCH_UP = (0.05, 0.1, 0.2, 0.4)


class StatusRouter:
    def __init__(
        self,
        client: Client,
        reports: DeliveryReports | None = None,
        fallback: ChannelFallback | None = None,
        sent: SentMessages | None = None,
    ) -> None:
        self._client = client
        self._reports = reports
        self._fallback = fallback
        self._sent = sent

    async def report(self, conversation_id: str, update: DeliveryUpdate) -> bool:
        """Report `update` to the conversation that sent its message (True: delivered there, or
        nowhere to deliver it, so the caller tries no other), else to `conversation_id`."""
        sender = await self._sender(update.message_id)
        for pause in LEDGER_CATCH_UP if not sender else ():
            await asyncio.sleep(pause)
            if sender := await self._sender(update.message_id):
                break
        if sender:
            await self._report(sender, update)
            return True
        if not conversation_id:
            log.info("status %s of %s: no conversation is known to have sent it", update.status, update.message_id)
            return True
        return await self._report(conversation_id, update)

    async def _sender(self, message_id: str) -> str:
        if self._sent is None:
            return ""
        try:
            return await self._sent.conversation(message_id)
        except RedisError as error:  # the fields' conversation is a good guess while Redis is away
            log.warning("cannot look up the conversation of %s: %r", message_id, error)
            return ""

    async def _report(self, conversation_id: str, update: DeliveryUpdate) -> bool:
        taken = None
        for_conversation = update.refused_for_window and self._fallback is not None
        if for_conversation and not await acts_on_refusals(self._client, conversation_id):
            # A run started before refusals reported later were the conversation's (or one that
            # cannot say): the sweeper says it by SMS, now, as it did before; the conversation
            # only notes it, even in a run it continues as new.
            for_conversation, update = False, replace(update, fallen_back=True)
        if for_conversation:
            taken, update = await self._for_conversation(conversation_id, update)
        try:
            known = await send_delivery(self._client, conversation_id, update)
        except BaseException:
            if taken is not None:  # nobody has it now: the sweeper says it
                await self._fallback_of().give_back(update.message_id, taken)
            raise
        if self._fallback is not None:
            if taken is not None and not known:
                # The conversation has ended: its refusal is the sweeper's to say by SMS, now.
                await self._fallback.give_back(update.message_id, taken)
            elif not for_conversation:
                # A WhatsApp message delivered needs no SMS; one failed otherwise, now.
                await self._fallback.on_status(update)
        if self._reports is not None:
            address = ConversationRef.parse(conversation_id)
            # A hashed id (CHATFLOW_ID_KEY) names no customer: the report says who from the memo.
            customer = await memo_customer(self._client, conversation_id) if address.hashed else address.customer
            await self._reports.status_changed(
                DeliveryReport(
                    conversation_id=conversation_id,
                    message_id=update.message_id,
                    status=update.status,
                    customer=customer,
                    number=address.number,
                    error_code=update.error_code,
                    at=update.at,
                )
            )
        return known

    async def _for_conversation(
        self, conversation_id: str, update: DeliveryUpdate
    ) -> tuple[OutboundMessage | None, DeliveryUpdate]:
        """A refusal WhatsApp reported after it took the message is the conversation's to act
        on: the message is taken off the fallback's sweeper, and the update says by which SMS
        number the conversation may say it, or that the sweeper has said it already."""
        fallback = self._fallback_of()
        taken = await fallback.take(update.message_id)
        if taken is not None:
            number, provider = fallback.route(taken) or ("", "")
            return taken, replace(update, fallback_number=number, fallback_provider=provider)
        if fallback.watches(_number_of(conversation_id)):
            # Watched, and no longer: the sweeper has claimed it (its deadline passed first).
            return None, replace(update, fallen_back=True)
        return None, update

    def _fallback_of(self) -> ChannelFallback:
        assert self._fallback is not None
        return self._fallback


def _number_of(conversation_id: str) -> str:
    """Our number in a conversation's id ("" when it is none we can read)."""
    try:
        return ConversationRef.parse(conversation_id).number
    except ValueError:
        return ""
