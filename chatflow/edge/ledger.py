"""The send ledger: no message sent twice because its result was lost on the way to Temporal.

A worker killed (or cancelled at shutdown) after the provider took a message but before Temporal
had the activity's result makes Temporal run the send again. Before calling the provider, the
send activity claims the send's idempotency key here (workflow id, run id and activity id: the
same for every attempt of one send, different for every other send); once the provider took the
message it records the provider's result under that key. An attempt that finds a result returns
it instead of sending again.

An attempt that finds a claim without a result follows one that ended without knowing whether
the provider took the message (killed mid-call, cancelled, timed out). Neither provider takes an
idempotency key, so nothing can tell; the activity sends again and counts a possible duplicate
(`chatflow.temporal.activities`). An attempt that knows the provider did not take the message
(refused, throttled, unreachable before the request left) releases its claim, so its retry is a
plain send.

One key per send, `chatflow:sent:<key>`, holding `claimed:<token>` or `sent:<result JSON>`, kept
for SENT_TTL: longer than Temporal retries a send (SEND_GIVE_UP_AFTER, an hour).

A send the provider took also records which conversation the provider's message id belongs to
(`chatflow:message:<id>`, `SentMessages`), for as long: a delivery status that names no
conversation (Twilio's status callbacks without To or From, a Meta status whose recipient cannot
be read, or one for a customer addressed another way) still reaches the one that sent it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import timedelta

from redis.asyncio import Redis

from chatflow.domain.messages import SendResult
from chatflow.edge import keys
from chatflow.temporal.activities import Claim

SENT_TTL = timedelta(days=3)

_CLAIMED, _SENT = "claimed:", "sent:"


def sent_message(message_id: str) -> str:
    """The conversation a provider's message id was sent from."""
    return f"{keys.PREFIX}:message:{message_id}"


def conversation_of(key: str) -> str:
    """The conversation (workflow id) of a send's idempotency key, `<workflow id>/<run id>/<send>`."""
    return key.rsplit("/", 2)[0]


# The state before the claim; a send already recorded stays as it is.
_CLAIM = """
local before = redis.call('GET', KEYS[1])
if before and string.sub(before, 1, 5) == 'sent:' then return before end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return before
"""

# Only the attempt's own claim: never a recorded send, nor a later attempt's claim.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SendLedger:
    """`chatflow.temporal.activities.Ledger` on Redis, shared by every worker."""

    def __init__(self, redis: Redis, ttl: timedelta = SENT_TTL) -> None:
        self._redis = redis
        self._ttl = int(ttl.total_seconds())
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def claim(self, key: str) -> Claim:
        token = uuid.uuid4().hex
        before = await self._claim(keys=[keys.sent(key)], args=[_CLAIMED + token, self._ttl])
        if before is None:
            return Claim(token)
        before = str(before)
        if before.startswith(_SENT):
            return Claim(token, sent=SendResult(**json.loads(before[len(_SENT) :])))
        return Claim(token, unknown=True)

    async def record(self, key: str, result: SendResult) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.sent(key), _SENT + json.dumps(asdict(result), separators=(",", ":")), ex=self._ttl)
            if result.message_id:
                pipe.set(sent_message(result.message_id), conversation_of(key), ex=self._ttl)
            await pipe.execute()

    async def release(self, key: str, claim: Claim) -> None:
        await self._release(keys=[keys.sent(key)], args=[_CLAIMED + claim.token])


class SentMessages:
    """Which conversation sent each provider message id, as the send ledger recorded it."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def conversation(self, message_id: str) -> str:
        """The conversation that sent `message_id`; "" when unknown (not ours, or older than SENT_TTL)."""
        return str(await self._redis.get(sent_message(message_id)) or "")
