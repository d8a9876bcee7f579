"""Who may do what, over plain HTTP against the served app: sign-in with the API key, a session
cookie (HttpOnly, SameSite=Strict), and every action refused (403) without a session or without
the session's CSRF token, while the same request with the token does act."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow.runtime.services import Services
from chatflow.web.dashboard.session import COOKIE
from conversations.demo import Demo
from tests.chatflow.web.dashboard.stack import KEY, Served, dashboard_config
from tests.flows import Payment
from tests.helpers import new_customer, web_client


def page_of(conversation: str) -> str:
    return f"/dashboard/conversations/{quote(conversation, safe=':+')}"


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found[1]


@contextlib.asynccontextmanager
async def signed_in(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        answer = await http.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})
        assert answer.status_code == 303 and COOKIE in http.cookies, answer.text
        yield http


@pytest.fixture
async def operator(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(served) as http:
        yield http


async def test_pages_and_their_json_need_a_session(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        page = await http.get("/dashboard?flow=demo")
        assert page.status_code == 303
        assert page.headers["location"] == "/dashboard/login?next=%2Fdashboard%3Fflow%3Ddemo"
        assert (await http.get("/dashboard/api/conversations")).status_code == 401
        assert (await http.get("/dashboard/api/conversations/chat:sms:+15005550006:+14155550100")).status_code == 401
        http.cookies.set(COOKIE, "forged-session-id", path="/dashboard")
        assert (await http.get("/dashboard")).status_code == 303


async def test_sign_in_checks_the_key_and_sets_a_strict_http_only_session_cookie(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        wrong = await http.post("/dashboard/login", data={"key": "guess", "next": "/dashboard"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        assert "That is not the API key." in wrong.text

        elsewhere = await http.post("/dashboard/login", data={"key": KEY, "next": "https://evil.example/"})
        assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/dashboard"
        cookie = elsewhere.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert {"HttpOnly", "Path=/dashboard", "SameSite=strict"} <= {p.strip() for p in cookie.split(";")}

        page = await http.get("/dashboard")
        assert page.status_code == 200 and "Sign out" in page.text
        assert "open-banner" not in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
        assert page.headers["x-frame-options"] == "DENY"


async def test_no_session_means_no_action(served: Served, operator: httpx.AsyncClient) -> None:
    conversation = await served.start_payment(new_customer())
    await served.until(conversation, step="ask")
    token = csrf_in((await operator.get(page_of(conversation))).text)  # a real token, of another session

    async with httpx.AsyncClient(base_url=served.url) as stranger:
        for action, form in (
            ("end", {"reason": "x"}),
            ("events", {"name": "payment_succeeded", "data": "{}"}),
            ("takeover", {"operator": "Mallory"}),
            ("replies", {"operator": "Mallory", "text": "click this link"}),
            ("handback", {"operator": "Mallory"}),
        ):
            answer = await stranger.post(f"{page_of(conversation)}/{action}", data={**form, "csrf": token})
            assert answer.status_code == 403, (action, answer.text)
        stranger.cookies.set(COOKIE, "forged-session-id", path="/dashboard")
        assert (await stranger.post(f"{page_of(conversation)}/end", data={"csrf": token})).status_code == 403
        assert (await stranger.post("/dashboard/logout", data={"csrf": token})).status_code == 403

    view = await served.view(conversation)
    assert (view["state"], view["step"], view["operator"]) == ("running", "ask", "")


@pytest.mark.parametrize(
    "action, form, effect",
    [
        ("end", {"reason": "asked by phone"}, {"state": "ended", "outcome": "cancelled", "reason": "asked by phone"}),
        ("events", {"name": "payment_succeeded", "data": '{"amount": 3}'}, {"state": "ended", "outcome": "completed"}),
        ("takeover", {"operator": "Ana"}, {"state": "running", "operator": "Ana"}),
    ],
)
async def test_an_action_needs_its_sessions_csrf_token(
    served: Served, operator: httpx.AsyncClient, action: str, form: dict[str, str], effect: dict[str, Any]
) -> None:
    conversation = await served.start_payment(new_customer())
    await served.until(conversation, step="ask")
    token = csrf_in((await operator.get(page_of(conversation))).text)
    async with signed_in(served) as other:
        other_token = csrf_in((await other.get(page_of(conversation))).text)
    assert other_token != token
    url = f"{page_of(conversation)}/{action}"

    for bad in ({}, {"csrf": ""}, {"csrf": "0" * len(token)}, {"csrf": other_token}, {"csrf": token + "x"}):
        answer = await operator.post(url, data={**form, **bad})
        assert answer.status_code == 403, (bad, answer.text)
        assert "CSRF" in answer.text
    json_body = await operator.post(url, json={**form, "csrf": token})  # only forms
    assert json_body.status_code == 415
    view = await served.view(conversation)
    assert (view["state"], view["step"], view["operator"]) == ("running", "ask", "")  # nothing happened

    answer = await operator.post(url, data={**form, "csrf": token})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(page_of(conversation) + "?done=")
    await served.until(conversation, **effect)


async def test_signing_out_needs_the_token_and_ends_the_session(served: Served, operator: httpx.AsyncClient) -> None:
    token = csrf_in((await operator.get("/dashboard")).text)
    assert (await operator.post("/dashboard/logout", data={"csrf": "nope"})).status_code == 403
    assert (await operator.get("/dashboard")).status_code == 200  # still signed in
    out = await operator.post("/dashboard/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
    assert (await operator.get("/dashboard")).status_code == 303


async def test_the_list_json_masks_customers_unless_asked(served: Served, operator: httpx.AsyncClient) -> None:
    customer = new_customer()
    conversation = await served.start_payment(customer)
    await served.until(conversation, step="ask")
    masked = (await operator.get("/dashboard/api/conversations", params={"customer": customer})).json()
    [row] = masked["rows"]
    assert (row["customer"], row["flow"], row["state"]) == (
        customer[:5] + "*****" + customer[-2:],
        "payment",
        "running",
    )
    assert row["title"] == conversation.removesuffix(customer) + row["customer"]
    shown = (await operator.get("/dashboard/api/conversations", params={"customer": customer, "show": "1"})).json()
    assert shown["rows"][0]["customer"] == customer
    bad = await operator.get("/dashboard/api/conversations", params={"state": "completed"})
    assert bad.status_code == 422 and "running, ended" in bad.json()["error"]


async def test_without_a_key_there_is_no_dashboard(served: Served, dev_env: WorkflowEnvironment) -> None:
    conversation = await served.start_payment(new_customer())
    await served.until(conversation, step="ask")
    services = await Services.start(
        dashboard_config(api_key=""),
        [Demo, Payment],
        client=dev_env.client,
        redis=served.services.redis,
        http=served.http,
    )
    async with web_client(services.web_app()) as http:
        for path in ("/dashboard", page_of(conversation), "/dashboard/login", "/dashboard/api/conversations"):
            answer = await http.get(path)
            assert answer.status_code == 503, (path, answer.text)
            assert "CHATFLOW_API_KEY is not set" in answer.text and conversation not in answer.text
        login = await http.post("/dashboard/login", data={"key": "", "next": "/dashboard"})
        assert login.status_code == 503 and COOKIE not in http.cookies
        ending = await http.post(f"{page_of(conversation)}/end", data={"csrf": "", "reason": "open"})
        assert ending.status_code == 503
    assert (await served.view(conversation))["state"] == "running"
