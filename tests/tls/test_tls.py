"""rediss:// against a real TLS server: the right CA works; an unknown CA or a wrong host name fails safe."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from breaker import PanicMode, VIXCircuitBreaker, redis_client

TIMEOUT_MS = 1000  # a TLS handshake on a loaded 2-core test machine; the promise tested is the answer


def test_worker_with_the_right_ca_observes_the_clock(tls_server):
    """A worker trusting the server's CA reaches it over TLS: a panic starts the shared clock (tier 1)."""
    client = redis_client(tls_server.url(), timeout_ms=TIMEOUT_MS)
    breaker = VIXCircuitBreaker(client, refresh_interval_s=0)
    client.delete("brain:panic_start_ts")
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == (0, PanicMode.PANIC_FULL)
    assert breaker.last_error is None
    assert [log["event"] for log in logs if log["log_level"] == "warning"] == ["PANIC_TIMESTAMP_INITIALIZED"]
    assert client.exists("brain:panic_start_ts")
    client.close()


@pytest.mark.parametrize(
    ("case", "cause"),
    [("unknown CA", "certificate verify failed"), ("wrong host name", "IP address mismatch")],
)
def test_untrusted_server_fails_safe_with_one_error_naming_the_cause(tls_server, case, cause, fake_clock):
    """An unknown CA or a certificate for another name: every panic answers (0, PANIC_FULL), calm stays calm,
    one ERROR names the TLS failure, nothing raises."""
    # the certificate names localhost only, so 127.0.0.1 is a wrong host name
    other_ca = tls_server.certs.other_ca_file
    url = tls_server.url(ca_file=other_ca) if case == "unknown CA" else tls_server.url("127.0.0.1")
    client = redis_client(url, timeout_ms=TIMEOUT_MS)
    breaker = VIXCircuitBreaker(client, clock=fake_clock)
    with capture_logs() as logs:
        answers = []
        for _ in range(3):
            answers.append(breaker.get_ttl(60, "panic", {"stakes": "medium"}))
            fake_clock.advance(2)  # past retry_after_s: each call tries the handshake again
        calm = breaker.get_ttl(60, "normal")
    assert answers == [(0, PanicMode.PANIC_FULL)] * 3 and calm == (60, PanicMode.NORMAL)
    errors = [log for log in logs if log["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
    assert cause in errors[0]["error"], errors[0]["error"]
    client.close()


def test_worker_on_a_tls_cluster_observes_the_clock(tls_cluster):
    """rediss+cluster:// with the right CA: the v2 round trip reaches the {brain} slot's master over TLS."""
    client = redis_client(tls_cluster.url(), timeout_ms=TIMEOUT_MS)
    breaker = VIXCircuitBreaker(client, refresh_interval_s=0)
    assert breaker.key_prefix == "{brain}:"
    assert breaker.get_ttl(60, "panic") == (0, PanicMode.PANIC_FULL)
    assert breaker.last_error is None
    assert client.exists("{brain}:panic_start_ts")
    client.close()


def test_tls_cluster_with_an_unknown_ca_fails_safe(tls_cluster, fake_clock):
    """rediss+cluster:// trusting another CA: no node answers, panics fail safe, one ERROR names the cause."""
    client = redis_client(tls_cluster.url(ca_file=tls_cluster.certs.other_ca_file), timeout_ms=TIMEOUT_MS)
    breaker = VIXCircuitBreaker(client, clock=fake_clock)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == (0, PanicMode.PANIC_FULL)
        fake_clock.advance(2)
        assert breaker.get_ttl(60, "panic") == (0, PanicMode.PANIC_FULL)
    errors = [log for log in logs if log["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
    assert "certificate verify failed" in errors[0]["error"], errors[0]["error"]
    client.close()
