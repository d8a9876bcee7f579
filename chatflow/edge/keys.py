"""Every Redis key the edge uses, in one place, so no two modules collide and ops can find them.

Keys that a Lua script or a MULTI/EXEC transaction touches together share a `{hash tag}`, so
they land in one slot of a Redis/Valkey Cluster (tests/chatflow/edge/test_key_slots.py checks every
script and transaction in chatflow for it). Build every key here, never inline.

A key name never holds a customer's address when CHATFLOW_ID_KEY is set: it holds their keyed
token (`chatflow.domain.addresses.customer_token`), or a conversation id, which holds it too.
Values may hold addresses (Redis is not listed by Temporal's UI; protect it as the data store it is).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from chatflow.domain.addresses import customer_token

PREFIX = "chatflow"

# The inbound buffer's streams (`chatflow.edge.buffer`); a conversation's messages go to one.
PARTITIONS = 16


def partition_of(conversation: str, partitions: int = PARTITIONS) -> int:
    return zlib.crc32(conversation.encode()) % partitions


def seen(message_id: str, partition: int) -> str:
    """A provider message id claimed at the edge. In the slot of the buffer partition its
    conversation's messages go to: the claim and the XADD are one script."""
    return f"{PREFIX}:inbox:{{{partition}}}:seen:{message_id}"


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


def service_window(number: str, customer: str) -> str:
    """When the customer last wrote to `number` on WhatsApp (`chatflow.edge.windows`); the
    customer by their keyed token with CHATFLOW_ID_KEY, as every key name here names them."""
    return f"{PREFIX}:window:{number}:{customer_token(customer)}"


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


def beside(conversation_id: str) -> str:
    """The conversations a customer has beside their main one on a number (journeys with
    when_busy "beside"), by the main one's id (`chatflow.edge.beside`)."""
    return f"{PREFIX}:beside:{conversation_id}"


def asking(conversation_id: str) -> str:
    """Set while the customer is asked which of their conversations beside the main one a reply
    is for (`chatflow.temporal.which`), by the main one's id."""
    return f"{PREFIX}:asking:{conversation_id}"


def reply_route(message_id: str) -> str:
    """Which of a customer's conversations a message went to, decided once for its retries."""
    return f"{PREFIX}:reply-route:{message_id}"


def idempotency(key: str) -> str:
    return f"{PREFIX}:idempotency:{key}"


# The journey queue's lists and their index change in one transaction: one slot for all.
def queued_journeys(conversation_id: str) -> str:
    return f"{PREFIX}:{{queued}}:{conversation_id}"


def queued_index() -> str:
    return f"{PREFIX}:{{queued}}"


# What an earlier chatflow named the queue's and the digests' keys, before they took a hash tag
# (`chatflow.edge.renamed_keys` moves them): whole names, then prefixes with today's builder.
NAMES_BEFORE_HASH_TAGS: tuple[tuple[str, str], ...] = ((f"{PREFIX}:queued", queued_index()),)
PREFIXES_BEFORE_HASH_TAGS: tuple[tuple[str, Callable[[str], str]], ...] = ((f"{PREFIX}:queued:", queued_journeys),)


def broadcast(broadcast_id: str) -> str:
    return f"{PREFIX}:broadcast:{broadcast_id}"


def digest_window(member: str = "") -> str:
    """A digest window's events; with no member, the prefix (the pop script builds the key, so
    every window shares the due set's slot). `member` names the customer by `customer_token`
    (`chatflow.edge.digest`)."""
    return f"{PREFIX}:{{digest}}:window:{member}"


def digest_due() -> str:
    return f"{PREFIX}:{{digest}}:due"


NAMES_BEFORE_HASH_TAGS += ((f"{PREFIX}:digest:due", digest_due()),)
PREFIXES_BEFORE_HASH_TAGS += ((f"{PREFIX}:digest:window:", digest_window),)


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


def sink_appended() -> str:
    """The batches of lifecycle events kept in Temporal while Redis was away that were appended
    to `sink_events` (in its hash slot: one script does both)."""
    return f"{{{sink_events()}}}:appended"


def sink_dead(sink: str) -> str:
    """A sink's batches that could not be delivered, put aside."""
    return f"{PREFIX}:sinks:{sink}:dead"


def sink_again(sink: str) -> str:
    """A sink's dead letters sent again, for its relay (in `sink_dead`'s hash slot)."""
    return f"{{{sink_dead(sink)}}}:again"


def auth_failures(client: str = "") -> str:
    """Wrong API keys from one client address (`chatflow.web.access`); with none, the prefix."""
    return f"{PREFIX}:auth-failures:{client}"


def dashboard_session(digest: str = "") -> str:
    """A dashboard sign-in, by its cookie's digest (`chatflow.web.dashboard.session`)."""
    return f"{PREFIX}:dashboard:session:{digest}"
