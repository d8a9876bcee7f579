"""What an `Http` step really sends, seen by the business's API on loopback (real uvicorn):
values from conversations are encoded where they land, the host comes from the flow's code, the
worker's own network is refused unless allowed, and secrets reach the API but not the history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, End, Flow, FlowDefinitionError, Http, Say, anything, secret
from chatflow.testing import FlowTest
from tests.chatflow.temporal.business_api import business_api
from tests.chatflow.temporal.histories import history_text


def order_lookup(api: str, **http: Any) -> type[Flow]:
    """A flow asking for an order number and looking it up at `{api}/orders/{order}`."""

    class OrderLookup(Flow):
        defaults = {"api": api}
        ask = Ask("Your order number?", branches={anything: "look_up"}, save_as="order")
        look_up = Http("GET", "{api}/orders/{order}", save_as="found", on_error="sorry", retries=0, **http)
        found_it = End("completed", "Found it.")
        sorry = End("failed", "Sorry, we could not look it up.")

    return OrderLookup


async def trace_of(chat: FlowTest) -> list[str]:
    snapshot = await chat.snapshot()
    assert snapshot is not None
    return [line.text for line in snapshot.trace]


async def test_a_reply_reaches_the_business_api_as_one_encoded_path_segment(skipping_env: WorkflowEnvironment) -> None:
    async with business_api() as api:
        async with FlowTest(skipping_env, order_lookup(api.url), http_allow=[api.host]) as chat:
            await chat.start()
            assert await chat.send("../../admin?x=1#") == ["Found it."]
    [seen] = api.requests
    assert seen.raw_path == "/orders/..%2F..%2Fadmin%3Fx%3D1%23"
    assert seen.query == ""


async def test_a_reply_of_dots_does_not_walk_up_the_path(skipping_env: WorkflowEnvironment) -> None:
    async with business_api() as api:
        async with FlowTest(skipping_env, order_lookup(api.url), http_allow=[api.host]) as chat:
            await chat.start()
            assert await chat.send("..") == ["Found it."]
    assert [seen.raw_path for seen in api.requests] == ["/orders/%2E%2E"]


async def test_journey_data_naming_another_host_for_the_api_default_never_sends_the_worker_there(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with business_api() as shop, business_api() as internal:
        # Both allowed: what keeps the worker away from `internal` is where the URL's host comes from.
        allowed = [shop.host, internal.host]
        async with FlowTest(skipping_env, order_lookup(shop.url), http_allow=allowed) as chat:
            await chat.start({"api": f"{internal.url}/latest/meta-data"})
            assert await chat.send("A-1") == ["Found it."]
    assert internal.requests == []
    assert [seen.raw_path for seen in shop.requests] == ["/orders/A-1"]


def test_a_url_whose_host_would_come_from_the_data_is_refused_when_the_flow_is_defined() -> None:
    with pytest.raises(FlowDefinitionError, match=r"Http 'look_up'.*\{host\} gives the URL's scheme or host"):

        class Tenant(Flow):
            look_up = Http("GET", "http://{host}/orders", on_error="sorry", retries=0)
            done = End()
            sorry = End("failed", "Sorry.")


async def test_a_call_to_a_loopback_address_not_allowed_takes_the_failure_branch_with_the_reason(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with business_api() as api:
        async with FlowTest(skipping_env, order_lookup(api.url)) as chat:
            await chat.start()
            assert await chat.send("A-1") == ["Sorry, we could not look it up."]
            trace = await trace_of(chat)
            data = await chat.data()
    assert api.requests == []
    [failed] = [line for line in trace if line.startswith(f"HTTP GET {api.url}/orders/A-1 failed")]
    assert f"refused to call 127.0.0.1:{api.port}: a loopback address" in failed
    assert "CHATFLOW_HTTP_ALLOW" in failed
    assert "refused" in data["found"]["error"]


async def test_a_redirect_is_not_followed(skipping_env: WorkflowEnvironment) -> None:
    async with business_api() as api, business_api() as inside:
        api.redirect_to = f"{inside.url}/secret-place"
        async with FlowTest(skipping_env, order_lookup(api.url), http_allow=[api.host, inside.host]) as chat:
            await chat.start()
            assert await chat.send("A-1") == ["Sorry, we could not look it up."]
            trace = await trace_of(chat)
    assert inside.requests == []
    assert any("answered 302, a redirect (not followed)" in line for line in trace), trace


async def test_a_secret_header_and_parameter_reach_the_api_and_appear_nowhere_in_the_history(
    skipping_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, key = "tok-5f1e2d3c4b5a", "key-0a9b8c7d6e5f"
    monkeypatch.setenv("SHOP_TOKEN", token)
    monkeypatch.setenv("SHOP_KEY", key)
    async with business_api() as api:
        flow = order_lookup(
            api.url,
            headers={"Authorization": secret("SHOP_TOKEN", prefix="Bearer "), "X-Order": "{order}"},
            params={"key": secret("SHOP_KEY"), "q": "{order}"},
        )
        async with FlowTest(skipping_env, flow, http_allow=[api.host]) as chat:
            await chat.start()
            assert await chat.send("A-1&x=1") == ["Found it."]
            history = await chat.handle.fetch_history()
            trace = await trace_of(chat)
            data = await chat.data()
    [seen] = api.requests
    assert seen.headers["authorization"] == f"Bearer {token}"
    assert sorted(seen.query.split("&")) == [f"key={key}", "q=A-1%26x%3D1"]
    shown = history_text(history)
    assert token not in shown and key not in shown
    assert "SHOP_TOKEN" in shown and "SHOP_KEY" in shown  # the names are recorded
    # The API echoed the headers back; what was saved names the secret instead.
    assert data["found"]["echo"]["authorization"] == "Bearer secret:SHOP_TOKEN"
    assert token not in json.dumps(trace) and key not in json.dumps(data)


async def test_a_secret_the_worker_lacks_takes_the_failure_branch_naming_it(
    skipping_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_TOKEN", raising=False)
    async with business_api() as api:
        flow = order_lookup(api.url, headers={"Authorization": secret("SHOP_TOKEN")})
        async with FlowTest(skipping_env, flow, http_allow=[api.host]) as chat:
            await chat.start()
            assert await chat.send("A-1") == ["Sorry, we could not look it up."]
            trace = await trace_of(chat)
    assert api.requests == []
    assert any("secret SHOP_TOKEN is not set in the worker's environment" in line for line in trace), trace


async def test_code_steps_pass_secrets_and_data_as_parameters(
    skipping_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_KEY", "key-1234567890")
    async with business_api() as api:

        class Coded(Flow):
            ask = Ask("Order?", branches={anything: "look_up"}, save_as="order")

            async def look_up(self, convo: Any) -> Any:
                found = await convo.http.get(
                    f"{api.url}/orders", params={"id": convo.data["order"], "key": secret("SHOP_KEY")}
                )
                convo.data["path"] = found["path"]
                return self.done

            done = Say("Done.")

        async with FlowTest(skipping_env, Coded, http_allow=[api.host]) as chat:
            await chat.start()
            assert await chat.send("A 1/2") == ["Done."]
            history = await chat.handle.fetch_history()
    assert [sorted(seen.query.split("&")) for seen in api.requests] == [["id=A+1%2F2", "key=key-1234567890"]]
    assert "key-1234567890" not in history_text(history)
