"""Targets that never answer: refused, a name that does not resolve, TLS against a plain server."""

from __future__ import annotations

import ssl
import statistics
import time

import pytest
from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client

from .conftest import free_port

CONNECT_TIMEOUT_MS = 50
SLACK_MS = 20
PASSWORD = "s3cret-pw"


def _ssl_context_ms() -> float:
    """CPU time redis-py spends building an SSL context (CA bundle load) on every TLS connect attempt."""
    costs = []
    for _ in range(3):
        started = time.perf_counter()
        ssl.create_default_context()
        costs.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(costs)


def _first_panic_and_logs(url, fake_clock):
    breaker = VIXCircuitBreaker(redis_client(url, timeout_ms=CONNECT_TIMEOUT_MS), clock=fake_clock, retry_after_s=0.2)
    with capture_logs() as logs:
        started = time.perf_counter()
        first = breaker.get_ttl(60, "panic", {"league": "Champions League"})
        first_ms = (time.perf_counter() - started) * 1000.0
        started = time.perf_counter()
        more = [breaker.get_ttl(60, "panic") for _ in range(50)]
        more_ms = (time.perf_counter() - started) * 1000.0
        calm = breaker.get_ttl(60, "warning")
    return first, first_ms, more, more_ms, calm, logs


@pytest.mark.parametrize("kind", ["refused", "dns", "tls-on-plain"])
def test_unreachable_target_fails_safe_within_connect_timeout(kind, fault_server, fake_clock):
    """Each unreachable target: PANIC_FULL within one connect timeout, one ERROR naming it, no password."""
    port = {"refused": free_port(), "dns": 6379, "tls-on-plain": fault_server.port}[kind]
    host = "no-such-host.invalid" if kind == "dns" else "127.0.0.1"
    scheme = "rediss" if kind == "tls-on-plain" else "redis"
    url = f"{scheme}://:{PASSWORD}@{host}:{port}/0"

    first, first_ms, more, more_ms, calm, logs = _first_panic_and_logs(url, fake_clock)

    assert first == (0, "PANIC_FULL") and set(more) == {(0, "PANIC_FULL")}
    assert calm == (60, "NORMAL")
    bound = CONNECT_TIMEOUT_MS + SLACK_MS + (_ssl_context_ms() if kind == "tls-on-plain" else 0.0)
    assert first_ms <= bound, f"{kind}: {first_ms:.1f} ms"
    assert more_ms < CONNECT_TIMEOUT_MS, "50 calls inside retry_after_s made no connect attempt"
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
    assert errors[0]["target"] == f"{scheme}://{host}:{port}/0"
    assert errors[0]["error"].split(":")[0] in ("ConnectionError", "TimeoutError")
    assert len(errors[0]["error"]) > len("TimeoutError: "), "the log says what went wrong, not just a class"
    assert PASSWORD not in repr(logs)
    print(f"{kind}: first call {first_ms:.1f} ms, 50 more {more_ms:.2f} ms; {errors[0]['error']}")
