"""The Source interface and the mapping: signed webhooks from the systems a business runs.

A source is a provider plug-in (`providers/<kind>/`, listed in `providers.SOURCES`) that verifies
one sender's signed webhooks (a payment gateway, Segment, Mixpanel...) and reads the events in
them; it never acts on them. What an event means to the business is said in Python beside the
flows, by a `SourceMapping`: each event type maps to a journey to `Start`, an event to `Report`
into the conversation(s) a business key finds (`order_id=A-1001`), or nothing.

    stripe = SourceMapping()

    @stripe.on("payment_intent.payment_failed")
    def payment_failed(event: SourceEvent) -> Start:
        intent = event.object
        return Start("payment_recovery", to=intent["metadata"]["phone"], data=intent["metadata"])

chatflow's web layer serves `POST /webhooks/<source name>` (reading the body, mapping `Refused` to
4xx), and its journeys layer acts, once per event id for as long as the sender redelivers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the channel module reads the config, which reads [[sources]] with this one
    from chatflow.domain.channel import WebhookRequest


@dataclass(frozen=True)
class SourceEvent:
    """One event a source verified: the sender's id (its redeliveries carry the same), its type
    (`payment_intent.succeeded`) and its whole payload."""

    id: str
    type: str
    payload: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        """What the event is about: Stripe's `data.object`, else the payload itself."""
        data = self.payload.get("data")
        found = data.get("object") if isinstance(data, dict) else None
        return found if isinstance(found, dict) else self.payload


@dataclass(frozen=True)
class Start:
    """Start `flow` for the customer at `to` with `data` (as `POST /api/conversations` does)."""

    flow: str
    to: str
    data: dict[str, Any] = field(default_factory=dict)
    from_: str = ""  # one of our numbers; "" takes the source's `from` in chatflow.toml


class Report:
    """Report business event `name` into the conversations whose flow is identified by the key
    (`Report("payment_succeeded", order_id="A-1001")`); when none is open, start `otherwise` if
    given, else keep the event for a while for the conversation that may be starting."""

    __slots__ = ("data", "key", "name", "otherwise", "value")

    def __init__(
        self, name: str, *, data: Mapping[str, Any] | None = None, otherwise: Start | None = None, **key: Any
    ) -> None:
        if len(key) != 1:
            raise ValueError(f"Report({name!r}) needs one business key, such as order_id=...")
        ((self.key, value),) = key.items()
        self.value = str(value)
        self.name = name
        self.data = dict(data or {})
        self.otherwise = otherwise

    def __repr__(self) -> str:
        return f"Report({self.name!r}, {self.key}={self.value!r})"


Action = Start | Report
Handler = Callable[[SourceEvent], Action | Sequence[Action] | None]


class SourceMapping:
    """What each event type of one source means: a handler per type, returning an action, a list
    of actions or None (acknowledged and counted, nothing done). Types without a handler are
    acknowledged and counted too."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def on(self, *types: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for kind in types:
                if kind in self.handlers:
                    raise ValueError(f"event type {kind!r} is mapped twice")
                self.handlers[kind] = handler
            return handler

        return register

    def actions(self, event: SourceEvent) -> list[Action]:
        handler = self.handlers.get(event.type)
        found = handler(event) if handler is not None else None
        if found is None:
            return []
        return [found] if isinstance(found, (Start, Report)) else list(found)


@dataclass(frozen=True)
class SourceBinding:
    """One `[[sources]]` entry of chatflow.toml."""

    name: str  # served at /webhooks/<name>; its secret is <NAME>_WEBHOOK_SECRET
    kind: str  # the plug-in: stripe, standard_webhooks, segment, mixpanel, hmac
    mapping: str  # "module" (its `mapping`) or "module:attribute", a SourceMapping
    from_: str = ""  # our number journeys it starts are sent from, unless an action says
    # How long event ids are remembered: the kind's redelivery horizon unless set.
    redelivery: timedelta | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the kind's own keys


class Source(Protocol):
    """One configured source, built by its `SourceSpec.build`."""

    @property
    def name(self) -> str: ...

    def verify(self, request: WebhookRequest) -> list[SourceEvent]:
        """The events of a request whose signature holds; Forbidden when it does not (or is too
        old), BadRequest when the body is not what the sender sends."""
        ...


def environment_name(source: str, suffix: str) -> str:
    """`stripe`, `WEBHOOK_SECRET` -> `STRIPE_WEBHOOK_SECRET`."""
    return re.sub(r"[^A-Z0-9]", "_", source.upper()) + "_" + suffix


@dataclass(frozen=True)
class SourceSpec:
    """What chatflow knows of a kind of source before building one."""

    kind: str
    build: Callable[[SourceBinding, Mapping[str, str]], Source]  # ValueError saying what is wrong
    # How long the sender redelivers an event it thinks we missed: its id is remembered as long.
    redelivery: timedelta
    content_type: str = "application/json"
    option_keys: tuple[str, ...] = ()
    # Environment names, each `<NAME>_<suffix>` for the source called NAME.
    secrets: tuple[str, ...] = ("WEBHOOK_SECRET",)

    def environment(self, name: str) -> tuple[str, ...]:
        return tuple(environment_name(name, suffix) for suffix in self.secrets)

    def missing(self, name: str, environment: Mapping[str, str]) -> list[str]:
        return [env for env in self.environment(name) if not environment.get(env)]
