"""ConversationWorkflow: one long-running Temporal workflow per conversation.

Messages and events arrive as signals (usually through signal-with-start), are deduplicated by
the provider's message id and queued in arrival order; the flow engine consumes them at its
waits. Everything the flow does to the world runs as an activity. The run continues as new when
Temporal suggests it, carrying the flow's state, its data, the queue, the seen ids and the recent
transcript, so a conversation can last months and thousands of messages.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

# Passed through the sandbox: plain dataclasses and deterministic code, imported once per worker.
# Activities are called by name, so nothing they import (HTTP clients, Redis, providers) loads here.
with workflow.unsafe.imports_passed_through():
    from chatflow.domain.addresses import is_hashed_id
    from chatflow.domain.durations import in_words
    from chatflow.domain.errors import HttpCallFailed, MediaUnavailable, PermanentSendError
    from chatflow.domain.messages import (
        REPLY_WINDOW,
        STATUS_RANK,
        BusinessEvent,
        DeliveryUpdate,
        HttpRequest,
        HttpResponse,
        InboundMessage,
        Location,
        Media,
        MediaRequest,
        Notification,
        Option,
        OutboundMessage,
        Reaction,
        SendResult,
        StoredMedia,
        TemplateMessage,
        numbered_menu,
        status_moves_forward,
    )
    from chatflow.flows.engine import FlowRunner, RefusedLater
    from chatflow.flows.flow import Flow
    from chatflow.flows.quiet_hours import SendWindow
    from chatflow.flows.registry import registry
    from chatflow.flows.split import DATA_PREFIX as SPLIT_DATA
    from chatflow.flows.split import Split
    from chatflow.flows.steps import Ask, End
    from chatflow.flows.window_check import WINDOW as SERVICE_WINDOW
    from chatflow.temporal import constants, lifecycle, search_attributes
    from chatflow.temporal.records import (
        TRACE_LIMIT,
        TRANSCRIPT_LIMIT,
        ConversationInput,
        ConversationResult,
        ConversationSnapshot,
        InboxItem,
        OperatorReply,
        QuietHoursRequest,
        ReplyFit,
        SeenIds,
        TraceLine,
        Turn,
    )

EARLY_STATUS_LIMIT = 100
SENT_KEPT = 20  # the bot's latest WhatsApp sends kept for a refusal reported later


@dataclass
class Sent:
    """A WhatsApp message the bot sent, as a refusal reported later needs it: to send it again
    as its template, or by SMS, or to take the failure branch of the step that sent it."""

    step: str
    text: str
    options: list[Option]
    media: list[Media]
    template: TemplateMessage | None
    retried: bool = False  # sent again as its template already: a second refusal goes on
    reaction: bool = False  # an emoji on the customer's message: nothing to say again


@workflow.defn(name=constants.CONVERSATION_WORKFLOW)
class ConversationWorkflow:
    # Raised through the flow's steps by `checkpoint` and by Temporal itself: never a flow bug.
    control_flow: tuple[type[BaseException], ...] = (workflow.ContinueAsNewError, workflow.NondeterminismError)

    @workflow.init
    def __init__(self, params: ConversationInput) -> None:
        self.params = params
        self.inbox: deque[InboxItem] = deque(params.inbox)
        self.seen = SeenIds(params.seen)
        self.transcript: list[Turn] = list(params.transcript)
        self.trace: list[TraceLine] = list(params.trace)
        self.state = params.resume
        self.version = params.version or 0
        self.revision = 0  # of the workflow code the run started on (constants.REVISION), once pinned
        self.idle = False
        self.signals = params.signals
        self.cancel_reason = ""
        self.last_inbound_at = next((t.at for t in reversed(self.transcript) if t.direction == "in"), "")
        # The customer's last message that is not a reaction (after a continue-as-new, the last in
        # the transcript: a reaction is rarely the last thing before one).
        self.last_message_id = next((t.message_id for t in reversed(self.transcript) if t.direction == "in"), "")
        # True after a send made as a local activity in the current workflow task (see _close_task).
        self.sent_locally = False
        self.held_for = timedelta(0)  # time spent taken over, for sleeps that span a takeover
        self.quiet_every_send = False  # End texts and code steps' sends wait for quiet hours too
        self.quiet_hours_window: SendWindow | None = None
        self.runner: FlowRunner | None = None
        # Delivery reports can overtake the send activity's result; keep them until it lands.
        self.early_statuses: dict[str, DeliveryUpdate] = {}
        # WhatsApp refusals reported after the provider took the message, for the flow's next wait;
        # and the bot's latest WhatsApp sends they may be about (not carried by continue-as-new).
        self.refusals: list[DeliveryUpdate] = list(params.refusals)
        self.sent: dict[str, Sent] = {}
        # Lifecycle events of this run so far, replays included: each one's place, for its id.
        self.lifecycle_events = 0
        self.reported_keys: tuple[str, ...] = ()  # the journey data sinks get (the flow's choice)
        # The customer's messages while a person has the conversation, since the person's last reply.
        self.unanswered: list[InboundMessage] = []
        self.flow_class: type[Flow] | None = None

    @workflow.run
    async def run(self, params: ConversationInput) -> ConversationResult:
        version, self.revision = self._pin(params.flow, params.version)
        flow_class = registry.on(workflow.info().task_queue).get(params.flow, version)
        self.flow_class = flow_class
        self.version = flow_class.version
        self.quiet_hours_window = flow_class.quiet_hours
        # The experiments' branches go with every event after them, so sinks count outcomes per branch.
        splits = tuple(step.data_key for step in flow_class.steps.values() if isinstance(step, Split))
        self.reported_keys = (*flow_class.keys, *flow_class.sink_keys, *splits)
        # Asked once as the run starts: asked at the send itself, right after a send's local
        # activity in the same workflow task, its replay failed (a code step's second say).
        self.quiet_every_send = flow_class.quiet_hours is not None and self._patched(constants.QUIET_HOURS_EVERY_SEND)
        if params.resume is None:
            by = "a message" if params.started_by == "message" else "a journey"
            self.log("started: flow %s v%d, by %s", params.flow, self.version, by)
        if self.state is None:
            self.state = FlowRunner.initial_state(flow_class, params.data, workflow.now())
            await self._keep_order()  # the trigger is the customer's first message, not the first to arrive
            trigger = self.inbox[0].message if params.started_by == "message" and self.inbox else None
            if trigger is not None:
                self.inbox.popleft()
                self.state.reply = trigger.text or trigger.payload
        ref = params.conversation
        runner = FlowRunner(
            flow_class(), self.state, self, customer=ref.customer, number=ref.number, channel=ref.channel
        )
        self.runner = runner
        state = await runner.run()
        await self._take_refusals(ending=True)  # reported as it ended: its SMS still goes
        self._index(outcome=state.outcome)
        self.log(
            "ended: %s%s", state.outcome, f" ({state.reason})" if state.reason and state.outcome != "completed" else ""
        )
        await self._close_task()
        while self._refusals_due():  # reported as the run was closing: the server let it finish first
            await self._take_refusals(ending=True)
            await self._close_task()
        left = [item.message for item in self.inbox if item.message is not None]
        # A reply that arrives as the flow ends starts the number's own flow, as its trigger.
        # Each such run consumes at least that message, so hand-overs cannot loop.
        if left and params.home_flow:
            workflow.continue_as_new(
                ConversationInput(
                    flow=params.home_flow,
                    conversation=ref,
                    home_flow=params.home_flow,
                    inbox=[InboxItem(message=m) for m in left],
                    seen=self.seen.to_list(),
                    transcript=self.transcript,
                    started_by="message",
                    signals=self.signals,
                    trace=self.trace,
                    history_limit=params.history_limit,
                    indexed=params.indexed,
                ),
            )
        return ConversationResult(
            flow=params.flow,
            outcome=state.outcome,
            reason=state.reason,
            data=state.data,
            unhandled=left,
        )

    # -- signals and queries -----------------------------------------------------------------

    @workflow.signal
    def inbound(self, message: InboundMessage) -> None:
        self.signals += 1
        if not self.seen.add(message.id):
            return  # a provider retry or a duplicate webhook: already queued once
        if not self._taken_over():
            self.inbox.append(InboxItem(message=message))
        else:  # for the person who has the conversation: the transcript shows it to them
            self.unanswered.append(message)
        self.last_inbound_at = self._now()
        said = message.text or message.payload
        if message.reaction is not None:
            said = said or message.reaction.describe()
            self.log("the customer %s", message.reaction.describe())
        else:
            self.last_message_id = message.id  # what `convo.react` reacts to: never a reaction
        self._record(Turn("in", said, self.last_inbound_at, message.id))

    @workflow.signal
    def event(self, event: BusinessEvent) -> None:
        self.signals += 1
        if event.id and not self.seen.add(f"event:{event.id}"):
            return
        self.inbox.append(InboxItem(event=event))

    @workflow.signal
    def delivery(self, update: DeliveryUpdate) -> None:
        self._lifecycle(
            lifecycle.MESSAGE_STATUS, lifecycle.status_detail(update.message_id, update.status, update.error_code)
        )
        for turn in reversed(self.transcript):
            if turn.message_id == update.message_id:
                self._apply_status(turn, update)
                return
        if len(self.early_statuses) < EARLY_STATUS_LIMIT:
            earlier = self.early_statuses.get(update.message_id)
            if earlier is None or status_moves_forward(earlier.status, update.status):
                self.early_statuses[update.message_id] = update

    @workflow.signal
    def end(self, reason: str) -> None:
        self.cancel_reason = reason or "ended by the business"

    # -- a person takes over ------------------------------------------------------------------

    @workflow.update
    def take_over(self, operator: str) -> None:
        assert self.state is not None  # the validator refused otherwise
        if self.state.operator:
            return  # already theirs (the validator refused anyone else)
        self.state.operator = operator
        self.state.taken_over_at = self._now()
        self.log("taken over by %s", operator)
        self._index()

    @take_over.validator
    def _may_take_over(self, operator: str) -> None:
        self._refuse_unless_running()
        if not operator.strip():
            raise ApplicationError("say who takes the conversation over", non_retryable=True)
        assert self.state is not None
        if self.state.operator and self.state.operator != operator:
            raise ApplicationError(f"{self.state.operator} has this conversation already", non_retryable=True)

    @workflow.update
    async def reply(self, reply: OperatorReply) -> str:
        """The operator's message to the customer, through the same send path as the bot's
        (opt-out, rate limit, the WhatsApp window); the provider's message id, or why it was refused."""
        await self._note_quiet_hours_override(reply.operator)
        try:
            sent = await self._deliver(self._outbound(reply.text, [], [], None), by=reply.operator)
            self.unanswered.clear()
            return sent
        except PermanentSendError as refused:
            raise ApplicationError(f"not sent: {refused}", non_retryable=True) from None

    @reply.validator
    def _may_reply(self, reply: OperatorReply) -> None:
        self._refuse_unless_running()
        assert self.state is not None
        if self.state.operator != reply.operator:
            raise ApplicationError(
                "take the conversation over first" if not self.state.operator else f"{self.state.operator} has it",
                non_retryable=True,
            )
        if not reply.text.strip():
            raise ApplicationError("the reply is empty", non_retryable=True)

    @workflow.update
    def hand_back(self, operator: str) -> None:
        state = self.state
        assert state is not None
        if not state.operator:
            return  # the bot has it already
        # The flow's timers stood still meanwhile: they go on with the time they had left.
        held = workflow.now() - datetime.fromisoformat(state.taken_over_at)
        state.expires_at = (datetime.fromisoformat(state.expires_at) + held).isoformat()
        if state.wait is not None and state.wait.deadline:
            state.wait.deadline = (datetime.fromisoformat(state.wait.deadline) + held).isoformat()
        self.held_for += held
        state.operator, state.taken_over_at = "", ""
        state.handbacks += 1
        self.log("handed back by %s after %s", operator, held)
        if self.unanswered and self._patched(constants.HAND_ON_UNANSWERED):
            self._hand_on_unanswered()
        self._index()

    def _hand_on_unanswered(self) -> None:
        """The customer wrote since the person's last reply: a flow waiting for a reply gets
        those messages, in order; otherwise the trace says they went unanswered."""
        assert self.state is not None
        step = self.flow_class.steps.get(self.state.step) if self.flow_class is not None else None
        count, texts = len(self.unanswered), ", ".join(repr(m.text or m.payload) for m in self.unanswered)
        if isinstance(step, Ask) and (step.branches or step.choices.choices) and self.state.wait is not None:
            self.inbox.extend(InboxItem(message=message) for message in self.unanswered)
            self.log("%d customer message(s) since the last reply, given to step %s: %s", count, step.name, texts)
        else:
            self.log(
                "%d customer message(s) since the last reply left unanswered (step %s waits for none): %s",
                count,
                self.state.step,
                texts,
            )
        self.unanswered = []

    @hand_back.validator
    def _may_hand_back(self, operator: str) -> None:
        self._refuse_unless_running()
        assert self.state is not None
        if self.state.operator and self.state.operator != operator:
            raise ApplicationError(f"{self.state.operator} has this conversation", non_retryable=True)

    def _refuse_unless_running(self) -> None:
        if self.state is None or self.state.outcome or self.cancel_reason:
            raise ApplicationError("the conversation is not running", non_retryable=True)

    def _taken_over(self) -> bool:
        return self.state is not None and bool(self.state.operator)

    async def _held(self) -> None:
        """While a person has the conversation, the flow waits: it sends nothing, its timers stop."""
        self._index()
        self.idle = True
        try:
            await workflow.wait_condition(lambda: not self._taken_over() or bool(self.cancel_reason))
        finally:
            self.idle = False

    @workflow.query
    def snapshot(self) -> ConversationSnapshot:
        state = self.state
        return ConversationSnapshot(
            id=workflow.info().workflow_id,
            flow=self.params.flow,
            version=self.version,
            step=state.step if state else "",
            outcome=state.outcome if state else "",
            reason=state.reason if state else "",
            data=state.data if state else {},
            transcript=self.transcript,
            idle=self.idle,
            signals=self.signals,
            pending=len(self.inbox),
            operator=state.operator if state else "",
            unanswered=[m.text or m.payload for m in self.unanswered],
            trace=self.trace,
        )

    @workflow.query
    def acts_on_refusals(self) -> bool:
        """Whether this run acts on a refusal reported later (see `_refusals_due`): the status
        router asks before it takes the message off the fallback's sweeper, which otherwise says
        it by SMS, so a run of revision 0 (started before a deploy) never loses its fallback."""
        return self.revision >= 1

    @workflow.query
    def reply_fit(self, message: InboundMessage) -> ReplyFit:
        """Whether this conversation waits for an answer and would take `message` as one: asked
        only of a customer's several conversations on a number, to route their reply."""
        state, runner, flow = self.state, self.runner, self.flow_class
        if state is None or runner is None or flow is None:
            return ReplyFit(False, False)
        step = flow.steps.get(state.step)
        waiting = (
            isinstance(step, Ask)
            and bool(step.branches or step.choices.choices)
            and state.wait is not None
            and not state.outcome
            and not self.cancel_reason
            and not state.operator
            and not self.inbox  # a message of the customer's not yet taken: it moves on with that first
        )
        asked_at = next((t.at for t in reversed(self.transcript) if t.direction == "out" and not t.to), "")
        title = flow.title or flow.name.replace("_", " ")
        if runner.catalogues:
            title = runner.catalogues.gettext(title, runner.locale)
        fits = waiting and runner.fits(message)
        return ReplyFit(waiting, fits, asked_at, flow.reply_priority, title, runner.locale)

    # -- the engine's Port ---------------------------------------------------------------------

    def now(self) -> datetime:
        return workflow.now()

    def log(self, message: str, *args: object, bug: BaseException | None = None) -> None:
        # The decision trace is state (rebuilt on replay alike); the log skips replays.
        # Durations in words ("7 s", "2 min 5 s"), not `0:00:07.430446`, in the trace and the log.
        args = tuple(in_words(arg) if isinstance(arg, timedelta) else arg for arg in args)
        self.trace.append(TraceLine(self._now(), message % args if args else message))
        del self.trace[:-TRACE_LIMIT]
        if (found := lifecycle.from_trace(message, args)) is not None:
            self._lifecycle(*found)
        prefix = f"conversation {workflow.info().workflow_id}: "
        if bug is None:
            workflow.logger.info(prefix + message, *args)
        else:
            workflow.logger.error(prefix + message, *args, exc_info=bug)

    def cancelled(self) -> str:
        return self.cancel_reason

    async def checkpoint(self) -> None:
        if not self._should_continue_as_new():
            return
        await self._close_task()
        params = self.params
        workflow.continue_as_new(
            ConversationInput(
                flow=params.flow,
                conversation=params.conversation,
                version=self.version,
                home_flow=params.home_flow,
                resume=self.state,
                inbox=list(self.inbox),
                seen=self.seen.to_list(),
                transcript=self.transcript,
                signals=self.signals,
                trace=self.trace,
                history_limit=params.history_limit,
                indexed=params.indexed,
                refusals=self.refusals,
            )
        )

    async def send(
        self,
        text: str,
        options: list[Option],
        media: list[Media],
        template: TemplateMessage | None,
        location: Location | None = None,
    ) -> None:
        if self._taken_over():
            await self._held()  # the bot never talks over the person who has the conversation
        message = self._outbound(text, options, media, template)
        message.location = location
        message.quiet_hours = self._quiet_hours()
        await self._deliver(message)

    async def _note_quiet_hours_override(self, operator: str) -> None:
        """An operator's reply is not held by the flow's quiet hours: the person decides. Said in
        the trace when it goes inside them, so the decision can be found."""
        window = self.quiet_hours_window
        if window is None or not self.quiet_every_send or self.state is None:
            return
        zone = self.state.data.get("timezone")
        opens = await self.quiet_until(window, zone if isinstance(zone, str) and zone else None)
        if opens is not None and opens > workflow.now():
            self.log("%s replied inside the flow's quiet hours (they end at %s): not held", operator, opens.isoformat())

    def _quiet_hours(self) -> str:
        """The flow's quiet hours for a message that waited for them, so that the SMS fallback
        of it waits for them too; "" for an urgent message or a flow without them."""
        window = self.quiet_hours_window
        if window is None or self.runner is None or self.runner.sending_urgent or self.state is None:
            return ""
        zone = self.state.data.get("timezone")
        at = f"@{zone}" if isinstance(zone, str) and zone else ""
        return f"{window.start.isoformat('minutes')}-{window.end.isoformat('minutes')}{at}"

    async def send_by_sms(self, text: str, media: list[Media], number: str, provider: str) -> None:
        """Say by SMS, from `number`, what WhatsApp refused: a line of the transcript of its own."""
        ref = self.params.conversation
        await self._deliver(
            OutboundMessage(
                channel="sms",
                provider=provider,
                number=number,
                customer=ref.customer,
                text=text,
                media=media,
                conversation_id=workflow.info().workflow_id,
                last_inbound_at=self.last_inbound_at,
            )
        )

    async def react(self, emoji: str) -> None:
        """A reaction to the customer's last message, through the same send path as a message."""
        if self._taken_over():
            await self._held()
        last = self.last_message_id
        if not last:
            self.log("no message of the customer's to react %s to: nothing sent", emoji)
            return
        message = self._outbound(emoji, [], [], None)
        message.reaction = Reaction(last, emoji)
        try:
            await self._deliver(message)
        except PermanentSendError:
            pass  # a reaction is no message the flow depends on: the trace says it was refused

    def _outbound(
        self, text: str, options: list[Option], media: list[Media], template: TemplateMessage | None
    ) -> OutboundMessage:
        ref = self.params.conversation
        return OutboundMessage(
            channel=ref.channel,
            provider=ref.provider,
            number=ref.number,
            customer=ref.customer,
            text=text,
            options=options,
            media=media,
            template=template.label if template is not None else "",
            conversation_id=workflow.info().workflow_id,
            last_inbound_at=self.last_inbound_at,
            template_message=template,
        )

    async def _deliver(self, message: OutboundMessage, *, by: str = "") -> str:
        """Send `message`, keeping its line of the transcript current; the provider's message id."""
        turn = Turn(
            "out", message.text, self._now(), status="sending", options=[o.title for o in message.options], by=by
        )
        self._record(turn)
        try:
            result = await self._send(message)
        except (ActivityError, ApplicationError) as error:
            cause = _cause(error)
            code, fallback = "", None
            if isinstance(cause, ApplicationError) and cause.details:
                code = str(cause.details[0])
                if len(cause.details) >= 3:  # an SMS number may say it (activities' `_fallback`)
                    fallback = (str(cause.details[1]), str(cause.details[2]))
            turn.status, turn.error_code = "failed", code
            self.log("send refused%s: %s", f" ({code})" if code else "", _reason(error))
            raise PermanentSendError(_reason(error), code, fallback) from error
        self._sent(turn, result, kept=None if by else message)
        return result.message_id

    async def _send(self, message: OutboundMessage) -> SendResult:
        """One send. First as a local activity: its result is a marker in the workflow task that
        asked for it, instead of an activity task of its own and a workflow task to read the
        result (6 history events and a server round trip fewer per message). A send that fails
        retryably (429, 5xx, rate limited, timed out) is then retried as a regular activity:
        durable backoff honouring the provider's Retry-After, and visible as a pending activity.
        Histories from before the change replay with the activity they made.

        Both carry one activity id, the send's key in the send ledger: the activity finds what
        the local try left there (sent, or maybe sent) instead of sending blindly again."""
        send_id: str | None = None
        if self._patched(constants.SEND_AS_LOCAL_ACTIVITY):
            if self._patched(constants.SEND_ID):
                send_id = f"send-{workflow.uuid4()}"
            try:
                result: SendResult = await workflow.execute_local_activity(
                    constants.SEND_MESSAGE,
                    message,
                    result_type=SendResult,
                    start_to_close_timeout=constants.SEND_TIMEOUT,
                    retry_policy=constants.SEND_FIRST_TRY,
                    activity_id=send_id,
                )
                self.sent_locally = True
                return result
            # A local activity's failure may arrive as its ApplicationError itself.
            except (ActivityError, ApplicationError) as error:
                cause = _cause(error)
                if isinstance(cause, ApplicationError) and (
                    cause.non_retryable or cause.type == constants.PERMANENT_SEND_ERROR
                ):
                    raise
                if isinstance(cause, ApplicationError) and cause.next_retry_delay:
                    await self._idle_sleep(cause.next_retry_delay)
        result = await workflow.execute_activity(
            constants.SEND_MESSAGE,
            message,
            result_type=SendResult,
            start_to_close_timeout=constants.SEND_TIMEOUT,
            schedule_to_close_timeout=constants.SEND_GIVE_UP_AFTER,
            retry_policy=constants.SEND_RETRY,
            activity_id=send_id,
        )
        return result

    async def _close_task(self) -> None:
        """Before the run ends (completes or continues as new): let signal handlers finish.

        A task that ends the run is refused by the server when a signal arrives meanwhile, and a
        refused task loses its local activities' results: they run again. Runs of revision 0
        committed their local sends first, in a task of their own (a timer: one more action per
        run); from revision 1 a send run again finds its first run in the send ledger (same
        activity id, `workflow.uuid4` replays alike) and returns its result without sending."""
        if self.sent_locally and self.revision < 1:
            await workflow.sleep(constants.COMMIT_LOCAL_SENDS)
            self.sent_locally = False
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _idle_sleep(self, duration: timedelta) -> None:
        """Wait for the provider's Retry-After; nothing to do but wait (tests see it as idle)."""
        self.idle = True
        try:
            await workflow.sleep(duration)
        finally:
            self.idle = False

    async def fetch_media(self, request: MediaRequest) -> StoredMedia:
        """The customer's media into the worker's media folder: the history holds its path, never
        its bytes, nor the provider's token (the channel has it) or the download url."""
        request = replace(request, provider=self.params.conversation.provider)
        try:
            stored: StoredMedia = await workflow.execute_activity(
                constants.FETCH_MEDIA,
                request,
                result_type=StoredMedia,
                start_to_close_timeout=constants.FETCH_MEDIA_TIMEOUT,
                retry_policy=constants.FETCH_MEDIA_RETRY,
            )
        except ActivityError as error:
            self.log("media %s not fetched: %s", request.media_id, _reason(error))
            raise MediaUnavailable(_reason(error)) from error
        self.log("media %s fetched: %s, %d bytes, %s", request.media_id, stored.content_type, stored.size, stored.path)
        return stored

    async def http(self, request: HttpRequest, retries: int) -> HttpResponse:
        started = workflow.now()
        try:
            response: HttpResponse = await workflow.execute_activity(
                constants.HTTP_REQUEST,
                request,
                result_type=HttpResponse,
                start_to_close_timeout=timedelta(seconds=request.timeout_seconds + 5),
                retry_policy=constants.http_retry(retries),
            )
        except ActivityError as error:
            cause = error.cause
            status = 0
            if isinstance(cause, ApplicationError) and cause.details:
                status = int(cause.details[0])
            shown = _without_query(request.url)
            reason = _reason(error).replace(request.url, shown)
            self.log("HTTP %s %s failed after %s: %s", request.method, shown, workflow.now() - started, reason)
            raise HttpCallFailed(reason, status) from error
        self.log(
            "HTTP %s %s answered %d in %s",
            request.method,
            _without_query(request.url),
            response.status,
            workflow.now() - started,
        )
        return response

    async def next_input(self, deadline: datetime | None) -> InboundMessage | BusinessEvent | None:
        if self._taken_over():
            await self._held()
            return None  # the flow looks at its (moved) deadline again
        if self._refusals_due():
            await self._take_refusals()
            return None  # the flow looks at its deadline again
        if not self.inbox:
            timeout = (deadline - workflow.now()).total_seconds() if deadline else None
            if timeout is not None and timeout <= 0:
                return None
            self._index()
            self.idle = True
            try:
                await workflow.wait_condition(
                    lambda: (
                        bool(self.inbox or self.cancel_reason)
                        or self._refusals_due()
                        or self._should_continue_as_new()
                        or self._taken_over()
                    ),
                    timeout=timeout,
                )
            except TimeoutError:
                return None
            finally:
                self.idle = False
            if self._taken_over():
                await self._held()
                return None
            if self._refusals_due():
                await self._take_refusals()
                return None
        if not self.inbox or self.cancelled():
            return None
        await self._keep_order()
        item = self.inbox.popleft()
        return item.message or item.event

    async def _keep_order(self) -> None:
        """A message handed straight to Temporal while Redis was away may have overtaken this
        customer's earlier ones, still in the buffer: wait (at most ORDER_HOLD) until the buffer
        has handed those on, then take every waiting message in the order it was received."""
        held = {item.message.id for item in self.inbox if item.message is not None and item.message.unbuffered}
        if not held:
            return
        self.log(
            "holding %d message(s) received while Redis was away until the buffer has handed on older ones", len(held)
        )
        waited = False
        try:
            await workflow.execute_activity(
                constants.AWAIT_BUFFER,
                workflow.info().workflow_id,
                schedule_to_close_timeout=constants.ORDER_HOLD,
                heartbeat_timeout=constants.ORDER_HOLD_HEARTBEAT,
                retry_policy=constants.ORDER_HOLD_RETRY,
            )
            waited = True
            self.log("the buffer has handed on the older messages: going on in order")
        except ActivityError as error:
            self.log(
                "going on after %s without the buffer (%s): messages it still holds will come after these",
                constants.ORDER_HOLD, _reason(error),
            )  # fmt: skip
        arrived = sorted((item.message for item in self.inbox if item.message is not None), key=lambda m: m.received_at)
        # One handed straight to Temporal while this hold lasted may have overtaken a message the
        # buffer took after the hold began (Redis failing over, back, failing again): it keeps its
        # mark, so the conversation holds again before taking it. Not once the buffer could not
        # be waited for: while Redis is away every hold would last ORDER_HOLD.
        again = {message.id for message in arrived if message.unbuffered and message.id not in held}
        if not (waited and again and workflow.patched(constants.HOLD_AGAIN)):
            again = set()
        in_order = iter(message if message.id in again else replace(message, unbuffered=False) for message in arrived)
        # Events keep their places; the messages take theirs in the order they were received.
        self.inbox = deque(item if item.message is None else InboxItem(message=next(in_order)) for item in self.inbox)

    async def sleep_until(self, when: datetime) -> None:
        remaining = (when - workflow.now()).total_seconds()
        if remaining <= 0:
            return
        self._index()
        self.idle = True
        try:
            # Wake early to continue as new if signals pile up during a long sleep.
            await workflow.wait_condition(
                lambda: (
                    bool(self.cancel_reason)
                    or self._refusals_due()
                    or self._should_continue_as_new()
                    or self._taken_over()
                ),
                timeout=remaining,
            )
        except TimeoutError:
            return
        finally:
            self.idle = False
        if self.cancelled():
            return
        held_before = self.held_for
        if self._taken_over():
            await self._held()
        if self._refusals_due():
            await self._take_refusals()
        await self.checkpoint()
        # A sleep that spanned a takeover ends that much later: the flow's time stood still.
        await self.sleep_until(when + (self.held_for - held_before))

    def quiet_hours_hold_every_send(self) -> bool:
        # A conversation that ended or said something from code during quiet hours before this
        # held those sends replays without the wait it then did not have.
        return self.quiet_every_send

    async def notify(self, notification: Notification) -> None:
        """A message to someone on another channel: its own line of the transcript (to whom, on
        which channel), its own send (the worker finds our address on that channel), the
        conversation's id on it so that its delivery statuses and replies come back here."""
        if self._taken_over():
            await self._held()
        turn = Turn(
            "out", notification.text, self._now(), status="sending", to=notification.to, channel=notification.channel
        )
        self._record(turn)
        message = OutboundMessage(
            channel=notification.channel,
            provider="",  # the worker's: the channel the config binds an address to
            number="",
            customer=notification.to,
            text=notification.text,
            subject=notification.subject,
            conversation_id=workflow.info().workflow_id,
        )
        try:
            result: SendResult = await workflow.execute_activity(
                constants.NOTIFY,
                message,
                result_type=SendResult,
                start_to_close_timeout=constants.SEND_TIMEOUT,
                schedule_to_close_timeout=constants.SEND_GIVE_UP_AFTER,
                retry_policy=constants.SEND_RETRY,
                activity_id=f"notify-{workflow.uuid4()}",
            )
        except ActivityError as error:
            cause = _cause(error)
            code = str(cause.details[0]) if isinstance(cause, ApplicationError) and cause.details else ""
            turn.status, turn.error_code = "failed", code
            self.log(
                "notify %s by %s refused%s: %s",
                notification.to,
                notification.channel,
                f" ({code})" if code else "",
                _reason(error),
            )
            raise PermanentSendError(_reason(error), code) from error
        self._sent(turn, result)
        self.log("notified %s by %s", notification.to, notification.channel)

    async def quiet_until_for(self, window: SendWindow, timezone: str | None, recipient: str) -> datetime | None:
        # Someone other than the customer who just wrote: quiet hours on their own clock.
        return await self._quiet_until(window, timezone, recipient)

    async def quiet_until(self, window: SendWindow, timezone: str | None) -> datetime | None:
        if self.last_inbound_at:
            since = workflow.now() - datetime.fromisoformat(self.last_inbound_at)
            if since <= REPLY_WINDOW:
                return None  # an answer to someone who just wrote is never held back
        return await self._quiet_until(window, timezone, self.params.conversation.customer)

    async def _quiet_until(self, window: SendWindow, timezone: str | None, recipient: str) -> datetime:
        answer: str = await workflow.execute_local_activity(
            constants.NEXT_ALLOWED_SEND,
            QuietHoursRequest(
                customer=recipient,
                start=window.start.isoformat(),
                end=window.end.isoformat(),
                now=workflow.now().isoformat(),
                timezone=timezone or "",
            ),
            result_type=str,
            start_to_close_timeout=constants.QUIET_HOURS_TIMEOUT,
        )
        return datetime.fromisoformat(answer)

    # -- helpers -------------------------------------------------------------------------------

    def _pin(self, flow: str, given: int | None) -> tuple[int, int]:
        """The flow version the run runs, and the workflow code's revision it started on: both
        recorded by one patch marker (`constants.pin_marker`), so a replay picks the same.

        A fresh run writes the marker of the newest deployed version (a continued run, of the
        version it was given); on a replay after a newer version was deployed, that newer
        marker is absent from the history, so the search falls through to the one written.
        Histories of revision 0 have a marker without a revision (a fresh run) or none (a run
        continued as new); none at all, before version pinning: the oldest version.
        """
        versions = [given] if given else registry.on(workflow.info().task_queue).versions(flow)
        for revision in range(constants.REVISION, 0, -1):
            for version in versions:
                if workflow.patched(constants.pin_marker(flow, version, revision)):
                    return version, revision
        if given:
            return given, 0
        for version in versions:
            if workflow.patched(constants.pin_marker(flow, version, 0)):
                return version, 0
        return (versions[-1] if versions else 0), 0

    def _patched(self, change: str) -> bool:
        """Whether the run takes `change`: always from revision 1 (no marker), else as recorded."""
        return self.revision >= 1 or workflow.patched(change)

    def _index(self, *, outcome: str = "") -> None:
        """Keep the conversation's search attributes current, as it waits and when it ends: one
        upsert command when something changed, none otherwise."""
        if self.state is None or not self.params.indexed:
            return  # started before conversations were indexed: its history has no upserts to replay
        indexed = workflow.info().typed_search_attributes
        branches = {key: value for key, value in self.state.data.items() if key.startswith(SPLIT_DATA)}
        wanted = search_attributes.progress(
            self.params.flow,
            self.params.data,
            self.version,
            self.state.step,
            outcome,
            self.state.operator,
            branches,
            # An id that names the customer by a keyed token (CHATFLOW_ID_KEY): no address indexed.
            addresses=not is_hashed_id(workflow.info().workflow_id),
        )
        changed = [update for update in wanted if indexed.get(update.key) != update.value]
        if changed:
            workflow.upsert_search_attributes(changed)

    def _lifecycle(self, kind: str, detail: dict[str, object]) -> None:
        """Hand a lifecycle event to the sinks (when the worker has any), live only: no Temporal
        command, so histories are the same with sinks or without."""
        self.lifecycle_events += 1
        if not lifecycle.active() or workflow.unsafe.is_replaying():
            return
        data = self.state.data if self.state is not None else self.params.data
        lifecycle.emit(
            id=f"{workflow.info().run_id}.{self.lifecycle_events}",
            kind=kind,
            at=self._now(),
            conversation=workflow.info().workflow_id,
            flow=self.params.flow,
            detail=detail,
            data={key: data[key] for key in self.reported_keys if key in data},
        )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        limit = self.params.history_limit
        return bool(limit) and info.get_current_history_length() >= limit

    def _now(self) -> str:
        return workflow.now().isoformat()

    def _record(self, turn: Turn) -> None:
        self.transcript.append(turn)
        if len(self.transcript) > TRANSCRIPT_LIMIT:
            del self.transcript[: len(self.transcript) - TRANSCRIPT_LIMIT]

    def _sent(self, turn: Turn, result: SendResult, *, kept: OutboundMessage | None = None) -> None:
        """The provider took the message (`kept`, when a later refusal may need it): its id and
        status, and any report that overtook it."""
        turn.message_id, turn.status = result.message_id, result.status
        if STATUS_RANK.get(result.status, 0) >= STATUS_RANK["delivered"]:
            # Delivered as it was sent (the console): no report will follow, so this is the status.
            self._lifecycle(lifecycle.MESSAGE_STATUS, lifecycle.status_detail(result.message_id, result.status, ""))
        if kept is not None:
            self._keep_sent(result.message_id, kept)
        early = self.early_statuses.pop(result.message_id, None)
        if early is not None:
            self._apply_status(turn, early)

    def _apply_status(self, turn: Turn, update: DeliveryUpdate) -> None:
        if status_moves_forward(turn.status, update.status):
            turn.status = update.status
            turn.error_code = update.error_code or turn.error_code
            if update.refused_for_window and not turn.to:  # to the customer, not a notification
                self.refusals.append(update)

    # -- refusals reported later ---------------------------------------------------------------

    def _refusals_due(self) -> bool:
        """Refusals to act on: in runs of revision 1 on only (those of revision 0 replay as they
        ran, when a refusal reported later was only the transcript's)."""
        return bool(self.refusals) and self.revision >= 1

    def _keep_sent(self, message_id: str, message: OutboundMessage, retried: bool = False) -> None:
        if message.channel != "whatsapp" or self.state is None or not message_id:
            return
        template = message.template_to_send()
        if template is not None and not retried:
            # Outside the window as this conversation knows it, the provider sent the template.
            last = message.last_inbound_at
            retried = not last or workflow.now() - datetime.fromisoformat(last) > SERVICE_WINDOW
        self.sent[message_id] = Sent(
            self.state.step,
            message.text,
            message.options,
            message.media,
            template,
            retried,
            message.reaction is not None,
        )
        while len(self.sent) > SENT_KEPT:
            del self.sent[next(iter(self.sent))]

    async def _take_refusals(self, *, ending: bool = False) -> None:
        """What a refusal at send time gets, for each reported later: the message as its template
        (once), else the failure branch of the step that sent it when it has its own, else the SMS
        the edge handed over, else the flow's failure branch (`RefusedLater`, to the engine)."""
        while self._refusals_due():
            update = self.refusals.pop(0)
            code, sent = update.error_code, self.sent.pop(update.message_id, None)
            self.log("WhatsApp refused %s after taking it (%s)", update.message_id, code)
            if sent is not None and sent.reaction:
                self.log("a reaction: nothing to say again")
                continue
            if update.fallen_back:
                self.log("the SMS fallback has said %s already", update.message_id)
                continue
            route = (update.fallback_number, update.fallback_provider) if update.fallback_number else None
            if sent is None:
                await self._unknown_refused(update, route)
                continue
            if sent.template is not None and not sent.retried:
                self.log("sending it again as its template %s", sent.template.label)
                again = self._outbound(sent.text, sent.options, sent.media, sent.template)
                again.template_only = True  # the provider says the window is closed, whatever we saw
                try:
                    self._keep_sent(await self._deliver(again), again, retried=True)
                    continue
                except PermanentSendError as error:
                    route = route or error.fallback
            step = self.flow_class.steps.get(sent.step) if self.flow_class is not None else None
            if route is not None and not getattr(step, "on_error", None):
                number, provider = route
                self.log("WhatsApp refused the message (%s): sending it by SMS from %s", code, number)
                try:
                    await self.send_by_sms(numbered_menu(sent.text, sent.options), sent.media, *route)
                    continue
                except PermanentSendError:
                    pass
            self._refused_branch(sent.step, f"send refused after the provider took it ({code})", ending)

    async def _unknown_refused(self, update: DeliveryUpdate, route: tuple[str, str] | None) -> None:
        """A refusal of a message this run did not send (before a continue-as-new): the SMS the
        edge handed over says its line of the transcript, or nothing can."""
        turn = next((t for t in self.transcript if t.message_id == update.message_id and t.direction == "out"), None)
        if route is None or turn is None:
            self.log("nothing to say %s again with: not one of this run's sends", update.message_id)
            return
        self.log("WhatsApp refused the message (%s): sending it by SMS from %s", update.error_code, route[0])
        options = [Option(str(index), title) for index, title in enumerate(turn.options, start=1)]
        try:
            await self.send_by_sms(numbered_menu(turn.text, options), [], *route)
        except PermanentSendError:
            self.log("the SMS of %s was refused too", update.message_id)

    def _refused_branch(self, step: str, reason: str, ending: bool) -> None:
        current = self.flow_class.steps.get(self.state.step) if self.flow_class and self.state else None
        if ending or isinstance(current, End):
            self.log("the conversation is ending: no failure branch to take (%s)", reason)
            return
        raise RefusedLater(step, reason)


def _cause(error: ActivityError | ApplicationError) -> BaseException | None:
    return error.cause if isinstance(error, ActivityError) else error


def _reason(error: ActivityError | ApplicationError) -> str:
    """What the activity said went wrong (its ApplicationError's message), else the error itself."""
    cause = _cause(error)
    return cause.message if isinstance(cause, ApplicationError) else str(cause or error)


def _without_query(url: str) -> str:
    # A query string may carry a key: the trace and the reason are shown to operators, so they
    # keep the path only.
    return url.split("?", 1)[0]
