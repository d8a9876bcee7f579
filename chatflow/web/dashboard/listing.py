"""The conversations list: filters turned into a Temporal visibility query, read a page at a time.

The base query (conversation workflows, running or ended, the WorkflowId prefix of one of our
numbers) is the journeys service's own (`Journeys.list_query`). Every other filter is a clause on
a search attribute the workflow keeps current (`chatflow.temporal.search_attributes`) or on the
workflow id (the customer, or their keyed token with CHATFLOW_ID_KEY), so a page costs one
visibility call however many conversations there are, and each row is read from the listing
itself (a hashed id's customer from the run's memo, which the listing carries).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import BESIDE_MARK, ConversationRef, e164
from chatflow.domain.errors import Invalid
from chatflow.journeys.service import CLOSED_OUTCOMES, OUTCOMES, STATES, Journeys
from chatflow.temporal.client import execution_customer
from chatflow.temporal.search_attributes import DATA, FLOW, OUTCOME, STEP, VERSION

PAGE_SIZES = (25, 50, 100)
FILTER_NAMES = ("flow", "version", "step", "state", "outcome", "number", "customer", "data")


@dataclass(frozen=True)
class Filters:
    flow: str = ""
    version: str = ""  # a number, with or without the "v"
    step: str = ""  # where a running conversation waits, or where an ended one stopped
    state: str = ""  # running | ended
    outcome: str = ""  # completed | cancelled | expired | failed | terminated
    number: str = ""  # one of our numbers
    customer: str = ""
    data: str = ""  # key=value, a top-level value of the journey's data

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filters:
        return cls(**{name: params.get(name, "").strip() for name in FILTER_NAMES})

    def items(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


def quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Page:
    rows: list[dict[str, Any]] = field(default_factory=list)
    next: str = ""  # the cursor of the next page; "" on the last


class ConversationList:
    """Pages of conversations (one row per run), newest first as visibility orders them: running
    ones by start, newest first, then ended ones by end, most recent first (SQL visibility has
    no ORDER BY)."""

    def __init__(self, journeys: Journeys) -> None:
        self.journeys = journeys

    def flows(self) -> list[str]:
        return self.journeys.flows.names()

    def query(self, filters: Filters) -> str:
        if filters.state and filters.state not in STATES:
            raise Invalid(f"state must be one of {', '.join(STATES)}")
        clauses = [self.journeys.list_query(state=filters.state, number=filters.number)]
        if filters.flow:
            if filters.flow not in self.journeys.flows:
                raise Invalid(f"flow must be one of {', '.join(self.flows()) or 'the deployed flows'}")
            clauses.append(equals(FLOW, filters.flow))
        if filters.version:
            version = filters.version.removeprefix("v")
            if not version.isascii() or not version.isdigit():
                raise Invalid("version must be a number, such as 2")
            clauses.append(equals(VERSION, str(int(version))))
        if filters.step:
            clauses.append(equals(STEP, filters.step))
        if filters.outcome:
            if filters.outcome not in OUTCOMES:
                raise Invalid(f"outcome must be one of {', '.join(OUTCOMES)}")
            clauses.append(outcome_clause(filters.outcome))
        if filters.customer:
            clauses.append(self._customer_clause(filters.customer))
        if filters.data:
            key, equal, value = filters.data.partition("=")
            if not equal or not key.strip():
                raise Invalid("data must be key=value, such as order_id=A-1001")
            clauses.append(equals(DATA, f"{key.strip()}={value.strip()}"))
        return " AND ".join(clauses)

    def _customer_clause(self, customer: str) -> str:
        """A customer's conversations: one main id per channel and number of ours, and the
        conversations beside each (named after it)."""
        try:
            customer = e164(customer, what="customer")
        except ValueError as error:
            raise Invalid(str(error)) from None
        ids = sorted({ConversationRef(b.channel, b.number, customer).id for b in self.journeys.config.numbers})
        if not ids:
            raise Invalid("no numbers in the config: there are no conversations to list")
        beside = [f"WorkflowId STARTS_WITH {quoted(i + BESIDE_MARK)}" for i in ids]
        return f"(WorkflowId IN ({', '.join(quoted(i) for i in ids)}) OR {' OR '.join(beside)})"

    async def page(self, filters: Filters, *, size: int = PAGE_SIZES[0], cursor: str = "") -> Page:
        if not 0 < size <= max(PAGE_SIZES):
            raise Invalid(f"size must be one of {', '.join(map(str, PAGE_SIZES))}")
        token = decode_cursor(cursor) if cursor else None
        listing = self.journeys.client.list_workflows(self.query(filters), page_size=size, next_page_token=token)
        try:
            await listing.fetch_next_page()
        except RPCError as error:
            if error.status == RPCStatusCode.INVALID_ARGUMENT and token is not None:
                raise Invalid("this page link no longer works: start again from the first page") from None
            raise
        next_token = listing.next_page_token
        return Page(
            rows=[row(execution, await execution_customer(execution)) for execution in listing.current_page or []],
            next=encode_cursor(next_token) if next_token else "",
        )


def equals(key: SearchAttributeKey[Any], value: str) -> str:
    return f"{key.name} = {quoted(value)}"


def outcome_clause(outcome: str) -> str:
    """Runs that ended with `outcome`: the flow's own ending sets the Outcome attribute; Temporal
    closing the run some other way (terminate, time out) leaves only the execution status."""
    clauses = [equals(OUTCOME, outcome)]
    clauses += [
        f"ExecutionStatus = '{_camel(status.name)}'" for status, closed in CLOSED_OUTCOMES.items() if closed == outcome
    ]
    return "(" + " OR ".join(clauses) + ")"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def row(execution: WorkflowExecution, customer: str) -> dict[str, Any]:
    """One run as the service's `list` describes it, the parts of its id, and where it is;
    `customer` as the id or, for a hashed one (CHATFLOW_ID_KEY), the run's memo names them."""
    try:
        address = ConversationRef.parse(execution.id)
        channel, number = address.channel, address.number
    except ValueError:
        channel = number = ""
    attributes = execution.typed_search_attributes
    running = execution.status == WorkflowExecutionStatus.RUNNING
    outcome = ""
    if not running and execution.status is not None:
        outcome = attributes.get(OUTCOME) or CLOSED_OUTCOMES.get(execution.status, "")
    return {
        "id": execution.id,
        "run_id": execution.run_id,
        "channel": channel,
        "number": number,
        "customer": customer,
        "state": "running" if running else "ended",
        "outcome": outcome,
        "flow": attributes.get(FLOW) or "",
        "version": attributes.get(VERSION) or "",
        "step": attributes.get(STEP) or "",
        "started_at": execution.start_time.isoformat(),
        "closed_at": execution.close_time.isoformat() if execution.close_time else None,
    }


def encode_cursor(token: bytes) -> str:
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(cursor: str) -> bytes:
    try:
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, binascii.Error):
        raise Invalid("this page link is damaged: start again from the first page") from None
    if not token:
        raise Invalid("this page link is damaged: start again from the first page")
    return token
