"""The conversations list: filters turned into a Temporal visibility query, read a page at a time.

The base query (conversation workflows, running or ended, the WorkflowId prefix of one of our
numbers) is the journeys service's own (`Journeys.list_query`). The dashboard adds the customer
(the ids a customer can have on our numbers) and pages with Temporal's page tokens, so a page
costs one visibility call however many conversations there are.

Visibility cannot search the memo (the flow) nor a run's result (the outcome) yet, so those two
filters narrow the query as far as visibility can (an outcome comes from some execution
statuses only) and then check each listed run, reading at most SCAN_LIMIT runs for one page and
saying so when they stop short. Each filter is one entry in `ConversationList.filters`: once the
workflow sets search attributes, `Checked("flow")` becomes `Searchable("flow", keyword("Flow"))`,
the outcome likewise, and step and version filters are one `Searchable` each.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import conversation_id, e164, parse_conversation_id
from chatflow.domain.errors import Invalid
from chatflow.flows.steps import OUTCOMES as FLOW_OUTCOMES
from chatflow.journeys.service import CLOSED_OUTCOMES, LIST_CONCURRENCY, OUTCOMES, STATES, Journeys

PAGE_SIZES = (25, 50, 100)
SCAN_PAGE = 100  # runs per visibility call when a filter checks each run
SCAN_LIMIT = 1000  # runs one dashboard page reads at most for such filters
OUTCOMES_KEPT = 10_000  # ended runs whose outcome is remembered (it never changes)
FILTER_NAMES = ("flow", "state", "outcome", "number", "customer")


@dataclass(frozen=True)
class Filters:
    flow: str = ""
    state: str = ""  # running | ended
    outcome: str = ""  # completed | cancelled | expired | failed | terminated
    number: str = ""  # one of our numbers
    customer: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filters:
        return cls(**{name: params.get(name, "").strip() for name in FILTER_NAMES})

    def items(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


def quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def keyword(attribute: str) -> Callable[[str], str]:
    """A clause on a keyword search attribute (for filters visibility can search)."""
    return lambda value: f"{attribute} = {quoted(value)}"


@dataclass(frozen=True)
class Searchable:
    """A filter visibility answers: `clause` turns the value into a query clause."""

    name: str
    clause: Callable[[str], str]


@dataclass(frozen=True)
class Checked:
    """A filter visibility cannot answer yet: the row's field of that name is compared on each
    listed run; `narrow` (a clause) first leaves out runs that cannot match."""

    name: str
    narrow: Callable[[str], str] | None = None


@dataclass
class Criteria:
    clauses: list[str]
    checks: dict[str, str] = field(default_factory=dict)  # row field -> the value it must have

    @property
    def query(self) -> str:
        return " AND ".join(self.clauses)


@dataclass
class Page:
    rows: list[dict[str, Any]] = field(default_factory=list)
    next: str = ""  # the cursor of the next page; "" on the last
    scanned: int = 0  # runs read from visibility
    partial: bool = False  # stopped at SCAN_LIMIT before the page was full: `next` goes on looking


class ConversationList:
    """Pages of conversations (one row per run), newest first as visibility orders them: running
    ones by start, newest first, then ended ones by end, most recent first (SQL visibility has
    no ORDER BY)."""

    def __init__(self, journeys: Journeys) -> None:
        self.journeys = journeys
        # state and number are the service's own query (`Journeys.list_query`); these follow.
        self.filters: list[Searchable | Checked] = [
            Searchable("customer", self._customer_clause),
            # In the memo only, until the workflow sets a Flow search attribute.
            Checked("flow"),
            # In the run's result only, until the workflow sets an Outcome search attribute.
            Checked("outcome", narrow=_outcome_statuses),
        ]
        self._outcomes: OrderedDict[str, str] = OrderedDict()  # run id -> outcome, for ended runs

    def flows(self) -> list[str]:
        return self.journeys.flows.names()

    def criteria(self, filters: Filters) -> Criteria:
        if filters.state and filters.state not in STATES:
            raise Invalid(f"state must be one of {', '.join(STATES)}")
        criteria = Criteria([self.journeys.list_query(state=filters.state, number=filters.number)])
        if filters.flow and filters.flow not in self.journeys.flows:
            raise Invalid(f"flow must be one of {', '.join(self.flows()) or 'the deployed flows'}")
        if filters.outcome and filters.outcome not in OUTCOMES:
            raise Invalid(f"outcome must be one of {', '.join(OUTCOMES)}")
        values = filters.items()
        for spec in self.filters:
            value = values.get(spec.name, "")
            if not value:
                continue
            if isinstance(spec, Searchable):
                criteria.clauses.append(spec.clause(value))
            else:
                if spec.narrow is not None:
                    criteria.clauses.append(spec.narrow(value))
                criteria.checks[spec.name] = value
        return criteria

    def _customer_clause(self, customer: str) -> str:
        """A customer's conversations: one id per channel and number of ours."""
        try:
            customer = e164(customer, what="customer")
        except ValueError as error:
            raise Invalid(str(error)) from None
        ids = sorted({conversation_id(b.channel, b.number, customer) for b in self.journeys.config.numbers})
        if not ids:
            raise Invalid("no numbers in the config: there are no conversations to list")
        return f"WorkflowId IN ({', '.join(quoted(i) for i in ids)})"

    async def page(self, filters: Filters, *, size: int = PAGE_SIZES[0], cursor: str = "") -> Page:
        if not 0 < size <= SCAN_PAGE:
            raise Invalid(f"size must be one of {', '.join(map(str, PAGE_SIZES))}")
        criteria = self.criteria(filters)
        token, skip = decode_cursor(cursor) if cursor else (None, 0)
        fetch = SCAN_PAGE if criteria.checks else size
        page = Page()
        while True:
            executions, next_token = await self._visibility_page(criteria.query, fetch, token)
            candidates = list(enumerate(executions))[skip:]
            page.scanned += len(candidates)
            for index, found in zip([i for i, _ in candidates], await self._rows([e for _, e in candidates]), strict=True):
                if any(found[name] != value for name, value in criteria.checks.items()):
                    continue
                page.rows.append(found)
                if len(page.rows) == size:
                    if index + 1 < len(executions):
                        page.next = encode_cursor(token, index + 1)
                    elif next_token:
                        page.next = encode_cursor(next_token, 0)
                    return page
            if not next_token:
                return page
            token, skip = next_token, 0
            if page.scanned >= SCAN_LIMIT:
                page.next, page.partial = encode_cursor(token, 0), True
                return page

    async def _visibility_page(
        self, query: str, size: int, token: bytes | None
    ) -> tuple[Sequence[WorkflowExecution], bytes | None]:
        listing = self.journeys.client.list_workflows(query, page_size=size, next_page_token=token)
        try:
            await listing.fetch_next_page()
        except RPCError as error:
            if error.status == RPCStatusCode.INVALID_ARGUMENT and token is not None:
                raise Invalid("this page link no longer works: start again from the first page") from None
            raise
        return listing.current_page or [], listing.next_page_token

    async def _rows(self, executions: Sequence[WorkflowExecution]) -> list[dict[str, Any]]:
        lookups = asyncio.Semaphore(LIST_CONCURRENCY)

        async def one(execution: WorkflowExecution) -> dict[str, Any]:
            async with lookups:
                return row(execution, await execution.memo(), await self.outcome(execution))

        return list(await asyncio.gather(*(one(execution) for execution in executions)))

    async def outcome(self, execution: WorkflowExecution) -> str:
        """How a run ended ("" while it runs), read once per ended run: it never changes."""
        if execution.status in (None, WorkflowExecutionStatus.RUNNING):
            return ""
        known = self._outcomes.get(execution.run_id)
        if known is None:
            # The service reads it as its own list does (the run's result, or how Temporal closed it).
            known = await self.journeys._outcome(execution)
            self._outcomes[execution.run_id] = known
            while len(self._outcomes) > OUTCOMES_KEPT:
                self._outcomes.popitem(last=False)
        return known


def _outcome_statuses(outcome: str) -> str:
    """The execution statuses a run with this outcome can have: a flow's own End completes the
    run; Temporal closing it some other way gives the rest."""
    statuses = [status for status, closed in CLOSED_OUTCOMES.items() if closed == outcome]
    if outcome in FLOW_OUTCOMES:
        statuses.append(WorkflowExecutionStatus.COMPLETED)
    clauses = [f"ExecutionStatus = '{_camel(status.name)}'" for status in statuses]
    return "(" + " OR ".join(clauses) + ")"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def row(execution: WorkflowExecution, memo: Mapping[str, Any], outcome: str) -> dict[str, Any]:
    """One run as the service's `list` describes it, and the parts of its id."""
    try:
        address = parse_conversation_id(execution.id)
        channel, number, customer = address.channel, address.number, address.customer
    except ValueError:
        channel = number = customer = ""
    return {
        "id": execution.id,
        "run_id": execution.run_id,
        "channel": channel,
        "number": number,
        "customer": customer,
        "state": "running" if execution.status == WorkflowExecutionStatus.RUNNING else "ended",
        "outcome": outcome,
        "flow": str(memo.get("flow", "")),
        "started_at": execution.start_time.isoformat(),
        "closed_at": execution.close_time.isoformat() if execution.close_time else None,
    }


def encode_cursor(token: bytes | None, skip: int) -> str:
    raw = json.dumps({"t": base64.b64encode(token or b"").decode(), "s": skip}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[bytes | None, int]:
    damaged = Invalid("this page link is damaged: start again from the first page")
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        token, skip = base64.b64decode(raw["t"], validate=True), raw["s"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise damaged from None
    if not isinstance(skip, int) or not 0 <= skip < SCAN_PAGE:
        raise damaged
    return token or None, skip
