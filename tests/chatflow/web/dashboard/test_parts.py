"""The dashboard's parts on their own: sessions and CSRF tokens, masking, page cursors, the
visibility query each filter makes, the diagram's named steps."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from chatflow.domain.errors import Invalid
from chatflow.flows.graph import graph_of
from chatflow.flows.registry import FlowRegistry
from chatflow.journeys.service import Journeys
from chatflow.web.dashboard.diagram import flow_diagram
from chatflow.web.dashboard.listing import ConversationList, Filters, decode_cursor, encode_cursor
from chatflow.web.dashboard.routes import safe_next
from chatflow.web.dashboard.session import Sessions
from chatflow.web.dashboard.views import shown, title_of
from conversations.demo import Demo
from tests.chatflow.web.dashboard.stack import DEMO_NUMBER, JOURNEY_NUMBER, dashboard_config
from tests.flows import Payment


async def test_a_session_lives_in_redis_until_revoked_or_expired(redis: Redis) -> None:
    sessions = Sessions("k3y", redis, ttl=timedelta(hours=1))
    session = await sessions.issue()
    assert await sessions.read(session.id) == session
    [key] = await redis.keys("chatflow:dashboard:session:*")
    assert session.id not in key  # whoever reads Redis cannot sign in with what they read
    assert 3_500 < await redis.ttl(key) <= 3_600
    assert await Sessions("another key", redis).read(session.id) is None  # the key changed: signed out
    await sessions.revoke(session)
    assert await sessions.read(session.id) is None
    for junk in ("", "a.b", session.id + "x", "é", "x" * 1000):
        assert await sessions.read(junk) is None


async def test_csrf_tokens_belong_to_one_session(redis: Redis) -> None:
    sessions = Sessions("k3y", redis)
    first, second = await sessions.issue(), await sessions.issue()
    assert first.csrf != second.csrf and first.id != second.id
    assert first.csrf != first.id  # a CSRF token is not the cookie
    assert sessions.csrf_matches(first, first.csrf)
    assert not sessions.csrf_matches(first, second.csrf)
    assert not sessions.csrf_matches(first, "")
    assert not sessions.csrf_matches(first, "é")


def test_the_key_signs_in_and_no_key_never_does(redis: Redis) -> None:
    assert Sessions("k3y", redis).key_matches("k3y")
    assert not Sessions("k3y", redis).key_matches("k3Y")
    assert not Sessions("k3y", redis).key_matches("")
    assert not Sessions("", redis).key_matches("")


@pytest.mark.parametrize(
    "number, masked",
    [
        ("+14155550100", "+1415*****00"), ("+442071838750", "+4420******50"), ("+3312345", "+3*****5"), ("+12", "+**"),
        ("ana@example.com", "a***@example.com"),  # an email customer, masked as its kind masks it
    ],
)  # fmt: skip
def test_customer_numbers_are_masked(number: str, masked: str) -> None:
    assert shown(number, False) == masked and shown(number, True) == number


def test_a_title_masks_only_the_customer() -> None:
    assert title_of("chat:sms:+15005550006:+14155550100", False) == "chat:sms:+15005550006:+1415*****00"
    assert title_of("chat:sms:+15005550006:+14155550100", True) == "chat:sms:+15005550006:+14155550100"


def test_page_cursors_round_trip_and_damaged_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(b"\x00token\xff")) == b"\x00token\xff"
    for damaged in ("", "%%%", "a"):
        with pytest.raises(Invalid):
            decode_cursor(damaged)


def test_safe_next_stays_on_the_dashboard() -> None:
    assert safe_next("/dashboard/conversations/x?show=1") == "/dashboard/conversations/x?show=1"
    assert safe_next("/dashboard") == "/dashboard"
    for elsewhere in (
        "https://evil.example/dashboard",
        "//evil.example",
        "/dashboardx",
        "/api/conversations",
        "/dashboard/\r\nX: 1",
    ):
        assert safe_next(elsewhere) == "/dashboard"


def conversation_list() -> ConversationList:
    # Building a query touches neither Temporal nor Redis.
    return ConversationList(Journeys(dashboard_config(), None, None, FlowRegistry([Demo, Payment])))  # type: ignore[arg-type]


def test_each_filter_becomes_a_visibility_clause() -> None:
    listing = conversation_list()
    query = listing.query(
        Filters(
            flow="demo",
            version="v2",
            step="ask_order",
            state="ended",
            outcome="failed",
            customer="+1 415 555 0100",
            data="order_id = A-1",
        )
    )
    assert "ExecutionStatus != 'Running'" in query
    assert f"WorkflowId IN ('chat:sms:{DEMO_NUMBER}:+14155550100', 'chat:sms:{JOURNEY_NUMBER}:+14155550100')" in query
    for clause in (
        "ChatflowFlow = 'demo'",
        "ChatflowVersion = '2'",
        "ChatflowStep = 'ask_order'",
        "(ChatflowOutcome = 'failed' OR ExecutionStatus = 'Failed')",
        "ChatflowData = 'order_id=A-1'",
    ):
        assert clause in query
    assert listing.query(Filters(outcome="terminated")).endswith(
        "(ChatflowOutcome = 'terminated' OR ExecutionStatus = 'Terminated')"
    )
    assert f"WorkflowId STARTS_WITH 'chat:sms:{JOURNEY_NUMBER}:'" in listing.query(Filters(number=JOURNEY_NUMBER))
    assert listing.query(Filters(step="it's")).endswith("ChatflowStep = 'it\\'s'")


@pytest.mark.parametrize(
    "filters, says",
    [
        (Filters(flow="nope"), "flow must be one of demo, payment"),
        (Filters(state="completed"), "state must be one of running, ended"),
        (Filters(outcome="won"), "outcome must be one of"),
        (Filters(customer="12"), "customer"),
        (Filters(number="+14155550199"), "not one of our numbers"),
        (Filters(customer="+1415' OR 1=1"), "customer"),
        (Filters(version="two"), "version must be a number"),
        (Filters(version="٢"), "version must be a number"),
        (Filters(data="order_id"), "data must be key=value"),
    ],
)
def test_bad_filters_are_refused(filters: Filters, says: str) -> None:
    with pytest.raises(Invalid, match=re.escape(says)):
        conversation_list().query(filters)


def test_the_diagram_names_every_step_and_marks_the_current_one() -> None:
    drawn = flow_diagram(Demo, "ask_order")
    named = re.findall(r'<rect data-step="([^"]+)"( class="current")?', drawn)
    assert {name for name, _ in named} == set(graph_of(Demo).states)
    assert [name for name, current in named if current] == ["ask_order"]
    assert 'class="current"' not in flow_diagram(Demo, "")


def test_a_notification_in_the_transcript_says_to_whom_and_by_which_channel() -> None:
    from chatflow.web.dashboard.views import _turn

    notified = {
        "direction": "out",
        "text": "Order A-1 shipped",
        "at": "",
        "status": "sent",
        "to": "ana@example.com",
        "channel": "email",
    }
    assert '<span class="to">to ana@example.com by email</span>' in _turn(notified)
    assert 'class="to"' not in _turn(
        {**notified, "to": "", "channel": ""}
    )  # the customer, on the conversation's channel
