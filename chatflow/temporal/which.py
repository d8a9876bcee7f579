"""Asking a customer which of their conversations a reply is for, and holding the reply meanwhile.

When two or more of a customer's conversations on a number wait for an answer and each one's
question takes the reply (`chatflow.edge.beside`), the reply is held by one of these workflows
(one per main conversation at a time, id `WHICH_PREFIX` + the main id), which asks the customer a
numbered question through the same send path as every message (opt-out, rate limit, the WhatsApp
window). The customer's next message is offered to it first (`answer`, an update): "1", "2"...
hands the held reply to that conversation and the answer is spent; anything else hands the held
reply to the conversation that asked last and goes on as a new reply. Without an answer within
`timeout` the held reply goes to the conversation that asked last. Either way it is handed on
exactly once (an external signal, a command of this workflow's history); a conversation that
ended meanwhile is passed over for the next one that runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from chatflow.domain.addresses import ConversationRef
    from chatflow.domain.messages import InboundMessage, OutboundMessage, SendResult
    from chatflow.temporal import constants

WHICH_WORKFLOW = "chatflow-which-conversation"
WHICH_PREFIX = "chatflow-which:"
CHOSEN = "chosen"  # the message answered the question: it is spent
NOT_AN_ANSWER = "not an answer"  # the message is a new reply: route it as any other


@dataclass
class WhichInput:
    conversation: ConversationRef  # the customer's main conversation: its number asks
    held: InboundMessage  # the reply that fits several conversations
    choices: list[str]  # the conversations' ids, numbered from 1 in the question
    question: str  # the question as the customer gets it (in their language, numbered)
    default: str  # where the held reply goes without an answer: the conversation that asked last
    timeout_seconds: float = 3600.0
    status_to: str = ""  # the conversation whose id the question's delivery statuses carry


@dataclass
class WhichResult:
    to: str  # the conversation the held reply went to ("" when none still ran)
    answered: bool  # the customer picked it
    passed_over: list[str] = field(default_factory=list)  # chosen, but ended meanwhile


def which_id(main: str) -> str:
    return f"{WHICH_PREFIX}{main}"


def picked(text: str, count: int) -> int | None:
    """The number (1-based) a reply picks among `count` conversations; None when it picks none."""
    word = text.strip().rstrip(".)")
    return int(word) if word.isdigit() and 1 <= int(word) <= count else None


@workflow.defn(name=WHICH_WORKFLOW)
class WhichConversation:
    @workflow.init
    def __init__(self, params: WhichInput) -> None:
        self.params = params
        self.target = ""
        self.answered = False

    @workflow.run
    async def run(self, params: WhichInput) -> WhichResult:
        ref = params.conversation
        message = OutboundMessage(
            channel=ref.channel,
            provider=ref.provider,
            number=ref.number,
            customer=ref.customer,
            text=params.question,
            conversation_id=params.status_to or params.default,
            last_inbound_at=params.held.received_at,
        )
        try:
            await workflow.execute_activity(
                constants.SEND_MESSAGE,
                message,
                result_type=SendResult,
                start_to_close_timeout=constants.SEND_TIMEOUT,
                schedule_to_close_timeout=constants.SEND_GIVE_UP_AFTER,
                retry_policy=constants.SEND_RETRY,
            )
        except ActivityError as error:  # refused (opted out meanwhile...): no question, the default
            workflow.logger.info("the question was not sent (%s): the reply goes where it would", error)
            self.target = self.target or params.default
        try:
            await workflow.wait_condition(lambda: bool(self.target), timeout=timedelta(seconds=params.timeout_seconds))
        except TimeoutError:
            self.target = params.default
        order = [self.target, *(id for id in [params.default, *params.choices] if id != self.target)]
        passed: list[str] = []
        for conversation in dict.fromkeys(order):
            try:
                await workflow.get_external_workflow_handle(conversation).signal("inbound", params.held)
            except FailureError:  # it ended meanwhile: the next one that runs gets it
                passed.append(conversation)
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            return WhichResult(conversation, self.answered, passed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return WhichResult("", self.answered, passed)

    @workflow.update
    def answer(self, message: InboundMessage) -> str:
        """The customer's next message: CHOSEN when it picks one of the conversations (it is spent),
        NOT_AN_ANSWER otherwise (the held reply goes to the default, the message goes on)."""
        if message.id == self.params.held.id:
            return CHOSEN  # the held reply itself, handed on again after a crash: spent already
        if self.target:
            return NOT_AN_ANSWER
        number = picked(message.text, len(self.params.choices))
        if number is None:
            self.target = self.params.default
            return NOT_AN_ANSWER
        self.target, self.answered = self.params.choices[number - 1], True
        return CHOSEN
