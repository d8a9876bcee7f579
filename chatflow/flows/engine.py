"""The engine: runs a flow's steps against a `Port` (the workflow, in production).

The engine is plain deterministic Python. Everything that touches the world (sending, HTTP,
waiting for the customer, time) goes through the `Port`, which the Temporal workflow implements
with activities, signals and timers. Its whole progress lives in `FlowState`, a dataclass that
continue-as-new carries to the next run: a step is either not started (`wait is None`) or
waiting with its deadline and attempts recorded, so a run can stop at any wait and the next
one resumes it without sending the prompt again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from chatflow.domain.errors import (
    FlowDefinitionError,
    FlowError,
    HttpCallFailed,
    LoopDetected,
    MediaUnavailable,
    PermanentSendError,
)
from chatflow.domain.keywords import command
from chatflow.domain.messages import (
    BusinessEvent,
    HttpRequest,
    HttpResponse,
    InboundMessage,
    Location,
    Media,
    MediaRequest,
    Notification,
    Option,
    StoredMedia,
    TemplateMessage,
    numbered_menu,
)
from chatflow.domain.secrets import Secret
from chatflow.flows import i18n
from chatflow.flows.flow import Flow
from chatflow.flows.matching import Choice, normalise
from chatflow.flows.quiet_hours import SendWindow
from chatflow.flows.split import Split, choose_branch
from chatflow.flows.steps import (
    ERROR,
    EVENT,
    GOTO,
    NEXT,
    NO_MATCH,
    OTHERWISE,
    THEN,
    TIMEOUT,
    Ask,
    Code,
    Delay,
    End,
    Handover,
    Http,
    If,
    Notify,
    Say,
    Step,
    Text,
    WaitUntil,
    target_name,
)
from chatflow.flows.templates import Template
from chatflow.flows.templating import render, render_json, render_url

# Engine-level jumps that are not edges of any one step.
EXPIRE = "expire"
CANCEL = "cancel"
RESTART = "restart"  # the customer wrote the flow's `restart_keyword`
# The largest media `convo.fetch_media` takes by default: WhatsApp's own limit for video and audio.
MEDIA_MAX_BYTES = 16 * 1024 * 1024


class RefusedLater(Exception):
    """The provider took a message and refused it later (WhatsApp outside its window), when no
    template or SMS could say it: the flow leaves where it is for the failure branch of the step
    that sent it, as that step would have taken at send time."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


@dataclass
class WaitState:
    """Progress of the step being waited on, so a new run resumes rather than restarts it."""

    deadline: str = ""  # ISO 8601; "" when the step has no deadline of its own
    attempts: int = 0


@dataclass
class FlowState:
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    expires_at: str = ""
    wait: WaitState | None = None
    outcome: str = ""
    reason: str = ""
    reply: str = ""  # the customer's last reply that a step consumed
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # received, not yet awaited
    last_text: str = ""
    repeats: int = 0
    steps_since_wait: int = 0
    # A person who took the conversation over ("" while the bot has it), since when, and how
    # many times it was handed back to the bot (a Handover step waits for the next one).
    operator: str = ""
    taken_over_at: str = ""
    handbacks: int = 0


class Port(Protocol):
    """What the engine needs from its host (the workflow)."""

    # The host's own signals that pass through a step (continue-as-new): never a flow's failure.
    control_flow: tuple[type[BaseException], ...]

    def now(self) -> datetime: ...

    def log(self, message: str, *args: object, bug: BaseException | None = None) -> None:
        """One lifecycle line about this conversation (once, never again on replay); `bug`: with
        its traceback, for a flow's own bug."""

    def cancelled(self) -> str:
        """Why the conversation is being ended ("" while it is not)."""
        ...

    async def checkpoint(self) -> None:
        """A safe point: the host may continue-as-new here (the state is complete)."""

    async def send(
        self,
        text: str,
        options: list[Option],
        media: list[Media],
        template: TemplateMessage | None,
        location: Location | None = None,
    ) -> None:
        """Send a message (`template`: what goes instead outside WhatsApp's 24-hour window);
        raises PermanentSendError on a permanent error."""

    async def send_by_sms(self, text: str, media: list[Media], number: str, provider: str) -> None:
        """Send `text` by SMS from `number` (a WhatsApp number's fallback); raises
        PermanentSendError on a permanent error."""

    async def react(self, emoji: str) -> None:
        """Put `emoji` on the customer's last message (none yet, or refused: said in the trace)."""

    async def fetch_media(self, request: MediaRequest) -> StoredMedia:
        """Fetch a customer's media into the worker's media folder; raises MediaUnavailable."""
        ...

    async def http(self, request: HttpRequest, retries: int) -> HttpResponse:
        """Call an HTTP API; raises HttpCallFailed when it does not answer 2xx after retries."""

    async def next_input(self, deadline: datetime | None) -> InboundMessage | BusinessEvent | None:
        """The next message or event in order, or None once `deadline` passes (or on cancel)."""

    async def sleep_until(self, when: datetime) -> None:
        """A durable sleep; returns early on cancel."""

    async def quiet_until(self, window: SendWindow, timezone: str | None) -> datetime | None:
        """When a non-urgent message may go out; None when now is fine (or it answers the
        customer, who just wrote)."""

    def quiet_hours_hold_every_send(self) -> bool:
        """Whether End texts and code steps' sends wait for quiet hours too (conversations
        started before they did replay as they ran)."""

    async def notify(self, notification: Notification) -> None:
        """Send to someone on another channel; raises PermanentSendError on a permanent error."""

    async def quiet_until_for(self, window: SendWindow, timezone: str | None, recipient: str) -> datetime | None:
        """When a non-urgent message may go out to `recipient` (not the conversation's customer)."""


def http_request(
    method: str,
    url: str,
    json: Any,
    headers: Mapping[str, str | Secret],
    params: Mapping[str, str | Secret],
    timeout: timedelta,
) -> HttpRequest:
    """The activity's request: secrets by name only, apart from the values that may be shown."""
    return HttpRequest(
        method,
        url,
        json,
        {k: v for k, v in headers.items() if not isinstance(v, Secret)},
        timeout.total_seconds(),
        params={k: v for k, v in params.items() if not isinstance(v, Secret)},
        secret_headers={k: v for k, v in headers.items() if isinstance(v, Secret)},
        secret_params={k: v for k, v in params.items() if isinstance(v, Secret)},
    )


class HttpClient:
    """`convo.http`: the business API from code steps, each call an activity with retries."""

    def __init__(self, runner: FlowRunner) -> None:
        self._runner = runner

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: Mapping[str, str | Secret] | None = None,
        params: Mapping[str, str | Secret] | None = None,
        timeout: timedelta = timedelta(seconds=10),
        retries: int = 3,
    ) -> Any:
        """`url` is the code's own: values from the data belong in `params` (encoded by the call)."""
        request = http_request(method.upper(), url, json, headers or {}, params or {}, timeout)
        response = await self._runner.port.http(request, retries)
        return response.json

    async def get(self, url: str, **kwargs: Any) -> Any:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Any:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Any:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Any:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Any:
        return await self.request("DELETE", url, **kwargs)


class Convo:
    """What a code step sees: the conversation's data and the actions it may take."""

    def __init__(self, runner: FlowRunner, customer: str, number: str, channel: str) -> None:
        self._runner = runner
        self.customer = customer
        self.number = number
        self.channel = channel
        self.http = HttpClient(runner)

    @property
    def data(self) -> dict[str, Any]:
        return self._runner.state.data

    @property
    def reply(self) -> str:
        """The customer's last reply that a step consumed."""
        return self._runner.state.reply

    @property
    def locale(self) -> str:
        """The customer's locale (`es`, `pt_BR`): the one the flow's texts are sent in."""
        return self._runner.locale

    def now(self) -> datetime:
        """The workflow's deterministic clock; never use `datetime.now()` in a flow."""
        return self._runner.port.now()

    async def say(self, text: str, *, media: str | None = None, urgent: bool = False) -> None:
        """Send `text` as it is: code steps compose their own text (an f-string), so a
        customer's words inside it are never read as a template. Inside the flow's quiet hours
        it waits for them to end, as a `Say` does, unless `urgent`."""
        await self._runner.respect_quiet_hours(urgent, every_send=True)
        if self._runner.port.cancelled():
            return  # ended while it waited: the code step's later lines still run, nothing is sent
        await self._runner.send(text, media=media)

    async def react(self, emoji: str) -> None:
        """Put `emoji` on the customer's last message: a WhatsApp Cloud reaction; a channel
        without reactions (SMS, Twilio's WhatsApp) gets the emoji as a message of its own."""
        if not emoji.strip():
            raise FlowError("convo.react() needs an emoji")
        await self._runner.port.react(emoji.strip())

    async def fetch_media(self, media: Mapping[str, Any] | str, *, max_bytes: int = MEDIA_MAX_BYTES) -> dict[str, Any]:
        """A customer's media (what `media()` saved, or a provider's media id) fetched now into
        the worker's media folder: {path, content_type, sha256, size}. Only providers that give
        media ids (the Cloud API) need it; over `max_bytes`, gone or unfetchable, it raises
        MediaUnavailable (the step's failure branch unless the code catches it)."""
        media_id = media if isinstance(media, str) else str(media.get("id") or "")
        if not media_id:
            raise MediaUnavailable("no media id to fetch (Twilio's media come as URLs: use the url)")
        # The provider is the conversation's, filled in by the host.
        stored = await self._runner.port.fetch_media(MediaRequest("", media_id, max_bytes))
        return {"path": stored.path, "content_type": stored.content_type, "sha256": stored.sha256, "size": stored.size}

    async def sleep(self, duration: timedelta) -> None:
        await self._runner.port.sleep_until(self.now() + duration)

    async def notify(self, to: str, text: str, *, channel: str, subject: str = "") -> None:
        """Send `text` to `to` on another channel (the `Notify` step from a code step; no quiet
        hours: a code step decides when it runs)."""
        await self._runner.port.notify(Notification(channel, to, text, subject))


def _parse_time(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


class FlowRunner:
    def __init__(
        self,
        flow: Flow,
        state: FlowState,
        port: Port,
        *,
        customer: str = "",
        number: str = "",
        channel: str = "",
    ) -> None:
        self.flow = flow
        self.state = state
        self.port = port
        self.convo = Convo(self, customer, number, channel)
        self.sending_urgent = False
        self.catalogues = i18n.catalogues(type(flow))
        self.localized = i18n.localized(type(flow))

    @property
    def locale(self) -> str:
        """The customer's locale; for a flow without catalogues, its own language."""
        if self.localized:
            given = self.state.data.get(i18n.LOCALE_KEY)
            if isinstance(given, str) and given.strip():
                return i18n.normal(given)
        return i18n.normal(self.flow.language)

    @property
    def speaks(self) -> str:
        """The language the flow speaks to this customer: their locale when its catalogues
        translate it, else the flow's own. Dates and amounts are written its way (an English
        text never gets French numbers), with Babel's data the worker loaded for it."""
        if self.catalogues:
            found = self.catalogues.best(self.locale)
            if found is not None:
                return found
        return i18n.normal(self.flow.language)

    def text(self, text: Text) -> str:
        """A step's text as this customer gets it: translated into their locale (when the
        flow's catalogues have it), then filled in from the data, formatted for the locale."""
        if isinstance(text, str) and self.catalogues:
            text = self.catalogues.gettext(text, self.locale)
        return render(text, self.state.data, self.speaks)

    def options(self, step: Ask) -> list[Option]:
        """The step's choices, their titles in the customer's locale."""
        options = step.choices.options()
        if not self.catalogues:
            return options
        locale = self.locale
        return [
            Option(
                id=option.id,
                title=self.catalogues.gettext(option.title, locale),
                description=self.catalogues.gettext(option.description, locale) if option.description else "",
            )
            for option in options
        ]

    @classmethod
    def initial_state(cls, flow: type[Flow], data: dict[str, Any], now: datetime) -> FlowState:
        return FlowState(
            step=flow.first_step(),
            data={**flow.defaults, **data},
            expires_at=(now + flow.expires_after).isoformat(),
        )

    async def run(self) -> FlowState:
        """Run steps until an End; return the final state (its `outcome` is set)."""
        state = self.state
        if self.localized and not state.data.get(i18n.LOCALE_KEY):
            # Decided once and kept in the data, so a replay (or a later phonenumbers) speaks
            # the language this conversation started in.
            state.data[i18n.LOCALE_KEY] = i18n.customer_locale(type(self.flow), state.data, self.convo.customer)
        while True:
            await self.port.checkpoint()
            step = self.flow.steps[state.step]
            if state.wait is None:
                self.port.log("step %s (%s)", step.name, type(step).__name__)
            if isinstance(step, End):
                await self._end(step)
                return state
            if self.port.cancelled():
                self._move(step, CANCEL)
                continue
            if not step.waits:
                state.steps_since_wait += 1
                if state.steps_since_wait > self.flow.max_steps_without_wait:
                    self._move(step, ERROR, "loop guard: too many steps without waiting")
                    continue
            try:
                label = await self._execute(step)
                reason = ""
            except RefusedLater as refused:
                # Raised at a wait, after the step that sent the message: its branch, not this one's.
                sender = self.flow.steps.get(refused.step, step)
                self.port.log("step %s: its message was refused later; its failure branch", sender.name)
                self._move(sender, ERROR, refused.reason)
                continue
            except PermanentSendError as error:
                label, reason = ERROR, f"send failed: {error}"
            except HttpCallFailed as error:
                label, reason = ERROR, f"HTTP call failed: {error}"
            except FlowError as error:  # a template key missing, the loop guard
                label, reason = ERROR, str(error)
                self.port.log("step %s failed: %s", step.name, reason)
            except Exception as error:
                if isinstance(error, self.port.control_flow):
                    raise
                # A bug in the flow's own code (a code step, a condition): this conversation
                # takes its failure branch with the reason, rather than retrying for ever.
                label, reason = ERROR, f"step {step.name!r} raised {type(error).__name__}: {error}"
                self.port.log("step %s raised a bug: %s", step.name, reason, bug=error)
            self._move(step, label, reason)

    def _move(self, step: Step, label: str, reason: str = "") -> None:
        state = self.state
        if reason:
            state.reason = reason
        if label == EXPIRE:
            target = self.flow.on_expiry
            state.reason = "the conversation expired"
        elif label == CANCEL:
            target = "cancelled"
            state.reason = self.port.cancelled() or "cancelled by the business"
        elif label == RESTART:
            # From the first step as if new, keeping the data (the journey's, the answers so
            # far: each step asked again saves its new answer over the old one).
            target = self.flow.first_step()
            state.reason, state.reply, state.last_text, state.repeats = "", "", "", 0
        elif label == ERROR and not getattr(step, "on_error", None):
            target = self.flow.on_failure
        else:
            target = self.flow.next_step(step.name, label)
        state.step = target
        state.wait = None
        if step.waits:
            state.steps_since_wait = 0

    async def _end(self, step: End) -> None:
        state = self.state
        if step.outcome == "completed":
            state.reason = ""  # a failure the flow recovered from is not why it completed
        if step.text is not None:
            try:
                # A last word after a night-time timeout waits for the morning like any other.
                await self.respect_quiet_hours(step.urgent, every_send=True)
                if not self.port.cancelled():
                    await self.send(self.text(step.text), template=step.template)
            except (PermanentSendError, FlowError) as error:
                state.reason = state.reason or f"last message not sent: {error}"
        state.outcome = step.outcome

    async def send(
        self,
        text: str,
        *,
        options: list[Option] | None = None,
        media: str | None = None,
        template: Template | None = None,
        location: Location | None = None,
    ) -> None:
        state = self.state
        if text == state.last_text:
            state.repeats += 1
        else:
            state.last_text, state.repeats = text, 1
        if state.repeats > self.flow.loop_limit:
            raise LoopDetected(
                f"loop guard: the same message was about to be sent {state.repeats} times without a reply"
            )
        media_list = [Media(url=media)] if media else []
        rendered = (
            template.render(state.data, self.locale if self.localized else None, formats=self.speaks)
            if template is not None
            else None
        )
        try:
            await self.port.send(text, options or [], media_list, rendered, location)
        except PermanentSendError as error:
            # WhatsApp refused it as outside its window (its template too, or there is none): a
            # step's own failure branch wins, else the number's SMS fallback says it, here in
            # the conversation, which goes on.
            step = self.flow.steps.get(state.step)
            if error.fallback is None or getattr(step, "on_error", None):
                raise
            number, provider = error.fallback
            self.port.log("WhatsApp refused the message (%s): sending it by SMS from %s", error.code, number)
            await self.port.send_by_sms(numbered_menu(text, options or []), media_list, number, provider)

    # -- steps -----------------------------------------------------------------------------

    async def _execute(self, step: Step) -> str:
        if isinstance(step, Say):
            await self.respect_quiet_hours(step.urgent)
            if self.port.cancelled():
                return CANCEL
            place = step.location(self.state.data) if callable(step.location) else step.location
            await self.send(self.text(step.text), media=step.media, template=step.template, location=place)
            return NEXT
        if isinstance(step, Ask):
            return await self._ask(step)
        if isinstance(step, Handover):
            return await self._handover(step)
        if isinstance(step, Delay):
            return await self._sleep(lambda: self.port.now() + step.duration)
        if isinstance(step, WaitUntil):
            return await self._sleep(lambda: self._when(step))
        if isinstance(step, If):
            return THEN if step.condition(self.state.data) else OTHERWISE
        if isinstance(step, Http):
            return await self._http(step)
        if isinstance(step, Code):
            return await self._code(step)
        if isinstance(step, Notify):
            return await self._notify(step)
        if isinstance(step, Split):
            return self._split(step)
        raise FlowDefinitionError(f"step {step.name!r} of an unknown kind {type(step).__name__}")

    def _split(self, step: Split) -> str:
        data = self.state.data
        branch = data.get(step.data_key)
        if branch not in step.weights:  # else chosen before (a loop back), or by the journey
            branch = choose_branch(step.weights, self.flow.name, step.name, self.convo.customer)
            data[step.data_key] = branch
        self.port.log("split %s: %s (%s)", step.name, branch, step.share(branch))
        return step.label(branch)

    async def respect_quiet_hours(self, urgent: bool, *, every_send: bool = False) -> None:
        self.sending_urgent = urgent  # what the send after this is, for a later send of it (fallback)
        window = self.flow.quiet_hours
        if window is None or urgent:
            return
        if every_send and not self.port.quiet_hours_hold_every_send():
            return
        when = await self.port.quiet_until(window, self.state.data.get("timezone"))
        if when is not None and when > self.port.now():
            await self.port.sleep_until(when)

    def _when(self, step: WaitUntil) -> datetime:
        when = step.when
        if callable(when):
            when = when(self.state.data)
        elif isinstance(when, str) and when in self.state.data:
            when = self.state.data[when]
        return _parse_time(when)

    def _deadline(self, own: datetime | None) -> tuple[datetime, bool]:
        """The effective deadline and whether it is the flow's overall expiry."""
        expires_at = _parse_time(self.state.expires_at)
        if own is None or expires_at <= own:
            return expires_at, True
        return own, False

    def _wait_deadline(self) -> tuple[datetime, bool]:
        """The step's deadline as it stands now (a takeover moves it), and whether it is the expiry."""
        assert self.state.wait is not None
        own = self.state.wait.deadline
        return self._deadline(_parse_time(own) if own else None)

    async def _sleep(self, until: Any) -> str:
        if self.state.wait is None:
            self.state.wait = WaitState(deadline=until().isoformat())
            await self.port.checkpoint()
        await self.port.sleep_until(self._wait_deadline()[0])
        if self.port.cancelled():
            return CANCEL
        deadline, expiring = self._wait_deadline()
        if expiring and self.port.now() >= deadline:
            return EXPIRE
        return NEXT

    async def _prompt(self, step: Ask, text: Any) -> None:
        await self.send(self.text(text), options=self.options(step), template=step.template)
        # The timeout counts from now: the send activity has returned, the prompt is out.
        deadline = self.port.now() + step.timeout if step.timeout else None
        assert self.state.wait is not None
        self.state.wait.deadline = deadline.isoformat() if deadline else ""

    async def _ask(self, step: Ask) -> str:
        state = self.state
        if state.wait is None:
            for name in step.events:
                if name in state.events:  # it came before we were ready for it
                    state.data.setdefault("events", {})[name] = state.events.pop(name)
                    return EVENT + name
            if step.text is not None:
                # Before the wait is recorded: a run that continues as new during the quiet
                # hours starts this step again rather than believing the prompt went out.
                await self.respect_quiet_hours(step.urgent)
                if self.port.cancelled():
                    return CANCEL
            state.wait = WaitState()
            if step.text is not None:
                await self._prompt(step, step.text)
            elif step.timeout:
                state.wait.deadline = (self.port.now() + step.timeout).isoformat()
        while True:
            await self.port.checkpoint()
            item = await self.port.next_input(self._wait_deadline()[0])
            if self.port.cancelled():
                return CANCEL
            if item is None:
                deadline, expiring = self._wait_deadline()
                if self.port.now() < deadline:
                    continue
                self.port.log("step %s %s", step.name, "expired" if expiring else "timed out")
                return EXPIRE if expiring else TIMEOUT
            if isinstance(item, BusinessEvent):
                if item.name in step.events:
                    state.data.setdefault("events", {})[item.name] = item.data
                    return EVENT + item.name
                state.events[item.name] = item.data
                continue
            state.repeats = 0
            if self.flow.restart_keyword and command(item.text) == command(self.flow.restart_keyword):
                self.port.log("restarted by the customer (%s): back to step %s", item.text, self.flow.first_step())
                return RESTART
            label = self._match(step, item)
            if label is None and item.reaction is not None:
                # A reaction is not an answer unless the step asks for one: no attempt spent.
                self.port.log("%s: not an answer to %s", item.reaction.describe(), step.name)
                continue
            if label is not None:
                self.port.log("reply to %s matched %s", step.name, label)
            elif step.branches or step.choices.choices:
                self.port.log(
                    "reply to %s matched nothing (attempt %d of %d)", step.name, state.wait.attempts + 1, step.attempts
                )
            if label is not None:
                state.reply = item.text
                return label
            if not step.branches and not step.choices.choices:
                continue  # a wait for events only: the reply stays in the transcript
            state.wait.attempts += 1
            if state.wait.attempts >= step.attempts:
                if step.on_no_match:
                    return NO_MATCH
                state.reason = f"no valid reply after {step.attempts} attempts"
                return ERROR
            again = step.reprompt if step.reprompt is not None else step.text
            if again is not None:
                await self._prompt(step, again)

    async def _handover(self, step: Handover) -> str:
        state = self.state
        if state.wait is None:
            if step.text is not None:
                await self.respect_quiet_hours(step.urgent)
                if self.port.cancelled():
                    return CANCEL
            # `attempts` keeps the hand-backs counted when the wait began: the next one ends it.
            state.wait = WaitState(attempts=state.handbacks)
            if step.text is not None:
                await self.send(self.text(step.text))
            if step.timeout:
                state.wait.deadline = (self.port.now() + step.timeout).isoformat()
            self.port.log("step %s: waiting for a person to take over", step.name)
        while state.handbacks <= state.wait.attempts:
            await self.port.checkpoint()
            item = await self.port.next_input(self._wait_deadline()[0])
            if self.port.cancelled():
                return CANCEL
            deadline, expiring = self._wait_deadline()
            if item is None and state.handbacks <= state.wait.attempts and self.port.now() >= deadline:
                self.port.log("step %s %s", step.name, "expired" if expiring else "timed out: nobody took over")
                return EXPIRE if expiring else TIMEOUT
            if isinstance(item, BusinessEvent):
                state.events[item.name] = item.data  # for a later step that waits for it
            # A customer's message is in the transcript for the person who takes over.
        return NEXT

    def fits(self, message: InboundMessage) -> bool:
        """Whether the question the flow waits at would take `message` as an answer (one of its
        choices or branches accepts it); False when it waits at none. Changes nothing: the
        router asks it of each conversation a customer has on a number."""
        state = self.state
        step = self.flow.steps.get(state.step)
        if not isinstance(step, Ask) or state.wait is None or state.outcome:
            return False
        if step.choices.pick(message) or self._pick_translated(step, message):
            return True
        return any(matcher.match(message) is not None for _, matcher, _ in step.branch_labels())

    def _match(self, step: Ask, message: InboundMessage) -> str | None:
        choice = step.choices.pick(message) or self._pick_translated(step, message)
        if choice is not None:
            for label, candidate in step.choice_labels():
                if candidate is choice:
                    self._save(step, choice.value if choice.value is not None else choice.title)
                    return label
        for label, matcher, _ in step.branch_labels():
            value = matcher.match(message)
            if value is not None:
                self._save(step, value)
                return label
        return None

    def _pick_translated(self, step: Ask, message: InboundMessage) -> Choice | None:
        """The choice whose title, as this customer was shown it, is the reply."""
        if not self.catalogues or not message.text:
            return None
        text = normalise(message.text)
        for choice, option in zip(step.choices.choices, self.options(step), strict=True):
            if text and text == normalise(option.title):
                return choice
        return None

    def _save(self, step: Ask, value: Any) -> None:
        if step.save_as:
            self.state.data[step.save_as] = value

    async def _http(self, step: Http) -> str:
        data = self.state.data
        request = http_request(
            step.method,
            render_url(step.url, data, self.flow.defaults),
            render_json(step.json, data) if step.json is not None else None,
            {k: v if isinstance(v, Secret) else render(v, data) for k, v in step.headers.items()},
            {k: v if isinstance(v, Secret) else render(v, data) for k, v in step.params.items()},
            step.timeout,
        )
        try:
            response = await self.port.http(request, step.retries)
        except HttpCallFailed as error:
            if step.save_as:
                data[step.save_as] = {"error": str(error), "status": error.status}
            raise
        if step.save_as:
            data[step.save_as] = response.json
        return NEXT

    async def _notify(self, step: Notify) -> str:
        data = self.state.data
        to = render(step.to, data).strip()
        if not to:
            raise FlowError(f"step {step.name!r}: nobody to notify (`to` is empty)")
        text = render(step.text, data)
        subject = render(step.subject, data) if step.subject is not None else ""
        window = self.flow.quiet_hours
        if window is not None and not step.urgent:
            when = await self.port.quiet_until_for(window, step.timezone or data.get("timezone"), to)
            if when is not None and when > self.port.now():
                await self.port.sleep_until(when)
        if self.port.cancelled():
            return CANCEL
        await self.port.notify(Notification(step.channel, to, text, subject))
        return NEXT

    async def _code(self, step: Code) -> str:
        result = await step.function(self.flow, self.convo)
        if result is None:
            if not step.default_next:
                raise FlowDefinitionError(f"code step {step.name!r} returned None but is the last step; return a step")
            return NEXT
        name = target_name(result)
        if name not in step.targets:
            raise FlowDefinitionError(f"code step {step.name!r} returned {name!r}, which its source does not name")
        return GOTO + str(name)
