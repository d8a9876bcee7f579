"""The records the conversation workflow takes, keeps, answers and carries across runs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.messages import BusinessEvent, DeliveryUpdate, InboundMessage
from chatflow.flows.engine import FlowState

SEEN_IDS_LIMIT = 2000
TRACE_LIMIT = 200  # decisions kept (and carried to the next run) per conversation
TRANSCRIPT_LIMIT = 200


@dataclass
class InboxItem:
    """A customer message or a business event waiting for the flow, in arrival order."""

    message: InboundMessage | None = None
    event: BusinessEvent | None = None


@dataclass
class Turn:
    """One line of the transcript: a message in or out, with its delivery status when outbound."""

    direction: str  # in | out
    text: str
    at: str
    message_id: str = ""
    status: str = ""
    error_code: str = ""
    options: list[str] = field(default_factory=list)
    by: str = ""  # who wrote an outbound message: "" for the bot, else the operator's name
    # A notification (`Notify`): who it went to and on which channel ("" for the customer, here).
    to: str = ""
    channel: str = ""


@dataclass
class ConversationInput:
    flow: str
    conversation: ConversationRef
    data: dict[str, Any] = field(default_factory=dict)
    version: int | None = None  # pinned at the first run; None means the latest deployed
    # The number's own inbound flow, which takes over a message that arrives as a flow ends.
    home_flow: str = ""
    # "message" when a customer's message started this run: that message is the trigger, not an
    # answer to the flow's first question. "journey" when the business started it.
    started_by: str = "journey"
    # Carried by continue-as-new:
    resume: FlowState | None = None
    inbox: list[InboxItem] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    transcript: list[Turn] = field(default_factory=list)
    signals: int = 0  # messages and events received by earlier runs of this conversation
    trace: list[TraceLine] = field(default_factory=list)
    # Continue-as-new once history passes this many events (0: only when Temporal suggests it).
    history_limit: int = 0
    # Keeps its search attributes current (chatflow.temporal.search_attributes). False in the
    # input of runs started before they existed, whose histories replay without those commands.
    indexed: bool = False
    # WhatsApp refusals reported later that the run before had not acted on yet (with the SMS
    # route the edge took for them): this run acts on them at its first wait.
    refusals: list[DeliveryUpdate] = field(default_factory=list)


@dataclass
class TraceLine:
    """One decision of the conversation, as its lifecycle log line says it: a step entered, a
    reply matched or not, a timeout, an HTTP call, a send refused, a takeover."""

    at: str
    text: str


@dataclass
class OperatorReply:
    operator: str
    text: str


@dataclass
class ConversationResult:
    flow: str
    outcome: str
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    unhandled: list[InboundMessage] = field(default_factory=list)


@dataclass
class ConversationSnapshot:
    id: str
    flow: str
    version: int
    step: str
    outcome: str
    reason: str
    data: dict[str, Any]
    transcript: list[Turn]
    idle: bool  # blocked on a wait with nothing to process
    signals: int  # messages and events received since the conversation began (duplicates included)
    pending: int  # inbox items not yet handled
    operator: str = ""  # the person who has taken the conversation over ("" while the bot has it)
    trace: list[TraceLine] = field(default_factory=list)  # the latest decisions, oldest first
    # What the customer wrote to the person who has the conversation, since their last reply.
    unanswered: list[str] = field(default_factory=list)


@dataclass
class ReplyFit:
    """How a running conversation would take a customer's message: what the reply router asks
    each of the conversations a customer has on a number (`ConversationWorkflow.reply_fit`)."""

    waiting: bool  # at a question of its flow (an Ask with branches or choices), the bot has it
    fits: bool  # that question's choices or branches take the message as an answer
    asked_at: str = ""  # when it last said something to the customer (ISO 8601; "" never)
    priority: int = 0  # its flow's `reply_priority`
    title: str = ""  # its flow's `title` in the customer's language, for asking which conversation
    locale: str = ""  # the customer's locale, as the conversation has it


class SeenIds:
    """A bounded, insertion-ordered set of provider message ids: the workflow's own dedupe."""

    def __init__(self, ids: Iterable[str] = (), limit: int = SEEN_IDS_LIMIT) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict((i, None) for i in ids)
        self._limit = limit

    def add(self, message_id: str) -> bool:
        """Record an id; False when it was already seen."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def to_list(self) -> list[str]:
        return list(self._ids)


@dataclass
class QuietHoursRequest:
    """The local activity's question: when may a non-urgent message go to this customer?"""

    customer: str
    start: str  # HH:MM local
    end: str
    now: str  # ISO 8601
    timezone: str = ""
