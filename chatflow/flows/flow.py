"""`Flow`: a chat flow written as a class of steps, checked and turned into a state machine.

The machine is a `transitions.Machine` used as a pure transition table: states are step names,
triggers are edge labels ("reply:yes", "timeout", "goto:send_link"). It has no model, callbacks,
timers or locks, so it is deterministic and safe inside a Temporal workflow; the engine asks it
where an edge leads, and `chatflow graph` draws the very same table.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import textwrap
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from transitions import Machine

from chatflow.domain.errors import FlowDefinitionError
from chatflow.domain.keywords import RESERVED_WORDS, command
from chatflow.flows.matching import Keyword
from chatflow.flows.quiet_hours import SendWindow
from chatflow.flows.steps import GOTO, NEXT, OUTCOMES, Ask, Code, End, Handover, Http, Step, days
from chatflow.flows.templating import check_url


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Flow:
    """Base class of every chat flow.

    Declare steps as class attributes (`Say`, `Ask`, `Delay`, `If`, `Http`, `End`, ...) and as
    `async def step(self, convo)` methods; the first declared step runs first unless `initial`
    names another. Steps without an explicit `then` (or `otherwise`, or code steps returning
    None) continue with the next declared step; after the last one the conversation completes.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    initial: ClassVar[str] = ""
    # No conversation stays open for ever: past this it ends through `on_expiry`.
    expires_after: ClassVar[timedelta] = days(30)
    on_expiry: ClassVar[str] = "expired"
    # Where permanent send errors and failed HTTP calls go when a step names no `on_error`.
    on_failure: ClassVar[str] = "failed"
    # Data every conversation starts with, under the journey's own data.
    defaults: ClassVar[dict[str, Any]] = {}
    # Keys its messages or conditions read that a journey may leave out (the flow checks for
    # them itself); any other key they read is required of a journey's data, or it gets 422.
    optional: ClassVar[frozenset[str]] = frozenset()
    # Non-urgent messages that do not answer the customer wait for this window, in the
    # customer's time zone (`data["timezone"]`, else the number's). None: send at any hour.
    quiet_hours: ClassVar[SendWindow | None] = None
    # A journey for a customer who is already in a conversation on the number: "skip" it (409),
    # "interrupt" the running one, "queue" it until that one ends, or run it "beside" it (a
    # conversation of its own; the customer's replies go to the one waiting for an answer).
    when_busy: ClassVar[str] = "skip"
    # Which of a customer's conversations on a number gets a reply when several wait for one:
    # those whose question takes it as an answer, of them the highest `reply_priority`, then
    # the one that asked last. Raise it for a flow whose questions come first (a security check).
    reply_priority: ClassVar[int] = 0
    # How the customer is told this conversation apart from another one when asked which of
    # them a reply is for ("" for the flow's name, its underscores as spaces).
    title: ClassVar[str] = ""
    # Set to collect events posted to /api/digests for this flow: one run per customer and
    # window, started with every event of the window in `data["events"]` (Fyno's digest).
    digest_window: ClassVar[timedelta | None] = None
    # The data keys that identify a conversation of this flow to the business (`("order_id",)`):
    # events reported by one of them (`POST /api/events`, a source's `Report`) reach it.
    keys: ClassVar[tuple[str, ...]] = ()
    # Further data keys sent with its lifecycle events to sinks (its `keys` always are).
    sink_keys: ClassVar[tuple[str, ...]] = ()
    # The loop guard ends a flow that sends the same text this many times without a reply.
    loop_limit: ClassVar[int] = 5
    # Steps run without waiting before the flow is judged stuck in a loop.
    max_steps_without_wait: ClassVar[int] = 500
    # A word that, as the customer's whole reply to any question, starts the conversation again
    # from its first step ("restart"); "" for none.
    restart_keyword: ClassVar[str] = ""
    # The language its texts are written in: a customer whose locale its catalogues do not
    # translate gets them as written (see chatflow.flows.i18n).
    language: ClassVar[str] = "en"
    # The folder of its gettext catalogues, relative to its module; "" for `locales` beside it.
    locales: ClassVar[str] = ""

    steps: ClassVar[dict[str, Step]] = {}
    table: ClassVar[Machine]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = _snake(cls.__name__)
        cls.steps = _collect_steps(cls)
        if not cls.steps:
            return  # an abstract base flow: steps come from subclasses
        cls._resolve_defaults()
        cls._check()
        cls.table = Machine(
            model=None,
            states=list(cls.steps),
            transitions=[
                {"trigger": label, "source": step.name, "dest": target}
                for step in cls.steps.values()
                for label, target in step.edges()
            ],
            initial=cls.first_step(),
            auto_transitions=False,
        )

    @classmethod
    def first_step(cls) -> str:
        return cls.initial or next(iter(cls.steps))

    @classmethod
    def next_step(cls, source: str, trigger: str) -> str:
        """Where `trigger` leads from `source`, according to the transition table."""
        found = cls.table.get_transitions(trigger=trigger, source=source)
        if not found:
            raise FlowDefinitionError(f"flow {cls.name!r}: step {source!r} has no edge {trigger!r}")
        return str(found[0].dest)

    @classmethod
    def own_steps(cls) -> list[str]:
        """The steps the author declared, without the built-in ends."""
        return [name for name, step in cls.steps.items() if not step.builtin]

    @classmethod
    def key(cls) -> str:
        return f"{cls.name}@{cls.version}"

    @classmethod
    def _resolve_defaults(cls) -> None:
        names = list(cls.steps)
        for index, step in enumerate(cls.steps.values()):
            following = names[index + 1] if index + 1 < len(names) else None
            # After the last declared step come the built-in end states: falling off the end
            # of a flow completes the conversation.
            for attr in ("then", "otherwise"):
                if hasattr(step, attr) and getattr(step, attr) is None:
                    setattr(step, attr, following)
            if isinstance(step, Code):
                step.default_next = following

    @classmethod
    def _check(cls) -> None:
        for name in ("keys", "sink_keys"):
            found = getattr(cls, name)
            if not isinstance(found, tuple) or not all(isinstance(key, str) and key for key in found):
                raise FlowDefinitionError(
                    f'flow {cls.name!r}: {name} must be a tuple of data keys, such as ("order_id",)'
                )
        known = set(cls.steps)
        for step in cls.steps.values():
            for label, target in step.edges():
                if target not in known:
                    raise FlowDefinitionError(
                        f"flow {cls.name!r}: step {step.name!r} leads to unknown step "
                        f"{target!r} ({label}); known steps: {', '.join(sorted(known))}",
                        step=step.name,
                    )
            if isinstance(step, Http) and (refused := check_url(step.url, cls.defaults)):
                raise FlowDefinitionError(f"flow {cls.name!r}: Http {step.name!r}: {refused}", step=step.name)
            if isinstance(step, Handover) and step.timeout is not None and not step.on_timeout:
                raise FlowDefinitionError(
                    f"flow {cls.name!r}: Handover {step.name!r} has a timeout but no on_timeout", step=step.name
                )
            if isinstance(step, Ask):
                if not step.branches and not step.choices.choices and not step.events:
                    raise FlowDefinitionError(
                        f"flow {cls.name!r}: Ask {step.name!r} has no branches, choices or events", step=step.name
                    )
                if step.timeout is not None and not step.on_timeout:
                    raise FlowDefinitionError(
                        f"flow {cls.name!r}: Ask {step.name!r} has a timeout but no on_timeout", step=step.name
                    )
                _check_reserved(cls.name, step)
                if len(step.choices.choices) > 10:
                    raise FlowDefinitionError(
                        f"flow {cls.name!r}: Ask {step.name!r} offers more than 10 choices, "
                        "which no WhatsApp list can show",
                        step=step.name,
                    )
        for attr in ("on_failure", "on_expiry"):
            if getattr(cls, attr) not in known:
                raise FlowDefinitionError(f"flow {cls.name!r}: {attr}={getattr(cls, attr)!r} is not a step")
        if cls.restart_keyword and command(cls.restart_keyword) in RESERVED_WORDS:
            raise FlowDefinitionError(
                f"flow {cls.name!r}: restart_keyword={cls.restart_keyword!r} is a word every number answers "
                "itself (STOP, HELP, START...); use another word"
            )
        if cls.initial and cls.initial not in known:
            raise FlowDefinitionError(f"flow {cls.name!r}: initial={cls.initial!r} is not a step")


def _check_reserved(flow: str, step: Ask) -> None:
    """Refuse a branch on a word every number answers itself: the flow would never see it."""
    words = [word for matcher in step.branches if isinstance(matcher, Keyword) for word in matcher.words]
    words += [choice.title for choice in step.choices.choices]
    for word in words:
        if command(word) in RESERVED_WORDS:
            raise FlowDefinitionError(
                f"flow {flow!r}: Ask {step.name!r} branches on {word!r}, which every number answers "
                "itself before any flow sees it (STOP, QUIT, CANCEL... unsubscribe; HELP and INFO "
                "answer; START resubscribes); use another word",
                step=step.name,
            )


def _collect_steps(cls: type[Flow]) -> dict[str, Step]:
    declared: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is Flow or not issubclass(klass, Flow):
            continue
        declared.update({k: v for k, v in vars(klass).items() if not k.startswith("_") and k not in vars(Flow)})
    steps: dict[str, Step] = {}
    for attr, value in declared.items():
        if isinstance(value, Step):
            # Each flow class owns copies of its steps: resolving "the next declared step" must
            # not change a base class's (or a sibling's) step objects.
            step = copy.copy(value)
            step.name = attr
            steps[attr] = step
        elif inspect.iscoroutinefunction(value):
            steps[attr] = Code(value, [])
    if not steps:
        return steps
    for outcome in OUTCOMES:
        if outcome not in steps:
            end = End(outcome)
            end.name = outcome
            end.builtin = True
            steps[outcome] = end
    for step in steps.values():
        if isinstance(step, Code):
            step.targets = _returned_targets(step.function, set(steps)) or sorted(steps)
    return steps


def _returned_targets(function: Callable[..., Any], names: set[str]) -> list[str]:
    """Steps a code step can return, read from its source: `self.<step>` or `"<step>"`."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return []  # no source (defined in a REPL): allow every step
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        for inner in ast.walk(node.value):
            name = None
            if isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name):
                if inner.value.id == "self":
                    name = inner.attr
            elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                name = inner.value
            if name in names and name not in found:
                found.append(name)
    return found


__all__ = ["Flow", "FlowDefinitionError", "GOTO", "NEXT"]
