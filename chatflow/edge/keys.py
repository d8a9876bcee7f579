"""Every Redis key the edge uses, in one place, so no two modules collide and ops can find them.

Keys that Lua scripts touch together share a `{hash tag}`, so they stay usable on a cluster.
"""

from __future__ import annotations

PREFIX = "chatflow"


def seen(message_id: str) -> str:
    return f"{PREFIX}:seen:{message_id}"


def opted_out(number: str) -> str:
    return f"{PREFIX}:optout:{number}"


def rate(sender: str) -> str:
    return f"{PREFIX}:rate:{{{sender}}}:tat"


def rate_reply_waiting(sender: str) -> str:
    return f"{PREFIX}:rate:{{{sender}}}:reply-waiting"


def inbox(partition: int) -> str:
    return f"{PREFIX}:inbox:{{{partition}}}"


def inbox_owner(partition: int) -> str:
    return f"{PREFIX}:inbox:{{{partition}}}:owner"


def inbox_dead() -> str:
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
