"""The list, page by page, against real Temporal visibility: every conversation once, newest
first, whether a page is one visibility call or a filter checks each run."""

from __future__ import annotations

import asyncio

import pytest

from chatflow.journeys.service import Journeys
from chatflow.web.dashboard import listing
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


async def test_a_filter_checking_each_run_stops_at_its_limit_and_goes_on_from_there(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        await served.until(await served.start_payment(new_customer()), step="ask")
    monkeypatch.setattr(listing, "SCAN_PAGE", 2)
    monkeypatch.setattr(listing, "SCAN_LIMIT", 2)
    listed = conversations(served)
    # No demo conversation on the journeys' number: each page reads 2 runs, finds none, goes on.
    first = await listed.page(Filters(number=JOURNEY_NUMBER, flow="demo"), size=2)
    assert (first.rows, first.scanned, first.partial) == ([], 2, True) and first.next
    second = await listed.page(Filters(number=JOURNEY_NUMBER, flow="demo"), size=2, cursor=first.next)
    assert second.rows == [] and second.scanned == 2
