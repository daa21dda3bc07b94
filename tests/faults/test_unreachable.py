"""Targets that never answer: refused, a name that does not resolve, a resolver that hangs, TLS on a plain server.

Each first call waits on the network once at most. On a shared 2-core machine another process can add tens
of milliseconds of CPU wait to any one call, so the bound is checked on the best of three fresh workers,
and every call must stay under a ceiling that one retry or one unbounded wait would break.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import threading
import time

import pytest
from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client

from .conftest import CountingClient, free_port

CONNECT_TIMEOUT_MS = 50
SLACK_MS = 20
CEILING_MS = 4 * CONNECT_TIMEOUT_MS
ATTEMPTS = 3
PASSWORD = "s3cret-pw"
STUCK_NAME = "stuck.example"


def _ssl_context_ms() -> float:
    """CPU time redis-py spends building an SSL context (CA bundle load) on every TLS connect attempt."""
    costs = []
    for _ in range(3):
        started = time.perf_counter()
        ssl.create_default_context()
        costs.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(costs)


def _attempt(url, fake_clock):
    """A fresh worker: its first panic call (the one that meets the fault), 50 more, a calm call, and its logs."""
    client = CountingClient(redis_client(url, timeout_ms=CONNECT_TIMEOUT_MS))
    breaker = VIXCircuitBreaker(client, clock=fake_clock, retry_after_s=0.2)
    with capture_logs() as logs:
        started = time.perf_counter()
        first = breaker.get_ttl(60, "panic", {"league": "Champions League"})
        first_ms = (time.perf_counter() - started) * 1000.0
        more = {breaker.get_ttl(60, "panic") for _ in range(50)}
        calm = breaker.get_ttl(60, "warning")
    return {"first": first, "first_ms": first_ms, "more": more, "round_trips": client.pipelines, "calm": calm,
            "logs": logs}


@pytest.fixture
def stuck_resolver(monkeypatch):
    """A resolver that does not answer for one name (as when the DNS server is down), released at teardown."""
    release = threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == STUCK_NAME:
            release.wait(timeout=5)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    release.set()


@pytest.mark.parametrize("kind", ["refused", "dns", "stuck-resolver", "tls-on-plain"])
def test_unreachable_target_fails_safe_within_connect_timeout(kind, request, fault_server, fake_clock):
    """Each unreachable target: PANIC_FULL within one connect timeout, one ERROR naming it, no password."""
    if kind == "stuck-resolver":
        request.getfixturevalue("stuck_resolver")
    host = {"dns": "no-such-host.invalid", "stuck-resolver": STUCK_NAME}.get(kind, "127.0.0.1")
    port = {"refused": free_port(), "tls-on-plain": fault_server.port}.get(kind, 6379)
    scheme = "rediss" if kind == "tls-on-plain" else "redis"

    attempts = [_attempt(f"{scheme}://:{PASSWORD}@{host}:{port}/0", fake_clock) for _ in range(ATTEMPTS)]

    bound = CONNECT_TIMEOUT_MS + SLACK_MS + (_ssl_context_ms() if scheme == "rediss" else 0.0)
    firsts = [a["first_ms"] for a in attempts]
    assert min(firsts) <= bound and max(firsts) <= CEILING_MS, f"{kind}: {firsts} ms, bound {bound:.0f} ms"
    for attempt in attempts:
        assert attempt["first"] == (0, "PANIC_FULL") and attempt["more"] == {(0, "PANIC_FULL")}
        assert attempt["calm"] == (60, "NORMAL")
        assert attempt["round_trips"] == 1, "50 calls inside retry_after_s made no connect attempt"
        errors = [e for e in attempt["logs"] if e["log_level"] == "error"]
        assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
        assert errors[0]["target"] == f"{scheme}://{host}:{port}/0"
        assert errors[0]["error"].split(":")[0] in ("ConnectionError", "TimeoutError")
        assert len(errors[0]["error"]) > len("TimeoutError: "), "the log says what went wrong, not just a class"
        assert PASSWORD not in repr(attempt["logs"])
    print(f"{kind}: first calls {[round(ms, 1) for ms in firsts]} ms; {errors[0]['error']}")


def test_host_name_still_connects(fault_server, fake_clock):
    """A name (not an IP) that resolves reaches the server through the bounded lookup."""
    breaker = VIXCircuitBreaker(redis_client(f"redis://localhost:{fault_server.port}/0"), clock=fake_clock)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert fault_server.admin.exists("brain:panic_start_ts") == 1
