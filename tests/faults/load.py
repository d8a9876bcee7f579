"""A bounded load of signed Twilio webhooks, and what the fake provider's record says of it.

Each customer sends numbered messages (`m1`, `m2`, ...), one after the other once the last was
acknowledged, alternating between the two web processes. A post that finds its web process
dead goes to the other one with the same MessageSid, as a load balancer (or Twilio's retry)
would. With `copies` > 1 every message is posted that many times at once, to both processes.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from bench.config import ACCOUNT_SID, AUTH_TOKEN, NUMBER
from chatflow.domain.addresses import ConversationRef
from tests.faults.stack import FaultStack

WEBHOOK = "/webhooks/twilio"
ECHO = re.compile(r"^m(\d+) #(\d+)$")
REROUTE_FOR = 60.0  # seconds a message keeps looking for a live web process

_customers = itertools.count(1)


@dataclass(frozen=True)
class Load:
    customers: int
    messages: int  # per customer
    gap: float  # seconds between a customer's acknowledgement and its next message


@dataclass
class Tally:
    """One scenario's figures; every count but `duplicate_sends` must be 0."""

    scenario: str
    kills: int
    webhooks: int = 0  # posts made, copies and reroutes included
    acknowledged: int = 0  # messages with a 2xx answer
    lost: int = 0  # acknowledged, never echoed
    twice: int = 0  # echoed by two different runs of the flow's step
    reordered: int = 0  # echoed before an earlier message of the same customer
    refused: int = 0  # non-2xx answers
    duplicate_sends: int = 0  # one echo reaching the provider more than once
    possible_duplicates: int = 0  # the worker's own count of sends it could not rule out
    rerouted: int = 0  # posts that found their web process dead
    first_refusal: str = ""
    examples: list[str] = field(default_factory=list)  # a few customers' echoes, when something is off

    @property
    def per_crash(self) -> float:
        return self.duplicate_sends / self.kills if self.kills else 0.0


@dataclass
class Driver:
    stack: FaultStack
    load: Load
    copies: int = 1
    customers: list[str] = field(default_factory=list)
    acked: dict[str, list[int]] = field(default_factory=dict)
    posts: int = 0
    refused: list[str] = field(default_factory=list)
    rerouted: int = 0
    sids: dict[str, list[str]] = field(default_factory=dict)  # customer -> MessageSid of each message
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.customers = [f"+1628555{next(_customers) % 10_000:04d}" for _ in range(self.load.customers)]
        self.acked = {customer: [] for customer in self.customers}
        self.sids = {customer: [] for customer in self.customers}

    @property
    def total(self) -> int:
        return self.load.customers * self.load.messages

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
            await asyncio.gather(*(self._customer(http, c) for c in self.customers))

    async def acknowledged(self, fraction: float) -> None:
        """Until `fraction` of the load's messages have been acknowledged."""
        async with self._progress:
            await self._progress.wait_for(lambda: sum(map(len, self.acked.values())) >= fraction * self.total)

    async def _customer(self, http: httpx.AsyncClient, customer: str) -> None:
        for n in range(1, self.load.messages + 1):
            sid = "SM" + uuid.uuid4().hex
            self.sids[customer].append(sid)
            answers = await asyncio.gather(
                *(self._post(http, (n + copy) % 2, customer, f"m{n}", sid) for copy in range(self.copies))
            )
            if any(200 <= status < 300 for status in answers):
                async with self._progress:
                    self.acked[customer].append(n)
                    self._progress.notify_all()
            await asyncio.sleep(self.load.gap)  # the pace of the load, not a wait for anything

    async def _post(self, http: httpx.AsyncClient, web: int, customer: str, text: str, sid: str) -> int:
        fields = {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "From": customer,
            "To": NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REROUTE_FOR
        while True:
            url = self.stack.web_urls[web] + WEBHOOK
            signature = RequestValidator(AUTH_TOKEN).compute_signature(url, fields)
            self.posts += 1
            try:
                answer = await http.post(url, data=fields, headers={"X-Twilio-Signature": signature})
            except httpx.TransportError:
                if loop.time() > deadline:
                    raise
                self.rerouted += 1
                web = 1 - web
                await asyncio.sleep(0.05)
                continue
            if not 200 <= answer.status_code < 300:
                self.refused.append(f"{answer.status_code} {answer.text[:200]}")
            return answer.status_code

    async def settled(self, timeout: float) -> None:
        """Until every acknowledged message was echoed and no conversation has a send or a step
        in flight (a duplicate still to come would be one of those)."""
        fake = self.stack.fake
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def echoed_all() -> bool:
            return all(set(self.acked[c]) <= {n for n, _ in echoes(fake.bodies.get(c, []))} for c in self.customers)

        while not echoed_all():
            if loop.time() > deadline:
                return  # what is missing is counted as lost
            await asyncio.sleep(0.2)
        client = await Client.connect(self.stack.temporal.address)
        ids = [ConversationRef("sms", NUMBER, customer).id for customer in self.customers]
        while loop.time() < deadline:
            described = await asyncio.gather(*(client.get_workflow_handle(i).describe() for i in ids))
            if not any(
                d.raw_description.pending_activities or d.raw_description.HasField("pending_workflow_task")
                for d in described
            ):
                return
            await asyncio.sleep(0.2)

    def tally(self, scenario: str, kills: int, possible_duplicates: int) -> Tally:
        tally = Tally(
            scenario,
            kills,
            webhooks=self.posts,
            refused=len(self.refused),
            rerouted=self.rerouted,
            possible_duplicates=possible_duplicates,
            first_refusal=next(iter(self.refused), ""),
        )
        for customer in self.customers:
            bodies = self.stack.fake.bodies.get(customer, [])
            tally.acknowledged += len(self.acked[customer])
            tally.duplicate_sends += sum(count - 1 for count in Counter(bodies).values())
            runs: dict[int, set[int]] = {}
            order: list[int] = []
            for n, answered in echoes(bodies):
                if n not in runs:
                    order.append(n)
                runs.setdefault(n, set()).add(answered)
            tally.lost += len(set(self.acked[customer]) - set(runs))
            tally.twice += sum(len(counts) - 1 for counts in runs.values())
            wrong = sum(1 for i, n in enumerate(order) if any(m > n for m in order[:i]))
            tally.reordered += wrong
            if (wrong or len(bodies) > len(order)) and len(tally.examples) < 3:
                tally.examples.append(f"{customer}: {bodies} (MessageSids {self.sids[customer]})")
        return tally


def echoes(bodies: list[str]) -> list[tuple[int, int]]:
    """(message number, the flow's answer count) of each echo, in the order the provider got them."""
    found = []
    for body in bodies:
        match = ECHO.match(body)
        if match is None:
            raise AssertionError(f"the provider was sent something the echo flow never says: {body!r}")
        found.append((int(match[1]), int(match[2])))
    return found
