"""A server that answers, but with an error: auth, out of memory, read-only replica; and a missing socket."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client

PASSWORD = "right-pw"


def _configure(server, fault: str) -> str:
    """Put the server into ``fault``; the URL a worker would use against it."""
    admin = server.admin
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    if fault in ("no password", "wrong password"):
        admin.config_set("requirepass", PASSWORD)
        return url.replace(f":{PASSWORD}@", "" if fault == "no password" else ":wrong-pw@")
    if fault == "out of memory":
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
        return url.replace(f":{PASSWORD}@", "")
    if fault == "read-only replica":
        admin.replicaof("127.0.0.1", 1)  # a primary that does not exist: the replica stays read-only
        return url.replace(f":{PASSWORD}@", "")
    return "unix:///nonexistent/vix-breaker.sock"


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        ("no password", "AuthenticationError"),
        ("wrong password", "AuthenticationError"),
        ("out of memory", "OutOfMemoryError"),
        ("read-only replica", "ReadOnlyError"),
        ("missing unix socket", "ConnectionError"),
    ],
)
def test_server_error_fails_safe_with_one_error_line(fault_server, fake_clock, fault, error_class):
    """The server refuses the observation: PANIC_FULL, calm unaffected, one ERROR with the server's reason."""
    url = _configure(fault_server, fault)
    breaker = VIXCircuitBreaker(
        redis_client(url, timeout_ms=1000), clock=fake_clock, retry_after_s=0.2, server_time=False,
    )
    with capture_logs() as logs:
        panics = {breaker.get_ttl(60, "panic", {"stakes": "low"}) for _ in range(20)}
        calm = breaker.get_ttl(60, "normal")
    assert panics == {(0, "PANIC_FULL")} and calm == (60, "NORMAL")
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
    assert errors[0]["error"].startswith(f"{error_class}: ")
    assert "wrong-pw" not in repr(logs) and PASSWORD not in repr(logs)
    assert not fault_server.admin.exists("brain:panic_start_ts"), "nothing was written"
