"""`chatflow check`: the steps that would send free text on WhatsApp outside the 24-hour window.

WhatsApp refuses free text more than 24 hours after the customer last wrote; only an approved
template may go then. Before deploy, this walks each flow's graph from its first step keeping one
fact per path: whether the customer has surely written less than 24 hours ago. A conversation the
business starts (a journey) begins without it; a customer's reply (a branch, a choice, a
no-match) gives it; a wait that can outlast 24 hours (a Delay, a WaitUntil, an Ask's timeout or
event, a hand-back from a person, the flow's expiry) takes it away. A step that sends text where the fact does
not hold, without a `template=`, is listed with the path that reaches it.

What a code step says (`convo.say`) is its own code's and is not seen here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from chatflow.domain.config import NumberBinding
from chatflow.flows.flow import Flow
from chatflow.flows.steps import (
    ERROR,
    EVENT,
    NO_MATCH,
    TIMEOUT,
    Ask,
    Delay,
    End,
    Handover,
    Say,
    Step,
    WaitUntil,
)

WINDOW = timedelta(hours=24)
REPLY_LABELS = ("reply:", "choice:", NO_MATCH)


@dataclass(frozen=True)
class Finding:
    flow: str
    step: str
    kind: str  # the step's type
    path: tuple[str, ...]  # "step" then "-(label)-> step" for each edge taken from the first step
    business_started: bool

    def __str__(self) -> str:
        where = "a conversation the business starts" if self.business_started else "after a long wait"
        return (
            f"{self.flow}.{self.step} ({self.kind}) may send free text outside WhatsApp's 24-hour window "
            f"({where}) and has no template=: {' '.join(self.path)}"
        )


def _sends_text(step: Step) -> bool:
    if isinstance(step, (Say, Handover, End)):
        return step.text is not None
    if isinstance(step, Ask):
        return step.text is not None
    return False


def _outlasts(wait: timedelta | None, flow: type[Flow]) -> bool:
    """Whether a wait of `wait` (None: until the flow expires) can reach 24 hours."""
    return (wait if wait is not None else flow.expires_after) >= WINDOW


def _open_after(flow: type[Flow], step: Step, label: str, open_: bool) -> bool:
    """Whether the window is surely open after taking `label` out of `step`."""
    if isinstance(step, Ask) and label.startswith(REPLY_LABELS):
        return True  # the customer has just written
    if isinstance(step, Ask) and (label == TIMEOUT or label.startswith(EVENT)):
        return open_ and not _outlasts(step.timeout, flow)
    if isinstance(step, Delay):
        return open_ and not _outlasts(step.duration, flow)
    if isinstance(step, Handover) and label == TIMEOUT:
        return open_ and not _outlasts(step.timeout, flow)
    if isinstance(step, (WaitUntil, Handover)):
        return False  # until a point in time, or a person's hand-back: any time later
    return open_


def _sends_unguarded(step: Step) -> bool:
    return _sends_text(step) and getattr(step, "template", None) is None


def check_flow(flow: type[Flow], *, business_started: bool = True) -> list[Finding]:
    """The steps of `flow` that may send free text outside the window, each with the first path
    (fewest steps) that reaches it so."""
    first = flow.first_step()
    start = (first, not business_started)
    paths: dict[tuple[str, bool], tuple[str, ...]] = {start: (first,)}
    queue = deque([start])
    findings: dict[str, Finding] = {}
    while queue:
        name, open_ = queue.popleft()
        step = flow.steps[name]
        path = paths[(name, open_)]
        if not open_ and _sends_unguarded(step) and name not in findings:
            findings[name] = Finding(flow.name, name, type(step).__name__, path, business_started)
        edges = list(step.edges())
        if not isinstance(step, End):
            # The engine's own jumps: any step can fail, a wait can expire.
            edges.append((ERROR, flow.on_failure))
            if step.waits:
                edges.append(("expire", flow.on_expiry))
        for label, _ in edges:
            if label == ERROR and getattr(step, "on_error", None) is None:
                target = flow.on_failure
            elif label == "expire":
                target = flow.on_expiry
            else:
                target = flow.next_step(name, label)
            after = False if label == "expire" else _open_after(flow, step, label, open_)
            key = (target, after)
            if key not in paths:
                paths[key] = (*path, f"-({label})->", target)
                queue.append(key)
    order = list(flow.steps)
    return sorted(findings.values(), key=lambda f: order.index(f.step))


def answered_flows(bindings: Iterable[NumberBinding]) -> set[str]:
    """The flows customers start by writing (a number's flow, its keywords' flows)."""
    names: set[str] = set()
    for binding in bindings:
        names.add(binding.flow)
        names.update(binding.keywords.values())
    return names


def window_findings(flows: Iterable[type[Flow]], bindings: Iterable[NumberBinding]) -> list[Finding]:
    """Every flow checked as customers start it when a number answers with it, else as journeys
    (the business) start it."""
    answered = answered_flows(bindings)
    findings: list[Finding] = []
    for flow in flows:
        findings += check_flow(flow, business_started=flow.name not in answered)
    return findings
