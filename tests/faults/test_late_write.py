"""A write that timed out is applied when the server wakes: the clock stays one start with an expiry."""

from __future__ import annotations

import time

from breaker import VIXCircuitBreaker, parse_start, redis_client
from breaker.clock import DEFAULT_KEY_PREFIX, LAST_SEEN_KEY_NAME

from .conftest import START_KEY

RETRY_AFTER_S = 0.2
LAST_SEEN_KEY = f"{DEFAULT_KEY_PREFIX}{LAST_SEEN_KEY_NAME}"


def _script_calls(server) -> int:
    calls = server.command_calls()
    return calls.get("evalsha", 0) + calls.get("eval", 0)


def _wait_for_exec(server, before: int) -> None:
    """The woken server runs the buffered round trip soon after SIGCONT; wait (bounded) until it has."""
    deadline = time.monotonic() + 2.0
    while _script_calls(server) <= before:
        assert time.monotonic() < deadline, "the buffered round trip never ran"
        time.sleep(0.01)


def _breaker(server, clock):
    """A worker whose pool holds a live connection, so a hang catches the transaction itself in flight."""
    client = redis_client(server.url, timeout_ms=200)  # short enough for the hang, patient on a loaded machine
    client.ping()
    return VIXCircuitBreaker(client, clock=clock, refresh_interval_s=0, retry_after_s=RETRY_AFTER_S, server_time=False)


def test_late_first_write_becomes_the_one_start(fault_server, fake_clock):
    """A first panic write that timed out lands after SIGCONT; every later observation agrees on it."""
    timed_out_at = fake_clock.now
    breaker = _breaker(fault_server, fake_clock)
    assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    execs = _script_calls(fault_server)

    fault_server.pause()
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    fault_server.resume()
    _wait_for_exec(fault_server, execs)

    admin = fault_server.admin
    assert parse_start(admin.get(START_KEY)) == timed_out_at
    assert 0 < admin.ttl(START_KEY) <= 900
    fake_clock.advance(20 * 60)
    other = _breaker(fault_server, fake_clock)
    assert breaker.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")
    assert other.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")
    assert parse_start(admin.get(START_KEY)) == timed_out_at
    assert admin.keys(f"{DEFAULT_KEY_PREFIX}*").count(START_KEY.encode()) == 1


def test_late_write_does_not_move_a_running_start(fault_server, fake_clock):
    """A timed-out observation of a running panic lands late as a no-op for the start, refreshing the expiry."""
    running_since = fake_clock.now - 20 * 60
    fault_server.write_raw(repr(running_since), ex=60)
    breaker = _breaker(fault_server, fake_clock)
    assert breaker.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")
    fault_server.admin.expire(START_KEY, 60)
    execs = _script_calls(fault_server)

    fake_clock.advance(1)
    fault_server.pause()
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    fault_server.resume()
    _wait_for_exec(fault_server, execs)

    admin = fault_server.admin
    assert parse_start(admin.get(START_KEY)) == running_since
    assert admin.ttl(START_KEY) > 60, "the late EXPIRE refreshed the dead man's switch"
    assert parse_start(admin.get(LAST_SEEN_KEY)) == fake_clock.now
    fake_clock.advance(RETRY_AFTER_S + 0.001)
    assert breaker.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")
