"""The steps a flow is made of. Each is declared as a class attribute of a `Flow`.

A step knows only its own configuration and its outgoing edges (a trigger label and the name of
the step it leads to); the engine in `chatflow.flows.engine` executes them and `chatflow.flows.flow` turns
the edges into a `transitions` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from chatflow.domain.errors import FlowDefinitionError
from chatflow.domain.messages import Location
from chatflow.domain.secrets import Secret
from chatflow.flows.matching import Choice, Choices, Matcher
from chatflow.flows.templates import Template, as_template

Data = dict[str, Any]
Text = str | Callable[[Data], str]
Target = "str | Step"

# Trigger labels shared by the engine and the transition table.
NEXT = "next"
TIMEOUT = "timeout"
NO_MATCH = "no_match"
ERROR = "error"
OTHERWISE = "otherwise"
THEN = "then"
EVENT = "event:"
GOTO = "goto:"


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def target_name(target: Any) -> str | None:
    """A step's name from the name itself, the step, or (for code steps) the method."""
    if target is None or isinstance(target, str):
        return target
    if isinstance(target, Step):
        return target.name
    return str(getattr(target, "__name__", target))


class Step:
    """Base of every step. `name` is the attribute name it was declared under."""

    name: str = ""
    # One of the ends every flow has (`completed`, `cancelled`, `expired`, `failed`), added
    # where the author declared no step of that name: not the author's step.
    builtin: bool = False

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def edges(self) -> list[tuple[str, str | None]]:
        """(trigger label, target step name) pairs; a None target means "the next declared step"."""
        return []

    @property
    def waits(self) -> bool:
        """True for steps that block on time or on the customer."""
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Say(Step):
    """Send a message and go on without waiting (a notification)."""

    def __init__(
        self,
        text: Text,
        *,
        then: str | Step | None = None,
        media: str | None = None,
        template: str | Template = "",
        on_error: str | Step | None = None,
        urgent: bool = False,
        location: Location | Callable[[Data], Location] | None = None,
    ) -> None:
        self.text = text
        self.then = target_name(then)
        self.media = media  # a URL: an image, video, audio or document
        self.location = location  # a place sent with the text (WhatsApp), or made from the data
        self.template = as_template(template)  # sent instead of the text outside WhatsApp's window
        self.on_error = target_name(on_error)
        self.urgent = urgent  # sent even inside the flow's quiet hours

    def edges(self) -> list[tuple[str, str | None]]:
        edges: list[tuple[str, str | None]] = [(NEXT, self.then)]
        if self.on_error:
            edges.append((ERROR, self.on_error))
        return edges


class Ask(Step):
    """Send a prompt (unless `text` is None) and wait for a reply or a business event.

    Branches are tried in order; the first matcher that matches wins. With `choices`, the
    prompt carries a choice list answered by number, title or button. When nothing matches,
    `reprompt` is sent, up to `attempts` tries in all, then `on_no_match` is taken. `timeout`
    counts from when the prompt was actually sent; `on_timeout` is taken when it passes.
    `events` maps business event names to steps; `save_as` stores the matched value in the data.
    """

    def __init__(
        self,
        text: Text | None,
        *,
        branches: Mapping[Matcher, str | Step] | None = None,
        choices: list[Choice] | None = None,
        reprompt: Text | None = None,
        attempts: int = 3,
        on_no_match: str | Step | None = None,
        timeout: timedelta | None = None,
        on_timeout: str | Step | None = None,
        events: Mapping[str, str | Step] | None = None,
        save_as: str | None = None,
        template: str | Template = "",
        on_error: str | Step | None = None,
        urgent: bool = False,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.text = text
        self.branches: dict[Matcher, str] = {m: target_name(t) or "" for m, t in (branches or {}).items()}
        self.choices = Choices(tuple(choices or ()))
        self.reprompt = reprompt
        self.attempts = attempts
        self.on_no_match = target_name(on_no_match)
        self.timeout = timeout
        self.on_timeout = target_name(on_timeout)
        self.events: dict[str, str] = {n: target_name(t) or "" for n, t in (events or {}).items()}
        self.save_as = save_as
        self.template = as_template(template)  # sent instead of the text outside WhatsApp's window
        self.on_error = target_name(on_error)
        self.urgent = urgent

    @property
    def waits(self) -> bool:
        return True

    def branch_labels(self) -> list[tuple[str, Matcher, str]]:
        """Unique trigger labels for the branches, in the order they are tried."""
        labels: list[tuple[str, Matcher, str]] = []
        seen: set[str] = set()
        for matcher, target in self.branches.items():
            label = f"reply:{matcher.label}"
            while label in seen:
                label += "'"
            seen.add(label)
            labels.append((label, matcher, target))
        return labels

    def choice_labels(self) -> list[tuple[str, Choice]]:
        return [(f"choice:{c.title}", c) for c in self.choices.choices]

    def edges(self) -> list[tuple[str, str | None]]:
        edges: list[tuple[str, str | None]] = [(label, c.goto) for label, c in self.choice_labels()]
        edges += [(label, target) for label, _, target in self.branch_labels()]
        edges += [(EVENT + name, target) for name, target in self.events.items()]
        if self.on_no_match:
            edges.append((NO_MATCH, self.on_no_match))
        if self.on_timeout:
            edges.append((TIMEOUT, self.on_timeout))
        if self.on_error:
            edges.append((ERROR, self.on_error))
        return edges


class Wait(Ask):
    """Wait for a reply or an event without sending a prompt (for example after a reminder)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(None, **kwargs)


class Handover(Step):
    """Hand the conversation to a person: say `text` (unless None), then wait for an operator to
    take it over (the dashboard, or the journeys API from the business's helpdesk) and hand it
    back, which goes on to `then`. When nobody has taken it over within `timeout`, `on_timeout`
    is taken. The customer's messages meanwhile wait in the transcript for the person.

    While an operator has a conversation (here or at any other step) the bot sends nothing and
    its timers stand still; they go on, with the time that was left, when it is handed back.
    """

    def __init__(
        self,
        text: Text | None = None,
        *,
        timeout: timedelta | None = None,
        then: str | Step | None = None,
        on_timeout: str | Step | None = None,
        urgent: bool = False,
    ) -> None:
        self.text = text
        self.timeout = timeout
        self.then = target_name(then)
        self.on_timeout = target_name(on_timeout)
        self.urgent = urgent

    @property
    def waits(self) -> bool:
        return True

    def edges(self) -> list[tuple[str, str | None]]:
        edges: list[tuple[str, str | None]] = [(NEXT, self.then)]
        if self.on_timeout:
            edges.append((TIMEOUT, self.on_timeout))
        return edges


class Delay(Step):
    """A durable sleep: survives restarts and deploys."""

    def __init__(self, duration: timedelta, *, then: str | Step | None = None) -> None:
        self.duration = duration
        self.then = target_name(then)

    @property
    def waits(self) -> bool:
        return True

    def edges(self) -> list[tuple[str, str | None]]:
        return [(NEXT, self.then)]


class WaitUntil(Step):
    """Sleep until a point in time: a datetime, or a callable/data key giving one (ISO 8601 strings allowed)."""

    def __init__(
        self, when: datetime | str | Callable[[Data], datetime | str], *, then: str | Step | None = None
    ) -> None:
        self.when = when
        self.then = target_name(then)

    @property
    def waits(self) -> bool:
        return True

    def edges(self) -> list[tuple[str, str | None]]:
        return [(NEXT, self.then)]


class If(Step):
    """A condition on the conversation's data."""

    def __init__(
        self,
        condition: Callable[[Data], bool],
        *,
        then: str | Step,
        otherwise: str | Step | None = None,
    ) -> None:
        self.condition = condition
        self.then = target_name(then)
        self.otherwise = target_name(otherwise)

    def edges(self) -> list[tuple[str, str | None]]:
        return [(THEN, self.then), (OTHERWISE, self.otherwise)]


class Http(Step):
    """Call the business's API (GET/POST/PUT/PATCH/DELETE) in an activity; save its JSON answer.

    `url`, `params`, `headers` and string values inside `json` are templated from the data. In the
    URL, a field before the path (`{api}` in "{api}/orders/{id}") comes from the flow's `defaults`
    only, never from the data; fields in the path or query are percent-encoded, one value each
    (`chatflow.flows.templating.render_url`). `secret("NAME")` as a header or parameter value is
    read from the worker's environment when the call is made. Calls to loopback, private,
    link-local and metadata addresses are refused unless allowed (`[http] allow`). A refused call
    or a non-2xx answer after retries takes `on_error` (the flow's failure branch when unset).
    """

    def __init__(
        self,
        method: str,
        url: Text,
        *,
        json: Any = None,
        headers: Mapping[str, str | Secret] | None = None,
        params: Mapping[str, str | Secret] | None = None,
        save_as: str | None = None,
        then: str | Step | None = None,
        on_error: str | Step | None = None,
        timeout: timedelta = timedelta(seconds=10),
        retries: int = 3,
    ) -> None:
        if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            raise ValueError(f"unsupported HTTP method {method!r}")
        if _holds_secret(json):
            raise FlowDefinitionError("secret() goes in an Http step's headers or params, not in its json body")
        self.method = method.upper()
        self.url = url
        self.json = json
        self.headers = dict(headers or {})
        self.params = dict(params or {})
        self.save_as = save_as
        self.then = target_name(then)
        self.on_error = target_name(on_error)
        self.timeout = timeout
        self.retries = retries

    def edges(self) -> list[tuple[str, str | None]]:
        edges: list[tuple[str, str | None]] = [(NEXT, self.then)]
        if self.on_error:
            edges.append((ERROR, self.on_error))
        return edges


def _holds_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_secret(item) for item in value)
    return False


OUTCOMES = ("completed", "cancelled", "expired", "failed")


class End(Step):
    """The conversation ends with an outcome, optionally saying something last."""

    def __init__(
        self,
        outcome: str = "completed",
        text: Text | None = None,
        *,
        template: str | Template = "",
        urgent: bool = False,
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        self.outcome = outcome
        self.text = text
        self.template = as_template(template)
        self.urgent = urgent  # its text sent even inside the flow's quiet hours


class Code(Step):
    """An `async def step(self, convo)` method of a flow; it returns the next step (or None to end)."""

    def __init__(self, function: Callable[..., Any], targets: list[str]) -> None:
        self.function = function
        self.name = function.__name__
        self.targets = targets
        self.default_next: str | None = None  # where `return None` leads: the next declared step

    def edges(self) -> list[tuple[str, str | None]]:
        edges: list[tuple[str, str | None]] = [(GOTO + t, t) for t in self.targets]
        if self.default_next:
            edges.append((NEXT, self.default_next))
        return edges


class Notify(Step):
    """Send a message to someone on another channel, and go on: the customer by email as well
    as by SMS, or a staff member. The conversation stays where it is; a reply to the message
    (an email answered) comes back to it.

    `to` is templated from the data (`"{email}"`); `channel` is one the config binds an address
    or number to (`"email"`, `"sms"`, `"whatsapp"`). Opt-out, rate limits and, unless `urgent`,
    the flow's quiet hours apply to the recipient: their zone is `timezone`, else the data's
    `timezone`, else their number's. A send refused takes `on_error` (the flow's failure branch
    when unset).
    """

    def __init__(
        self,
        text: Text,
        *,
        to: Text,
        channel: str,
        subject: Text | None = None,
        then: str | Step | None = None,
        on_error: str | Step | None = None,
        urgent: bool = False,
        timezone: str | None = None,
    ) -> None:
        if not channel:
            raise ValueError("Notify needs a channel (email, sms, whatsapp...)")
        self.text = text
        self.to = to
        self.channel = channel
        self.subject = subject
        self.then = target_name(then)
        self.on_error = target_name(on_error)
        self.urgent = urgent
        self.timezone = timezone

    def edges(self) -> list[tuple[str, str | None]]:
        edges: list[tuple[str, str | None]] = [(NEXT, self.then)]
        if self.on_error:
            edges.append((ERROR, self.on_error))
        return edges
