import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.client import WorkflowExecution
from temporalio.testing import WorkflowEnvironment

from chatflow import End, Flow, Http, Say
from chatflow.domain.addresses import Address, ConversationRef, mask_addresses
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.edge import keys
from chatflow.temporal.client import start_journey
from tests.flows import FLOWS
from tests.helpers import new_customer, running_app, running_worker, started_services

NUMBER = "+15005550006"
KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}

CONFIG = Config(
    numbers=[
        NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="parrot", rate=50.0)
    ],
    flow_modules=[],
    settings=Settings(api_key=KEY),
)


class Recovers(Flow):
    """An HTTP call fails and the flow recovers from it: it completes, and the failure is not why."""

    lookup = Http("GET", "http://127.0.0.1:9/down", retries=1, on_error="apologise")
    apologise = Say("Our systems are slow today.")
    done = End("completed", "All done anyway.")


class Shipped(Flow):
    """Its first message needs the journey's data."""

    tell = Say("Hi {name}, order {order.id} has shipped.")


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The journeys API of the web app as `chatflow web` serves it (its loops running: the queue
    of busy customers' journeys, digests), and a worker as `chatflow worker` runs it."""
    async with started_services(CONFIG, [*FLOWS, Recovers, Shipped], client=dev_env.client, redis=redis) as services:
        async with running_worker(services), running_app(services) as http:
            http.headers.update(AUTH)
            yield http


async def start(api: httpx.AsyncClient, customer: str, flow: str = "payment", **extra: object) -> httpx.Response:
    return await api.post("/api/conversations", json={"flow": flow, "to": customer, "from": NUMBER, **extra})


async def until(
    api: httpx.AsyncClient,
    id: str,
    check: Callable[[dict[str, Any]], bool] = lambda view: True,
    tries: int = 400,
    **expected: object,
) -> dict[str, Any]:
    for _ in range(tries):
        view: dict[str, Any] = (await api.get(f"/api/conversations/{id}")).json()
        if all(view.get(k) == v for k, v in expected.items()) and check(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"{id} never reached {expected}: {view}")


async def flows_of_runs(env: WorkflowEnvironment, id: str, count: int) -> list[str]:
    """The flow of each run of a conversation, oldest first, once visibility lists `count` runs."""
    for _ in range(200):
        runs = [w async for w in env.client.list_workflows(f"WorkflowId = '{id}'")]
        if len(runs) >= count:
            break
        await asyncio.sleep(0.05)
    runs.sort(key=lambda run: run.start_time)
    return [(await run.memo()).get("flow", "") for run in runs]


async def runs_of(env: WorkflowEnvironment, id: str) -> list[WorkflowExecution]:
    """Every run of a workflow id, once visibility has caught up with the first."""
    for _ in range(200):
        runs = [w async for w in env.client.list_workflows(f"WorkflowId = '{id}'")]
        if runs:
            return runs
        await asyncio.sleep(0.05)
    return []


async def test_the_api_needs_the_key(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/conversations", headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401 and "Bearer" in answer.json()["error"]
    assert (await api.post("/api/conversations", headers={"Authorization": ""}, json={})).status_code == 401


async def test_openapi_describes_every_route(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json", headers={})).json()
    assert set(spec["paths"]) == {
        "/api/conversations",
        "/api/conversations/{id}",
        "/api/conversations/{id}/events",
        "/api/conversations/{id}/takeover",
        "/api/conversations/{id}/replies",
        "/api/conversations/{id}/handback",
        "/api/broadcasts",
        "/api/broadcasts/{id}",
        "/api/digests",
        "/api/events",
        "/api/dead-letters",
        "/api/dead-letters/{id}/retry",
        "/api/consent",
        "/api/consent/import",
        "/api/consent/{customer}",
    }


@pytest.mark.parametrize(
    "body, headers, status, says",
    [
        (b"{nope", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b"flow=payment", {"content-type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
        (b'{"x": "' + b"a" * 70_000 + b'"}', {"content-type": "application/json"}, 413, "bytes"),
        (b"[1, 2]", {"content-type": "application/json"}, 422, "JSON object"),
        (
            b'{"to": "+14155550100", "from": "+15005550006"}',
            {"content-type": "application/json"},
            422,
            "flow is required",
        ),
        (
            b'{"flow": "payment", "to": "12", "from": "+15005550006"}',
            {"content-type": "application/json"},
            422,
            "to '12'",
        ),
        (
            b'{"flow": "nope", "to": "+14155550100", "from": "+15005550006"}',
            {"content-type": "application/json"},
            422,
            "unknown flow",
        ),
        (
            b'{"flow": "payment", "to": "+14155550100", "from": "+14155550199"}',
            {"content-type": "application/json"},
            422,
            "not one of our numbers",
        ),
        (
            b'{"flow": "payment", "to": "+14155550100", "from": "+15005550006", "data": []}',
            {"content-type": "application/json"},
            422,
            "data must be",
        ),
        (
            b'{"flow": "payment", "to": "+14155550100", "from": "+15005550006", "when_busy": "later"}',
            {"content-type": "application/json"},
            422,
            "when_busy must be one of interrupt, skip, queue, beside",
        ),
    ],
)
async def test_bad_requests_get_a_clear_4xx(
    api: httpx.AsyncClient, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    answer = await api.post("/api/conversations", content=body, headers=headers)
    assert answer.status_code == status
    assert says in answer.json()["error"]


async def test_a_journey_runs_and_can_be_read_and_told_of_events(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    answer = await start(api, customer, data={"order": "A-1"})
    assert answer.status_code == 202
    id = answer.json()["id"]
    assert id == ConversationRef("sms", NUMBER, customer).id
    view = await until(api, id, lambda v: v["transcript"][-1]["status"] == "delivered", step="ask")
    assert view["state"] == "running" and view["data"] == {"order": "A-1"}
    assert [(t["direction"], t["status"]) for t in view["transcript"]] == [("out", "delivered")]
    answer = await api.post(f"/api/conversations/{id}/events", json={"name": "payment_succeeded"})
    assert answer.status_code == 202
    view = await until(api, id, state="ended")
    assert (view["outcome"], view["reason"]) == ("completed", "")
    assert view["transcript"][-1]["text"] == "Thanks, all settled."
    assert (await api.post(f"/api/conversations/{id}/events", json={"name": "x"})).status_code == 409


async def test_a_journey_without_the_data_its_messages_need_is_refused_before_it_starts(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    refused = await start(api, customer, flow="shipped", data={"order": {"number": 7}})
    assert refused.status_code == 422
    assert refused.json()["error"].startswith("data lacks 'name', 'order.id', which flow 'shipped' reads")
    assert (await api.get(f"/api/conversations/{ConversationRef('sms', NUMBER, customer).id}")).status_code == 404
    started = await start(api, customer, flow="shipped", data={"name": "Ana", "order": {"id": 7}})
    assert started.status_code == 202, started.text
    view = await until(api, started.json()["id"], state="ended")
    assert view["outcome"] == "completed"
    assert view["transcript"][0]["text"] == "Hi Ana, order 7 has shipped."


async def test_the_same_idempotency_key_never_starts_a_second_run(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    customer = new_customer()
    first = await start(api, customer, idempotency_key="order-77-failed")
    await until(api, first.json()["id"], step="ask")
    await api.delete(f"/api/conversations/{first.json()['id']}")
    await until(api, first.json()["id"], state="ended")
    second = await start(api, customer, idempotency_key="order-77-failed")
    assert second.status_code == 202
    assert second.json()["status"] == "duplicate" and second.json()["id"] == first.json()["id"]
    assert second.json()["run_id"] == first.json()["run_id"]
    assert len(await runs_of(dev_env, first.json()["id"])) == 1


async def test_unknown_conversations_are_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/conversations/chat:sms:+1:+2")).status_code == 404
    assert (await api.post("/api/conversations/chat:sms:+1:+2/events", json={"name": "x"})).status_code == 404
    assert (await api.delete("/api/conversations/chat:sms:+1:+2")).status_code == 404


async def test_delete_ends_the_conversation(api: httpx.AsyncClient) -> None:
    id = (await start(api, new_customer())).json()["id"]
    await until(api, id, step="ask")
    assert (await api.delete(f"/api/conversations/{id}?reason=customer%20called%20in")).status_code == 202
    ended = await until(api, id, state="ended")
    assert (ended["outcome"], ended["reason"]) == ("cancelled", "customer called in")
    assert (await api.delete(f"/api/conversations/{id}")).json()["ending"] is False


async def test_a_busy_customer_is_skipped_interrupted_or_queued_as_the_flow_says(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    customer = new_customer()
    id = (await start(api, customer)).json()["id"]
    await until(api, id, step="ask")

    skipped = await start(api, customer)
    assert skipped.status_code == 409 and skipped.json()["status"] == "skipped"

    queued = await start(api, customer, flow="payment_queued", data={"n": 2})
    assert queued.status_code == 202 and queued.json()["status"] == "queued"

    interrupting = await start(api, customer, flow="payment_interrupting")
    assert interrupting.json()["status"] == "started" and interrupting.json()["interrupted"] is True
    view = await until(api, id, flow="payment_interrupting", step="ask")
    assert view["state"] == "running"

    # The queued journey starts once the conversation in front of it has ended: the app's queue
    # loop starts it, once.
    await api.post(f"/api/conversations/{id}/events", json={"name": "payment_succeeded"})
    view = await until(api, id, flow="payment_queued", step="ask")
    assert view["data"] == {"n": 2}
    assert await flows_of_runs(dev_env, id, 3) == ["payment", "payment_interrupting", "payment_queued"]
    assert await redis.llen(keys.queued_journeys(id)) == 0  # nothing left to start


async def test_a_journeys_own_when_busy_wins_over_its_flows(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    id = (await start(api, customer)).json()["id"]
    await until(api, id, step="ask")
    # payment_queued's flow says "queue"; this journey says "skip", then "beside".
    skipped = await start(api, customer, flow="payment_queued", when_busy="skip")
    assert skipped.status_code == 409 and skipped.json()["status"] == "skipped"
    beside = await start(api, customer, flow="payment_queued", when_busy="beside")
    assert beside.status_code == 202 and beside.json()["status"] == "started"
    other = beside.json()["id"]
    assert other.startswith(f"{id}~") and ConversationRef.parse(other).main.id == id
    for conversation in (id, other):
        assert (await until(api, conversation, step="ask"))["state"] == "running"
        await api.delete(f"/api/conversations/{conversation}")


async def test_conversations_are_listed_by_flow_state_and_number(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    id = (await start(api, customer, flow="payment_queued")).json()["id"]
    for _ in range(200):
        found = (
            await api.get("/api/conversations", params={"flow": "payment_queued", "state": "running", "number": NUMBER})
        ).json()
        if id in [c["id"] for c in found["conversations"]]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("never listed")
    assert all(c["flow"] == "payment_queued" and c["state"] == "running" for c in found["conversations"])
    other = (await api.get("/api/conversations", params={"flow": "burst"})).json()["conversations"]
    assert id not in [c["id"] for c in other]
    assert (await api.get("/api/conversations", params={"state": "sleeping"})).status_code == 422
    assert (await api.get("/api/conversations", params={"number": "+14155550199"})).status_code == 422
    await api.delete(f"/api/conversations/{id}")


async def test_a_broadcast_starts_one_journey_per_customer(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    customers = [new_customer() for _ in range(3)]
    body = {
        "flow": "burst",
        "from": NUMBER,
        "to": [*customers[:2], {"to": customers[2], "data": {"vip": True}}, "nope"],
        "idempotency_key": "spring-sale",
    }
    answer = await api.post("/api/broadcasts", json=body)
    assert answer.status_code == 202
    for _ in range(400):
        status = (await api.get("/api/broadcasts/spring-sale")).json()
        if status["done"]:
            break
        await asyncio.sleep(0.05)
    assert (status["started"], status["invalid"], status["total"]) == (3, 1, 4)
    # Posting it again resumes it: nobody is started twice.
    await api.post("/api/broadcasts", json=body)
    for _ in range(400):
        status = (await api.get("/api/broadcasts/spring-sale")).json()
        if status.get("duplicate") == 3:
            break
        await asyncio.sleep(0.05)
    assert status["started"] == 3
    for customer in customers:
        assert len(await runs_of(dev_env, ConversationRef("sms", NUMBER, customer).id)) == 1
    assert (await api.get("/api/broadcasts/unknown")).status_code == 404


async def test_an_event_with_data_reaches_the_flow(api: httpx.AsyncClient) -> None:
    id = (await start(api, new_customer())).json()["id"]
    await until(api, id, step="ask")
    await api.post(f"/api/conversations/{id}/events", json={"name": "payment_succeeded", "data": {"amount": 5}})
    view = await until(api, id, state="ended", tries=40)
    assert view["data"]["events"] == {"payment_succeeded": {"amount": 5}}


async def test_events_within_a_digest_window_become_one_message(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    body = {"flow": "order_digest", "to": customer, "from": NUMBER}
    pending = []
    for update in ("order A packed", "order B shipped", "order A shipped"):
        answer = await api.post("/api/digests", json={**body, "event": {"update": update}})
        assert answer.status_code == 202
        pending.append(answer.json()["pending"])
    assert pending == [1, 2, 3]
    assert (await api.post("/api/digests", json={**body, "flow": "parrot", "event": {}})).status_code == 422

    # The app's digest loop starts the digest's flow once the window has closed.
    view = await until(api, ConversationRef("sms", NUMBER, customer).id, state="ended")
    said = [turn["text"] for turn in view["transcript"] if turn["direction"] == "out"]
    assert said == ["3 updates: order A packed; order B shipped; order A shipped"]


async def test_delete_ends_a_conversation_that_cannot_end_itself(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    """No worker runs its flow (a deploy gone wrong, a flow version missing): after the grace
    period the conversation is terminated, so ending through the API always works."""
    ref = ConversationRef("sms", NUMBER, new_customer(), "console")
    await start_journey(dev_env.client, ref, "payment", {}, task_queue="nobody-polls-this")
    async with started_services(CONFIG, FLOWS, client=dev_env.client, redis=redis) as services:
        async with running_app(services) as api:
            ended = await api.delete(f"/api/conversations/{ref.id}", headers=AUTH)
            view = (await api.get(f"/api/conversations/{ref.id}", headers=AUTH)).json()
    description = await dev_env.client.get_workflow_handle(ref.id).describe()
    assert ended.status_code == 202
    assert description.status is not None and description.status.name == "TERMINATED"
    assert (view["state"], view["outcome"]) == ("ended", "terminated")
    assert view["reason"].startswith("ended by the business")


async def test_the_reason_is_only_for_the_outcome_it_explains(api: httpx.AsyncClient) -> None:
    """The flow's HTTP call fails, it takes its error branch and completes: completed, no reason."""
    answer = await start(api, new_customer(), flow="recovers")
    view = await until(api, answer.json()["id"], state="ended")
    assert (view["outcome"], view["reason"]) == ("completed", "")
    said = [turn["text"] for turn in view["transcript"] if turn["direction"] == "out"]
    assert said == ["Our systems are slow today.", "All done anyway."]


async def test_an_event_the_flow_never_waits_for_is_refused_with_those_it_does(api: httpx.AsyncClient) -> None:
    id = (await start(api, new_customer())).json()["id"]
    await until(api, id, step="ask")
    answer = await api.post(f"/api/conversations/{id}/events", json={"name": "payment_suceeded"})
    assert answer.status_code == 422
    assert (
        answer.json()["error"]
        == "flow 'payment' never waits for event 'payment_suceeded'; it waits for payment_succeeded"
    )
    view = await until(api, id, step="ask")
    assert view["state"] == "running"
    await api.delete(f"/api/conversations/{id}")


async def test_listed_runs_have_their_run_id_and_outcome(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    first = (await start(api, customer)).json()
    await until(api, first["id"], step="ask")
    await api.delete(f"/api/conversations/{first['id']}?reason=done")
    await until(api, first["id"], state="ended")
    second = (await start(api, customer)).json()
    await until(api, second["id"], step="ask")
    for _ in range(200):
        listed = (await api.get("/api/conversations", params={"flow": "payment", "number": NUMBER})).json()[
            "conversations"
        ]
        runs = {c["run_id"]: c for c in listed if c["id"] == first["id"]}
        if len(runs) == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"both runs never listed: {listed}")
    assert (runs[first["run_id"]]["state"], runs[first["run_id"]]["outcome"]) == ("ended", "cancelled")
    assert (runs[second["run_id"]]["state"], runs[second["run_id"]]["outcome"]) == ("running", "")
    ended = (await api.get("/api/conversations", params={"state": "ended", "flow": "payment"})).json()["conversations"]
    assert all(c["state"] == "ended" and c["outcome"] for c in ended)
    refused = await api.get("/api/conversations", params={"state": "completed"})
    assert (refused.status_code, refused.json()["error"]) == (422, "state must be one of running, ended")
    await api.delete(f"/api/conversations/{second['id']}")


async def test_an_id_masked_in_a_log_line_finds_its_conversation(api: httpx.AsyncClient) -> None:
    # Not new_customer(): after a hundred of those on this number, some mask alike (the last two
    # digits show), and the masked id would rightly be a conflict. No other test uses +1630.
    customer = f"+1630{random.randrange(10**7):07d}"
    id = (await start(api, customer)).json()["id"]
    masked = mask_addresses(id)
    assert masked != id and masked.startswith(f"chat:sms:{NUMBER}:")
    for _ in range(200):  # visibility lists a new conversation a moment after it starts
        answer = await api.get(f"/api/conversations/{masked}")
        if answer.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert answer.json()["id"] == id
    answer = await api.delete(f"/api/conversations/{masked}")
    assert (answer.status_code, answer.json()["id"]) == (202, id)
    assert (await api.get(f"/api/conversations/chat:sms:{NUMBER}:+1999*****00")).status_code == 404


async def test_a_masked_id_that_matches_several_conversations_is_a_conflict(api: httpx.AsyncClient) -> None:
    # Two customers whose numbers mask alike: +1629 5550 1 77 and +1629 5550 2 77.
    ids = [(await start(api, customer)).json()["id"] for customer in ("+16295550177", "+16295550277")]
    masked = mask_addresses(ids[0])
    assert masked == mask_addresses(ids[1])
    for _ in range(200):
        answer = await api.get(f"/api/conversations/{masked}")
        if answer.status_code == 409:
            break
        await asyncio.sleep(0.1)
    assert answer.status_code == 409 and "matches 2 conversations" in answer.json()["error"]
    for id in ids:
        await api.delete(f"/api/conversations/{id}")


async def test_the_console_tells_how_a_conversation_ended_without_a_key(api: httpx.AsyncClient) -> None:
    id = (await start(api, new_customer())).json()["id"]
    await until(api, id, step="ask")
    await api.delete(f"/api/conversations/{id}?reason=closed%20by%20support")
    await until(api, id, state="ended")
    status = await api.get(f"/console/conversations/{id}", headers={"Authorization": ""})
    assert status.status_code == 200
    assert {k: status.json()[k] for k in ("id", "state", "outcome", "reason", "flow")} == {
        "id": id,
        "state": "ended",
        "outcome": "cancelled",
        "reason": "closed by support",
        "flow": "payment",
    }
    assert "data" not in status.json() and "transcript" not in status.json()
    not_console = await api.get(
        "/console/conversations/chat:sms:+15005550999:+14155550100", headers={"Authorization": ""}
    )
    assert not_console.status_code == 404


async def test_a_helpdesk_takes_over_replies_and_hands_back_through_the_api(api: httpx.AsyncClient) -> None:
    id = (await start(api, new_customer())).json()["id"]
    await until(api, id, step="ask")
    base = f"/api/conversations/{id}"
    assert (await api.post(f"{base}/replies", json={"operator": "ana", "text": "hi"})).json() == {
        "error": "take the conversation over first"
    }
    assert (await api.post(f"{base}/takeover", json={"operator": "ana"})).json() == {"id": id, "operator": "ana"}
    taken = await api.post(f"{base}/takeover", json={"operator": "bo"})
    assert (taken.status_code, taken.json()) == (409, {"error": "ana has this conversation already"})
    for body, says in (
        ({"operator": "ana"}, "text"),
        ({"operator": "ana", "text": " "}, "the reply is empty"),
        ({"text": "x"}, "operator"),
    ):
        refused = await api.post(f"{base}/replies", json=body)
        assert refused.status_code in (400, 422) and says in refused.json()["error"], refused.text
    sent = await api.post(f"{base}/replies", json={"operator": "ana", "text": "A person here: all sorted?"})
    assert sent.status_code == 200 and sent.json()["message_id"]
    view = await until(api, id, operator="ana")
    assert [(t["by"], t["text"]) for t in view["transcript"] if t["by"]] == [("ana", "A person here: all sorted?")]
    assert (await api.post(f"{base}/handback", json={"operator": "ana"})).json() == {"id": id, "operator": ""}
    await until(api, id, operator="", step="ask")
    await api.post(f"{base}/events", json={"name": "payment_succeeded"})
    await until(api, id, state="ended", outcome="completed")
    ended = await api.post(f"{base}/takeover", json={"operator": "ana"})
    assert (ended.status_code, ended.json()) == (409, {"error": f"conversation {id} has ended"})
