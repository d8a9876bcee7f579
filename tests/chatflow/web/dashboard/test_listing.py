"""The list, page by page, against real Temporal visibility: every conversation once, newest
first, whether a page is one visibility call or a filter checks each run."""

from __future__ import annotations

import asyncio

import pytest

from chatflow.journeys.service import JourneyRequest, Journeys
from chatflow.web.dashboard.listing import ConversationList, Filters, Page
from tests.chatflow.web.dashboard.stack import JOURNEY_NUMBER, Served
from tests.helpers import new_customer


def conversations(served: Served) -> ConversationList:
    services = served.services
    return ConversationList(Journeys(services.config, services.client, services.redis, services.registry))


async def every_page(listed: ConversationList, filters: Filters, size: int) -> list[Page]:
    pages = [await listed.page(filters, size=size)]
    while pages[-1].next:
        pages.append(await listed.page(filters, size=size, cursor=pages[-1].next))
    return pages


@pytest.mark.parametrize("filters", [Filters(number=JOURNEY_NUMBER), Filters(number=JOURNEY_NUMBER, flow="payment")])
async def test_pages_hold_every_conversation_once_newest_first(served: Served, filters: Filters) -> None:
    started = [await served.start_payment(new_customer()) for _ in range(3)]
    for conversation in started:
        await served.until(conversation, step="ask")
    listed = conversations(served)
    for _ in range(100):  # visibility follows a moment behind
        pages = await every_page(listed, filters, size=2)
        ids = [row["id"] for page in pages for row in page.rows]
        if set(started) <= set(ids):
            break
        await asyncio.sleep(0.1)
    assert set(started) <= set(ids), ids
    runs = [row["run_id"] for page in pages for row in page.rows]
    assert len(runs) == len(set(runs))  # no run twice across pages
    assert all(len(page.rows) == 2 for page in pages[:-1])
    mine = [id for id in ids if id in started]
    assert mine == started[::-1]  # all running: the newest first
    assert all(row["flow"] == "payment" and row["number"] == JOURNEY_NUMBER for page in pages for row in page.rows)


async def listed_ids(listed: ConversationList, filters: Filters, expected: set[str]) -> set[str]:
    """The ids a filter lists, once visibility has caught up with what the test expects."""
    for _ in range(100):  # visibility follows a moment behind
        found = {row["id"] for page in await every_page(listed, filters, size=25) for row in page.rows}
        if found == expected:
            break
        await asyncio.sleep(0.1)
    return found


async def test_filters_on_what_the_workflow_keeps_current(served: Served) -> None:
    waiting, paid = new_customer(), new_customer()
    started = {customer: await served.start_payment(customer) for customer in (waiting, paid)}
    for conversation in started.values():
        await served.until(conversation, step="ask")
    await served.event(started[paid], "payment_succeeded")
    await served.until(started[paid], outcome="completed")
    listed = conversations(served)
    mine = {customer: Filters(number=JOURNEY_NUMBER, customer=customer) for customer in started}
    for customer, conversation in started.items():
        assert await listed_ids(listed, mine[customer], {conversation}) == {conversation}
    # The step and version where a conversation waits; how one ended.
    at_ask = Filters(number=JOURNEY_NUMBER, customer=waiting, flow="payment", version="1", step="ask")
    assert await listed_ids(listed, at_ask, {started[waiting]}) == {started[waiting]}
    done = Filters(number=JOURNEY_NUMBER, customer=paid, outcome="completed")
    assert await listed_ids(listed, done, {started[paid]}) == {started[paid]}
    rows = [row for page in await every_page(listed, done, size=25) for row in page.rows]
    assert [(row["flow"], row["version"], row["outcome"]) for row in rows] == [("payment", "1", "completed")]
    # Filters that match neither list nothing.
    for nothing in (
        Filters(number=JOURNEY_NUMBER, customer=waiting, step="paid"),
        Filters(number=JOURNEY_NUMBER, customer=waiting, flow="demo"),
        Filters(number=JOURNEY_NUMBER, customer=paid, outcome="failed"),
    ):
        assert (await listed.page(nothing)).rows == []


async def test_a_customers_conversations_beside_each_other_are_listed_each_on_its_own(served: Served) -> None:
    customer = new_customer()
    main = await served.start_payment(customer)
    await served.until(main, step="ask")
    services = served.services
    journeys = Journeys(
        services.config, services.client, services.redis, services.registry, task_queue=services.task_queue
    )
    beside = (await journeys.start(JourneyRequest("payment", customer, JOURNEY_NUMBER, when_busy="beside"))).id
    assert beside != main
    listed = conversations(served)
    mine = Filters(number=JOURNEY_NUMBER, customer=customer)
    assert await listed_ids(listed, mine, {main, beside}) == {main, beside}
    for conversation in (main, beside):
        await journeys.end(conversation, "test over")
