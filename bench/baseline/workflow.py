"""The baseline's workflow: one per conversation, the demo flow written out by hand.

Imports nothing but temporalio and the standard library, so Temporal's sandbox loads it as is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

TASK_QUEUE = "baseline"
WORKFLOW = "BaselineConversation"
SEND = "baseline_send_sms"
IDLE_TIMEOUT = timedelta(hours=24)  # the demo's menu waits a day, then says goodbye
SEND_TIMEOUT = timedelta(seconds=10)
SEND_GIVE_UP_AFTER = timedelta(hours=1)
SEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
SEEN_LIMIT = 1000  # message ids kept to drop a provider's retries

# The demo flow's words (conversations/demo.py), the menu numbered as chatflow renders it for SMS.
GREETING = "Hi! I'm the chatflow demo bot."
MENU = "What can I do for you?\n\n1. Opening hours\n2. Track my order\n3. Talk to a person"
HOURS = "We're open 9:00-18:00, Monday to Saturday."
ASK_ORDER = "What's your order number?"
ORDER_STATUS = "Order {order} is on its way and arrives tomorrow."
HANDOFF = "A person will text you back shortly. Bye for now!"
GOODBYE = "Bye! Text us any time."
REPROMPT = "Sorry, I didn't get that. Reply with 1, 2 or 3."
ATTEMPTS = 3


@dataclass
class Inbound:
    id: str
    text: str


@dataclass
class Outbound:
    to: str
    body: str


@dataclass
class Start:
    customer: str
    history_limit: int = 0  # continue as new past this many events (0: when Temporal suggests it)
    state: str = "start"  # start | menu | order
    misses: int = 0
    seen: list[str] = field(default_factory=list)


def answer(state: str, misses: int, text: str) -> tuple[list[str], str, int]:
    """The replies to `text` at `state`, the next state ("" when the conversation is over), the misses."""
    word = text.strip().lower()
    if state == "start":
        return [GREETING, MENU], "menu", 0
    if state == "order":
        return [ORDER_STATUS.format(order=text.strip()), MENU], "menu", 0
    if word in ("1", "opening hours"):
        return [HOURS, MENU], "menu", 0
    if word in ("2", "track my order"):
        return [ASK_ORDER], "order", 0
    if word in ("3", "talk to a person"):
        return [HANDOFF], "", 0
    if word in ("bye", "goodbye"):
        return [GOODBYE], "", 0
    if misses + 1 >= ATTEMPTS:
        return [GOODBYE], "", 0
    return [REPROMPT], "menu", misses + 1


@workflow.defn(name=WORKFLOW)
class BaselineConversation:
    @workflow.init
    def __init__(self, start: Start) -> None:
        self.inbox: deque[Inbound] = deque()
        self.seen: deque[str] = deque(start.seen, maxlen=SEEN_LIMIT)

    @workflow.signal
    def inbound(self, message: Inbound) -> None:
        if message.id in self.seen:
            return
        self.seen.append(message.id)
        self.inbox.append(message)

    @workflow.run
    async def run(self, start: Start) -> str:
        state, misses = start.state, start.misses
        while True:
            try:
                await workflow.wait_condition(lambda: bool(self.inbox), timeout=IDLE_TIMEOUT)
            except TimeoutError:
                await self._send(start.customer, GOODBYE)
                return "timed out"
            replies, state, misses = answer(state, misses, self.inbox.popleft().text)
            for body in replies:
                await self._send(start.customer, body)
            if not state:
                return "completed"
            info = workflow.info()
            long = start.history_limit and info.get_current_history_length() >= start.history_limit
            if not self.inbox and (long or info.is_continue_as_new_suggested()):
                workflow.continue_as_new(Start(start.customer, start.history_limit, state, misses, list(self.seen)))

    async def _send(self, customer: str, body: str) -> None:
        await workflow.execute_activity(
            SEND,
            Outbound(customer, body),
            start_to_close_timeout=SEND_TIMEOUT,
            schedule_to_close_timeout=SEND_GIVE_UP_AFTER,
            retry_policy=SEND_RETRY,
        )
