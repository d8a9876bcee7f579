"""Lifecycle events for sinks, read off the decision trace the workflow already records.

Every step reached, reply matched, handover wanted and end is a line of the conversation's
trace (`ConversationWorkflow.log`); a delivery status is a signal. When the worker has sinks
(`emit_to`, set by the runtime), each of those, as the workflow records it live, becomes a
`LifecycleEvent` handed to the emitter, which appends it to Redis for the sinks' relay. It costs
Temporal nothing: no activity, no marker, no timer; the history is the same with sinks or without.

A workflow task that runs again live (its worker died before Temporal recorded it) emits its
events again with the same ids (the run id and the event's place in the run), which destinations
drop. Replays emit nothing. The emitter never makes the workflow wait: it holds what Redis cannot
take (away) and appends it, in order, once it is back (`chatflow.edge.sinks.StreamEmitter`).

This module is passed through Temporal's sandbox (chatflow is), so the emitter the worker sets is
the one the workflows see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from chatflow.domain.sink import ENDED, HANDOVER_WANTED, MESSAGE_STATUS, REPLY_MATCHED, STARTED, STEP_REACHED
from chatflow.domain.sink import LifecycleEvent as LifecycleEvent

log = logging.getLogger(__name__)

Emitter = Callable[[LifecycleEvent], None]

_emitter: Emitter | None = None

# The engine's trace lines that are lifecycle events, and what their arguments are.
TRACE_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "started: flow %s v%d, by %s": (STARTED, ("flow", "version", "by")),
    "step %s (%s)": (STEP_REACHED, ("step", "kind")),
    "reply to %s matched %s": (REPLY_MATCHED, ("step", "branch")),
    "step %s: waiting for a person to take over": (HANDOVER_WANTED, ("step",)),
    "ended: %s%s": (ENDED, ("outcome", "reason")),
}


def emit_to(emitter: Emitter | None) -> None:
    """Set (or, with None, clear) where this process's workflows emit lifecycle events."""
    global _emitter
    _emitter = emitter


def active() -> bool:
    return _emitter is not None


def from_trace(message: str, args: tuple[object, ...]) -> tuple[str, dict[str, Any]] | None:
    """The lifecycle event type and detail a trace line is, if it is one."""
    found = TRACE_EVENTS.get(message)
    if found is None:
        return None
    kind, names = found
    detail = {name: value for name, value in zip(names, args, strict=False)}
    if kind == ENDED:
        detail["reason"] = str(detail.get("reason", "")).strip().removeprefix("(").removesuffix(")")
    return kind, detail


def emit(
    *, id: str, kind: str, at: str, conversation: str, flow: str, detail: Mapping[str, Any], data: Mapping[str, Any]
) -> None:
    emitter = _emitter
    if emitter is None:
        return
    try:
        emitter(LifecycleEvent(id, kind, at, conversation, flow, dict(detail), dict(data)))
    except Exception as error:  # noqa: BLE001 - a sink must never fail a conversation
        log.warning("lifecycle event %s of %s not emitted: %r", kind, conversation, error)


def status_detail(message_id: str, status: str, error: str) -> dict[str, Any]:
    return {"message_id": message_id, "status": status, **({"error": error} if error else {})}


__all__ = ["MESSAGE_STATUS", "LifecycleEvent", "active", "emit", "emit_to", "from_trace", "status_detail"]
