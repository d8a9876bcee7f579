"""Every Redis key the edge uses, in one place, so no two modules collide and ops can find them.

Keys that Lua scripts touch together share a `{hash tag}`, so they stay usable on a cluster.
"""

from __future__ import annotations

PREFIX = "chatflow"


def seen(message_id: str) -> str:
    return f"{PREFIX}:seen:{message_id}"


def opted_out(number: str) -> str:
    """The customers opted out of a consent scope: one of our numbers, or `brand:<name>`."""
    return f"{PREFIX}:optout:{number}"


def opted_out_changed(number: str) -> str:
    """When each customer's opt-out on `number` last changed (ms), so an opt-out kept in Temporal
    during a Redis outage never overrides a later STOP or START. The hash tag is the whole opt-out
    key: both land in one slot, for the script that changes them together."""
    return f"{{{opted_out(number)}}}:changed"


def consent(scope: str) -> str:
    """Each customer's consent record in a scope (`chatflow.edge.consent`), in the opt-out set's slot."""
    return f"{{{opted_out(scope)}}}:consent"


def rate(sender: str) -> str:
    return f"{PREFIX}:rate:{{{sender}}}:tat"


def rate_reply_waiting(sender: str) -> str:
    return f"{PREFIX}:rate:{{{sender}}}:reply-waiting"


def inbox(partition: int) -> str:
    return f"{PREFIX}:inbox:{{{partition}}}"


def inbox_owner(partition: int) -> str:
    return f"{PREFIX}:inbox:{{{partition}}}:owner"


def inbox_forwarding(partition: int) -> str:
    """The entry a partition's owner is handing to Temporal: set before, cleared with its XDEL, so
    the next owner knows an earlier attempt may already have reached Temporal."""
    return f"{PREFIX}:inbox:{{{partition}}}:forwarding"


def inbox_dead() -> str:
    """The dead letters: messages the forwarder could not hand on (`chatflow.edge.dead_letters`)."""
    return f"{PREFIX}:inbox:dead"


def idempotency(key: str) -> str:
    return f"{PREFIX}:idempotency:{key}"


def queued_journeys(conversation_id: str) -> str:
    return f"{PREFIX}:queued:{conversation_id}"


def queued_index() -> str:
    return f"{PREFIX}:queued"


def broadcast(broadcast_id: str) -> str:
    return f"{PREFIX}:broadcast:{broadcast_id}"


def digest_window(member: str = "") -> str:
    """A digest window's events; with no member, the prefix (the pop script builds the key)."""
    return f"{PREFIX}:digest:window:{member}"


def digest_due() -> str:
    return f"{PREFIX}:digest:due"


def delivery_status(message_id: str) -> str:
    return f"{PREFIX}:status:{message_id}"


def fallback_watch(message_id: str) -> str:
    return f"{PREFIX}:fallback:{message_id}"


def fallback_due() -> str:
    return f"{PREFIX}:fallback:due"


def sent(send: str) -> str:
    """A send's entry in the send ledger, by its idempotency key (`chatflow.edge.ledger`)."""
    return f"{PREFIX}:sent:{send}"


def by_business_key(key: str, value: str) -> str:
    """The conversations a business key identifies (`order_id=A-1001`): id -> flow."""
    return f"{PREFIX}:key:{{{key}={value}}}"


def waiting_events(key: str, value: str) -> str:
    """Events reported by a business key before any conversation it identifies was open."""
    return f"{PREFIX}:key:{{{key}={value}}}:waiting"


def source_event(source: str, event_id: str) -> str:
    """A source's event acted on (its id remembered for as long as the sender redelivers)."""
    return f"{PREFIX}:source:{source}:event:{event_id}"


def source_counts(source: str) -> str:
    """A source's counters: events received by type, refused signatures, unmatched keys..."""
    return f"{PREFIX}:source:{source}:counts"


def sink_events() -> str:
    """Lifecycle events in the order conversations had them, for every sink's relay."""
    return f"{PREFIX}:sinks:events"


def sink_dead(sink: str) -> str:
    """A sink's batches that could not be delivered, put aside."""
    return f"{PREFIX}:sinks:{sink}:dead"
