"""Targets that never answer: refused, a name that does not resolve, a resolver that hangs, TLS on a plain server.

A worker's first call meets the fault and is blocked for one connect timeout at most (blocked time: see
``TimedCall``; the CPU redis-py spends, e.g. building an SSL context, is not a wait); the next calls inside
``retry_after_s`` make no connection attempt at all.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading

import pytest
from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client

from .conftest import RoundTrips, free_port, timed_call

CONNECT_TIMEOUT_MS = 50
SLACK_MS = 20
ATTEMPTS = 3
PASSWORD = "s3cret-pw"
STUCK_NAME = "stuck.example"


def _attempt(url, fake_clock):
    """A fresh worker: its first panic call (the one that meets the fault), 50 more, a calm call, and its logs."""
    client = redis_client(url, timeout_ms=CONNECT_TIMEOUT_MS)
    round_trips = RoundTrips(client)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, retry_after_s=0.2, server_time=False)
    with capture_logs() as logs:
        first = timed_call(breaker.get_ttl, 60, "panic", {"league": "Champions League"})
        more = {breaker.get_ttl(60, "panic") for _ in range(50)}
        calm = breaker.get_ttl(60, "warning")
    return {"first": first, "more": more, "round_trips": round_trips.count, "calm": calm, "logs": logs}


@pytest.fixture
def stuck_resolver(monkeypatch):
    """A resolver that does not answer for one name (as when the DNS server is down), released at teardown."""
    release = threading.Event()
    real_getaddrinfo = socket.getaddrinfo
    asked = []

    def getaddrinfo(host, *args, **kwargs):
        if host == STUCK_NAME:
            asked.append(host)
            release.wait(timeout=5)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield asked
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

    for attempt in attempts:
        assert attempt["first"].blocked_ms <= CONNECT_TIMEOUT_MS + SLACK_MS, f"{kind}: {attempt['first']}"
        assert attempt["first"].answer == (0, "PANIC_FULL") and attempt["more"] == {(0, "PANIC_FULL")}
        assert attempt["calm"] == (60, "NORMAL")
        assert attempt["round_trips"] == 1, "50 calls inside retry_after_s made no connect attempt"
        errors = [e for e in attempt["logs"] if e["log_level"] == "error"]
        assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
        assert errors[0]["target"] == f"{scheme}://{host}:{port}/0"
        assert errors[0]["error"].split(":")[0] in ("ConnectionError", "TimeoutError")
        assert len(errors[0]["error"]) > len("TimeoutError: "), "the log says what went wrong, not just a class"
        assert PASSWORD not in repr(attempt["logs"])
    blocked = [round(a["first"].blocked_ms, 1) for a in attempts]
    wall = [round(a["first"].wall_ms, 1) for a in attempts]
    print(f"{kind}: first calls blocked {blocked} ms, wall {wall} ms; {errors[0]['error']}")


def test_host_name_still_connects(fault_server, fake_clock):
    """A name (not an IP) that resolves reaches the server through the bounded lookup."""
    client = redis_client(f"redis://localhost:{fault_server.port}/0", timeout_ms=1000)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert fault_server.admin.exists("brain:panic_start_ts") == 1


def _ping_by_name(url, results):
    try:
        results.put(redis_client(url, timeout_ms=1000).ping())
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_forked_worker_resolves_names(fault_server):
    """A worker forked after its parent resolved a name (a pre-fork server) still looks names up and connects."""
    url = f"redis://localhost:{fault_server.port}/0"
    assert redis_client(url, timeout_ms=1000).ping()  # the parent now has lookup threads; a forked child has none
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_ping_by_name, args=(url, results))
    child.start()
    try:
        assert results.get(timeout=20) is True
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


def test_dead_resolver_gets_one_lookup_at_a_time(stuck_resolver, fake_clock):
    """Probe after probe against a dead resolver waits on the same lookup instead of piling up new ones."""
    client = redis_client(f"redis://{STUCK_NAME}:6379/0", timeout_ms=CONNECT_TIMEOUT_MS)
    round_trips = RoundTrips(client)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, retry_after_s=0.2, server_time=False)
    probes = []
    for _ in range(5):
        probes.append(timed_call(breaker.get_ttl, 60, "panic"))
        fake_clock.advance(0.201)
    assert {probe.answer for probe in probes} == {(0, "PANIC_FULL")}
    assert round_trips.count == 5, "each back-off window probed once"
    assert max(probe.blocked_ms for probe in probes) <= CONNECT_TIMEOUT_MS + SLACK_MS
    assert len(stuck_resolver) == 1, "the resolver was asked once while its answer was pending"
