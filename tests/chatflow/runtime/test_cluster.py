"""chatflow on a Redis/Valkey Cluster: CHATFLOW_REDIS_URL with `?cluster=true`, and the whole
edge working on a real 3-master Valkey Cluster (tests/valkey_cluster.py), end to end: signed
webhooks through real uvicorn, the buffer and its forwarder, the worker's sends through the send
guard and ledger out to (mocked) Twilio, a status callback, a STOP, a dead letter."""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import Address, ConversationRef
from chatflow.domain.errors import ConfigError
from chatflow.edge import keys
from chatflow.edge.dead_letters import list_dead_letters
from chatflow.edge.optout import OptOuts
from chatflow.runtime.processes import bind
from chatflow.runtime.services import Services, cluster_url, connect_redis
from chatflow.temporal.client import start_journey
from chatflow.temporal.workflow import ConversationWorkflow
from conversations.demo import Demo
from tests.flows import Notify
from tests.helpers import new_customer
from tests.providers.conftest import MESSAGES_URL, TWILIO_NUMBER, make_config, twilio_inbound, twilio_post
from tests.valkey_cluster import ValkeyCluster

T = TypeVar("T")
GREETING = "Hi! I'm the chatflow demo bot."
MENU = "What can I do for you?\n\n1. Opening hours\n2. Track my order\n3. Talk to a person"


def test_cluster_true_in_the_url_names_a_cluster_and_is_not_passed_on() -> None:
    assert cluster_url("redis://cache:6379/0") == ("redis://cache:6379/0", False)
    assert cluster_url("rediss://u:p@cache:6379?cluster=true") == ("rediss://u:p@cache:6379", True)
    assert cluster_url("redis://cache:6379?cluster=false&socket_timeout=5") == (
        "redis://cache:6379?socket_timeout=5",
        False,
    )
    with pytest.raises(ConfigError, match="cluster='maybe'"):
        cluster_url("redis://cache:6379?cluster=maybe")


async def test_connect_redis_builds_the_cluster_client_for_a_cluster_url(valkey_cluster: ValkeyCluster) -> None:
    redis = connect_redis(valkey_cluster.url)
    try:
        assert isinstance(redis, RedisCluster)
        # Keys of every master's slots are reachable through the one client.
        await redis.mset_nonatomic({f"probe:{n}": str(n) for n in range(30)})
        nodes = {redis.get_node_from_key(f"probe:{n}").name for n in range(30)}
        assert len(nodes) == 3
    finally:
        await redis.aclose()


@pytest.fixture
async def cluster_redis(valkey_cluster: ValkeyCluster) -> AsyncIterator[Redis]:
    redis = connect_redis(valkey_cluster.url)
    await redis.flushdb()
    try:
        yield redis
    finally:
        await redis.aclose()


def _sent_to(route: respx.Route, customer: str) -> list[str]:
    forms = [{k: v[0] for k, v in parse_qs(call.request.content.decode()).items()} for call in route.calls]
    return [form["Body"] for form in forms if form["To"] == customer]


async def _eventually(check: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """`check()` once it is truthy, or its last value after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_webhooks_sends_statuses_opt_outs_and_dead_letters_work_on_a_valkey_cluster(
    dev_env: WorkflowEnvironment, cluster_redis: Redis
) -> None:
    redis = cluster_redis
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    hook_url, status_url = f"{url}/webhooks/twilio", f"{url}/webhooks/twilio/status"
    config = make_config(public_url=url)
    customer, notified = new_customer(), new_customer()
    ids = itertools.count(1)
    stop = asyncio.Event()

    def created(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"sid": f"SM{next(ids):032d}", "status": "queued"})

    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        twilio = router.post(MESSAGES_URL).mock(side_effect=created)
        async with httpx.AsyncClient() as http:
            services = await Services.start(
                config, [Demo, Notify], client=dev_env.client, redis=redis, http=http,
                task_queue=f"cluster-{uuid.uuid4().hex}",
            )  # fmt: skip
            worker, _ = services.worker()
            async with worker, httpx.AsyncClient(base_url=url) as web:
                serving = asyncio.create_task(services.serve_web(sock, stop))
                try:
                    for _ in range(500):
                        try:
                            await web.get("/healthz")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.01)

                    # A webhook, and Twilio's retry of it: buffered once, forwarded, answered.
                    hello = twilio_post(hook_url, twilio_inbound("SM" + uuid.uuid4().hex, "hello", From=customer))
                    answers = [await web.post("/webhooks/twilio", **hello) for _ in range(2)]
                    assert [a.status_code for a in answers] == [200, 200]
                    assert await _eventually(lambda: _async(len(_sent_to(twilio, customer)) >= 2))
                    handle = dev_env.client.get_workflow_handle(ConversationRef("sms", TWILIO_NUMBER, customer).id)
                    snapshot = await handle.query(ConversationWorkflow.snapshot)
                    assert snapshot.signals == 1
                    assert _sent_to(twilio, customer) == [GREETING, MENU]

                    # The provider's status callback finds the conversation through the send ledger.
                    menu = next(t for t in snapshot.transcript if t.text == "What can I do for you?")
                    callback = {
                        "MessageSid": menu.message_id,
                        "MessageStatus": "delivered",
                        "From": TWILIO_NUMBER,
                        "To": customer,
                    }
                    assert (
                        await web.post("/webhooks/twilio/status", **twilio_post(status_url, callback))
                    ).status_code == 200

                    async def delivered() -> bool:
                        now = await handle.query(ConversationWorkflow.snapshot)
                        return [t.status for t in now.transcript if t.message_id == menu.message_id] == ["delivered"]

                    assert await _eventually(delivered)

                    # STOP: recorded on the cluster; what they send next is not let in, and a
                    # journey's send to them takes its flow's failure branch.
                    stop_hook = twilio_post(hook_url, twilio_inbound("SM" + uuid.uuid4().hex, "STOP", From=notified))
                    assert (await web.post("/webhooks/twilio", **stop_hook)).status_code == 200
                    assert await OptOuts(redis).is_opted_out(Address("tel", TWILIO_NUMBER), Address("tel", notified))
                    after = twilio_post(hook_url, twilio_inbound("SM" + uuid.uuid4().hex, "hello", From=notified))
                    assert (await web.post("/webhooks/twilio", **after)).status_code == 200
                    ref = ConversationRef("sms", TWILIO_NUMBER, notified, "twilio")
                    journey = await start_journey(dev_env.client, ref, Notify.name, {}, task_queue=services.task_queue)
                    result = await asyncio.wait_for(journey.result(), 60)
                    assert result.outcome == "failed"
                    refused = await journey.query(ConversationWorkflow.snapshot)
                    assert [t.error_code for t in refused.transcript if t.direction == "out"] == ["opted_out"]
                    assert _sent_to(twilio, notified) == []  # neither the bot's answer to "hello" nor the notice

                    # An entry the forwarder cannot read goes to the dead letters, and the
                    # partition moves on.
                    await redis.xadd(keys.inbox(3), {"m": "not a message"})
                    letters = await _eventually(lambda: list_dead_letters(redis))
                    assert [(letter.kind, letter.reason.startswith("cannot be read")) for letter in letters] == [
                        ("unreadable", True)
                    ]
                    assert await _eventually(lambda: _async_xlen_zero(redis))
                finally:
                    stop.set()
                    await serving


async def _async(value: bool) -> bool:
    return value


async def _async_xlen_zero(redis: Redis) -> bool:
    return await redis.xlen(keys.inbox(3)) == 0
