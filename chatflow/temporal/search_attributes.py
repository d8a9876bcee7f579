"""The search attributes chatflow keeps on each conversation, so operators can find them.

Temporal indexes these in its visibility store; the dashboard and the journeys API filter on
them instead of reading every run. They must be registered on the namespace before any workflow
sets them (a workflow task that sets an unknown attribute fails, and would be retried for ever),
so every worker registers them before it takes a task (`ensure_registered`), and refuses to start
when it cannot: on Temporal Cloud the namespace's admin registers them once, with the command the
error gives.

What they cost: set when the run starts, nothing (Temporal Cloud counts no action for them). The
starter sets what it can know (`at_start`): the flow and, when its process deploys the flow, the
version a worker of the same deploy pins and the step the flow first waits at. Afterwards the
version, the step the conversation waits at, the operator who took it over, the journey's data
and the outcome are one upsert command whenever they differ from what is set, which is one
history event and, on Temporal Cloud, one billable action.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from chatflow.domain.addresses import mask_addresses
from chatflow.domain.errors import StartupError
from chatflow.flows.flow import Flow
from chatflow.flows.steps import NEXT, Say

FLOW = SearchAttributeKey.for_keyword("ChatflowFlow")
VERSION = SearchAttributeKey.for_keyword("ChatflowVersion")
STEP = SearchAttributeKey.for_keyword("ChatflowStep")
OUTCOME = SearchAttributeKey.for_keyword("ChatflowOutcome")
OPERATOR = SearchAttributeKey.for_keyword("ChatflowOperator")  # who has taken it over, if anyone
DATA = SearchAttributeKey.for_keyword_list("ChatflowData")  # "key=value" of the journey's data

KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
KEYWORD_LIST = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
REGISTERED: dict[str, IndexedValueType.ValueType] = {
    FLOW.name: KEYWORD,
    VERSION.name: KEYWORD,
    STEP.name: KEYWORD,
    OUTCOME.name: KEYWORD,
    OPERATOR.name: KEYWORD,
    DATA.name: KEYWORD_LIST,
}
_TYPE_NAMES = {KEYWORD: "Keyword", KEYWORD_LIST: "KeywordList"}

DATA_KEYS_LIMIT = 20  # the journey's top-level values indexed, at most
DATA_VALUE_LIMIT = 100  # characters; longer values are not indexed (nobody types them in a filter)


def data_entries(data: Mapping[str, Any], *, addresses: bool = True) -> list[str]:
    """The journey data a filter can find: `key=value` for each top-level text, number or boolean,
    in key order (so an unchanged journey never looks changed). Without `addresses`, a value that
    holds a phone number or an email address (any form the logs mask) is left out: Temporal keeps
    search attributes unencrypted, so with CHATFLOW_ID_KEY no customer's address is indexed."""
    entries = []
    for key, value in sorted(data.items()):
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not addresses and isinstance(value, (str, int)) and mask_addresses(str(value)) != str(value):
            continue
        if isinstance(value, (str, int, float)) and len(text := f"{key}={value}") <= DATA_VALUE_LIMIT:
            entries.append(text)
        if len(entries) == DATA_KEYS_LIMIT:
            break
    return entries


def progress(
    flow: str,
    data: Mapping[str, Any],
    version: int,
    step: str,
    outcome: str = "",
    operator: str = "",
    branches: Mapping[str, Any] | None = None,
    *,
    addresses: bool = True,
) -> list[SearchAttributeUpdate[Any]]:
    """The attributes that follow the conversation: its flow and the journey's data (a run that
    continued as new keeps those of the run before), version, step, who has it, how it ended.
    `branches`: the experiments' branches it was sent down (`split:<step>` data), indexed first
    so the journey's own data never crowds them out. `addresses`: see `data_entries`."""
    updates: list[SearchAttributeUpdate[Any]] = [
        FLOW.value_set(flow),
        VERSION.value_set(str(version)),
        STEP.value_set(step),
        OPERATOR.value_set(operator) if operator else OPERATOR.value_unset(),
    ]
    indexed = [*data_entries(branches or {}), *data_entries(data, addresses=addresses)]
    if entries := list(dict.fromkeys(indexed))[:DATA_KEYS_LIMIT]:
        updates.append(DATA.value_set(entries))
    if outcome:
        updates.append(OUTCOME.value_set(outcome))
    return updates


def at_start(flow: str, deployed: type[Flow] | None) -> TypedSearchAttributes:
    """The attributes a conversation can carry from its start: its flow, and when
    the starter's process deploys the flow (`deployed`, its newest version), that version and the
    step the flow first waits at. The workflow's first wait then upserts nothing when they hold;
    when they do not (a worker of another deploy pins another version, the flow goes elsewhere
    first) it upserts what differs, as it would have without them.

    Not the journey's data: a recorded history has it redacted (`chatflow.temporal.redact`), and
    the workflow compares what it wants with what the history says was set, so a replay would
    see a difference the run never saw, and upsert where the run did not."""
    step = first_wait(deployed) if deployed is not None else ""
    if deployed is not None and step:
        pairs = [SearchAttributePair(FLOW, flow), SearchAttributePair(VERSION, str(deployed.version))]
        return TypedSearchAttributes([*pairs, SearchAttributePair(STEP, step)])
    return TypedSearchAttributes([SearchAttributePair(FLOW, flow)])


def first_wait(flow: type[Flow]) -> str:
    """The step a new conversation of `flow` first waits at, when only `Say` steps (each goes on
    to a step its definition names) lead there from its first step; "" when something else
    (a call, a condition, code) decides the way. Worked out once per flow class."""
    if flow not in _FIRST_WAITS:
        _FIRST_WAITS[flow] = _first_wait(flow)
    return _FIRST_WAITS[flow]


_FIRST_WAITS: dict[type[Flow], str] = {}


def _first_wait(flow: type[Flow]) -> str:
    name = flow.first_step()
    for _ in range(len(flow.steps)):
        step = flow.steps[name]
        if step.waits:
            return name
        if not isinstance(step, Say):
            return ""
        name = flow.next_step(name, NEXT)
    return ""


# Namespaces (address, name) known to have chatflow's attributes, or when they last did not.
_REGISTERED: dict[tuple[str, str], bool | float] = {}
ASK_AGAIN_AFTER = 60.0  # seconds after a namespace lacked them


async def registered(client: Client) -> bool:
    """Whether the client's namespace has chatflow's attributes, so a start may set them (a start
    setting one it lacks is refused). Asked once, and a minute after a no: before the first worker
    registers them, conversations start without (their first upsert sets them)."""
    where = (client.service_client.config.target_host, client.namespace)
    known = _REGISTERED.get(where)
    if known is True or (known is not None and time.monotonic() - known < ASK_AGAIN_AFTER):
        return known is True
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        have = {**listed.system_attributes, **listed.custom_attributes}
        found = all(name in have for name in REGISTERED)
    except RPCError:  # the time-skipping test server lists nothing; a key may not be allowed to
        found = False
    _REGISTERED[where] = True if found else time.monotonic()
    return found


def refused(client: Client, error: RPCError) -> bool:
    """Whether Temporal refused a start for a search attribute its namespace lacks (a server
    replaced since they were found, or the attributes removed): then they are unknown again."""
    if error.status != RPCStatusCode.INVALID_ARGUMENT or "search attribute" not in error.message.lower():
        return False
    _REGISTERED[(client.service_client.config.target_host, client.namespace)] = time.monotonic()
    return True


async def ensure_registered(client: Client) -> None:
    """Register chatflow's search attributes on the client's namespace, once; a no-op after."""
    await _register(client)
    _REGISTERED[(client.service_client.config.target_host, client.namespace)] = True


async def _register(client: Client) -> None:
    missing = dict(REGISTERED)
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as error:
        # The time-skipping test server lists nothing but registers; anything else is an answer.
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise _cannot_register(client, error) from None
    else:
        known = {**listed.system_attributes, **listed.custom_attributes}
        missing = {name: kind for name, kind in missing.items() if name not in known}
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:  # another worker registered them first
            raise _cannot_register(client, error) from None


def _cannot_register(client: Client, error: RPCError) -> StartupError:
    wanted = ", ".join(f"{name}={_TYPE_NAMES[kind]}" for name, kind in REGISTERED.items())
    return StartupError(
        f"cannot register chatflow's search attributes on namespace {client.namespace!r} "
        f"({error.message}); register them once ({wanted}) with `tcld namespace search-attributes add` "
        "on Temporal Cloud or `temporal operator search-attribute create` on your own cluster"
    )
