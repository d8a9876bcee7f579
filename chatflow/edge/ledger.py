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
        await self._redis.set(keys.sent(key), _SENT + json.dumps(asdict(result), separators=(",", ":")), ex=self._ttl)

    async def release(self, key: str, claim: Claim) -> None:
        await self._release(keys=[keys.sent(key)], args=[_CLAIMED + claim.token])
