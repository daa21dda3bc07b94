"""Issue 25 (and issue 21 items 3, 9; issue 19's worker cap) on a real server: implausible starts, the
last-observed mark without scripts, bad input that still beats, and the worker's own override cap."""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import pytest
from structlog.testing import capture_logs

from breaker import PanicClock, VIXCircuitBreaker, redis_client, refresh
from breaker.config import ConfigError, Settings
from breaker.ops.zombie import zombie_verdict
from breaker.override import Override, OverrideMode
from tests.conftest import FakeClock

KEY = "brain:panic_start_ts"
SEEN = "brain:panic_last_seen_ts"


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@pytest.fixture
def no_scripts(real_redis, redis_url):
    """An ACL user denied scripting (and MULTI): the separate-command fallback."""
    real_redis.execute_command("ACL", "SETUSER", "noscript", "reset", "on", ">pw", "~*", "&*", "+@all",
                               "-multi", "-exec", "-watch", "-eval", "-evalsha")
    client = redis_client(f"redis://noscript:pw@{redis_url.split('//', 1)[1]}", timeout_ms=1000)
    yield client
    client.close()
    real_redis.execute_command("ACL", "DELUSER", "noscript")


# --- implausible starts (SPEC 3 v3) -------------------------------------------------------------------------

@pytest.mark.parametrize("stored", ["631152000.0", "12345.6"])  # 1990, and a monotonic-clock reading
def test_a_start_older_than_the_max_panic_age_is_replaced(real_redis, stored):
    real_redis.set(KEY, stored, ex=900)
    breaker = VIXCircuitBreaker(real_redis)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")  # tier 1 of a fresh panic, not tier 4
    start = float(real_redis.get(KEY))
    assert abs(start - server_now(real_redis)) < 5
    [error] = [e for e in logs if e["event"] == "INVALID_PANIC_TIMESTAMP"]
    assert stored in error["value"]


def test_a_start_within_the_max_panic_age_is_kept(real_redis):
    old = repr(server_now(real_redis) - 40 * 3600)
    real_redis.set(KEY, old, ex=900)
    VIXCircuitBreaker(real_redis).get_ttl(60, "panic")
    assert real_redis.get(KEY).decode() == old
    real_redis.set(KEY, old, ex=900)
    VIXCircuitBreaker(real_redis, max_panic_age_h=24).get_ttl(60, "panic")
    assert real_redis.get(KEY).decode() != old


def test_fallback_treats_an_implausible_start_like_garbage(real_redis, no_scripts):
    real_redis.set(KEY, "631152000.0", ex=30)
    breaker = VIXCircuitBreaker(no_scripts, refresh_interval_s=0, retry_after_s=0)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert [e for e in logs if e["event"] == "INVALID_PANIC_TIMESTAMP"]
    assert real_redis.ttl(KEY) <= 30  # not renewed: it ends


def test_max_panic_age_setting():
    assert Settings.from_env({}).max_panic_age_h == 48.0
    assert Settings.from_env({"BREAKER_MAX_PANIC_AGE_H": "72"}).max_panic_age_h == 72.0
    with pytest.raises(ConfigError, match="BREAKER_MAX_PANIC_AGE_H"):
        Settings.from_env({"BREAKER_MAX_PANIC_AGE_H": "0"})
    assert VIXCircuitBreaker.from_settings(Settings(max_panic_age_h=5.0)).max_panic_age_s == 5 * 3600


def test_operator_reading_flags_an_implausible_start(real_redis):
    real_redis.set(KEY, "631152000.0", ex=900)
    real_redis.set(SEEN, repr(server_now(real_redis)), ex=900)
    reading = PanicClock(real_redis).read_now()
    assert not reading.parses
    verdict = zombie_verdict(reading)
    assert verdict.suspect and any("implausible start" in r for r in verdict.reasons)


# --- the last-observed mark without scripts (issue 21 item 9) -----------------------------------------------

def test_no_scripting_users_healthy_panic_is_never_a_zombie(real_redis, no_scripts):
    breaker = VIXCircuitBreaker(no_scripts, refresh_interval_s=0)
    breaker.get_ttl(60, "panic")
    first = PanicClock(real_redis).read_now()
    assert first.last_observed_at is not None
    assert not zombie_verdict(first).suspect
    breaker.get_ttl(60, "panic")
    second = PanicClock(real_redis).read_now()
    assert second.last_observed_at > first.last_observed_at
    assert not zombie_verdict(second).suspect


# --- bad input still beats (issue 21 item 3) ----------------------------------------------------------------

def _beat(real_redis, breaker) -> dict:
    raw = real_redis.hget("brain:workers", breaker.worker_id)
    assert raw is not None, "no heartbeat"
    return json.loads(raw)


def test_a_worker_fed_only_bad_input_still_beats(real_redis):
    clock = FakeClock()
    breaker = VIXCircuitBreaker(real_redis, clock=clock, refresh_interval_s=1.0, server_time=False)
    for _ in range(3):
        assert breaker.get_ttl(60, "bogus") == (0, "PANIC_FULL")
    first = _beat(real_redis, breaker)
    assert first["fail_safe"] == 1 and first["calls"] == {"PANIC_FULL": 1}  # the call that made the round trip
    clock.advance(1.5)
    assert breaker.get_ttl("sixty", "normal") == (0, "PANIC_FULL")  # beats the two before it and itself
    assert _beat(real_redis, breaker)["fail_safe"] == 3
    assert breaker.get_ttl(-1, "normal") == (0, "PANIC_FULL")
    clock.advance(1.5)
    assert breaker.get_ttl(None, "normal") == (0, "PANIC_FULL")
    last = _beat(real_redis, breaker)
    assert last["fail_safe"] == 2 and last["calls"] == {"PANIC_FULL": 2}
    assert real_redis.get(KEY) is None  # bad input never observes the clock


# --- the worker's own override cap (SPEC 12) ----------------------------------------------------------------

def test_a_ten_hour_override_stops_after_the_workers_max(real_redis):
    now = server_now(real_redis)
    real_redis.set("brain:panic_override",
                   Override(OverrideMode.FORCE_FULL, "tool", "straight into Redis", now - 1, now + 10 * 3600).to_json())
    clock = FakeClock()
    breaker = VIXCircuitBreaker(real_redis, clock=clock, refresh_interval_s=100_000, max_override_min=60)
    assert breaker.get_ttl(60, "normal") == (0, "PANIC_FULL")
    clock.advance(58 * 60)
    assert breaker.get_ttl(60, "normal") == (0, "PANIC_FULL")
    clock.advance(3 * 60)
    assert breaker.get_ttl(60, "normal") == (60, "NORMAL")


def test_a_capped_override_is_not_honoured_after_a_round_trip_either(real_redis):
    now = server_now(real_redis)
    real_redis.set("brain:panic_override",
                   Override(OverrideMode.FORCE_FULL, "tool", "old", now - 2 * 3600, now + 8 * 3600).to_json())
    breaker = VIXCircuitBreaker(real_redis, refresh_interval_s=0)
    assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    assert VIXCircuitBreaker(real_redis, refresh_interval_s=0, max_override_min=600).get_ttl(60, "normal") == (
        0, "PANIC_FULL")


# --- the fallback is a state, not a verdict -----------------------------------------------------------------

class RefusingProxy:
    """Loopback proxy to the server that, while ``refusing`` is set, answers every script command itself with
    "unknown command" (a proxy restarting, a script cache flushed at the wrong moment); all else passes."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refusing = threading.Event()
        self.scripts_passed = 0
        self.closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                script = b"EVALSHA" in data.upper() or b"\r\nEVAL\r\n" in data.upper()
                if script and self.refusing.is_set():
                    client.sendall(b"-ERR unknown command 'EVALSHA', with args beginning with: \r\n")
                    continue
                if script:
                    self.scripts_passed += 1
                upstream.sendall(data)

    def _replies(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                client.sendall(data)

    def close(self) -> None:
        self.closing.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def refusing_proxy(valkey_server, real_redis):
    proxy = RefusingProxy(valkey_server.port)
    yield proxy
    proxy.close()


def test_unknown_command_for_a_while_then_back_on_the_atomic_path(real_redis, refusing_proxy):
    """1.5 s of "unknown command": the worker falls back (logged once), tries the script again after its
    back-off (doubling while still refused) and returns to it when it works (logged once)."""
    real_redis.script_load(refresh.SCRIPT)  # one script command per round trip (no NOSCRIPT, then EVAL)
    clock = FakeClock()
    client = redis_client(f"redis://127.0.0.1:{refusing_proxy.port}/0", timeout_ms=1000)
    breaker = VIXCircuitBreaker(client, clock=clock, refresh_interval_s=0.25, scripting_retry_s=1.0,
                                server_time=False)
    refusing_proxy.refusing.set()
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
        for _ in range(4):  # 0.25 s steps up to 1.0 s: still refused; the retry at 1.0 s doubles the wait to 2 s
            clock.advance(0.25)
            breaker.get_ttl(60, "panic")
        assert refusing_proxy.scripts_passed == 0
        clock.advance(0.5)  # 1.5 s: the proxy is healthy again
        refusing_proxy.refusing.clear()
        breaker.get_ttl(60, "panic")
        assert refusing_proxy.scripts_passed == 0, "no retry before the back-off (2 s after the 1 s retry)"
        for _ in range(6):  # up to 3.0 s: the retry is due at 3.0 s
            clock.advance(0.25)
            breaker.get_ttl(60, "panic")
        assert refusing_proxy.scripts_passed == 1
        clock.advance(0.25)
        breaker.get_ttl(60, "panic")
        assert refusing_proxy.scripts_passed == 2, "back on the atomic path: every round trip is the script"
    events = [e["event"] for e in logs if e["event"].startswith("REDIS_")]
    assert events == ["REDIS_WITHOUT_SCRIPTING", "REDIS_SCRIPTING_RESTORED"]
    client.close()


def test_a_capped_override_logs_its_cap_once_then_ends(real_redis):
    now = server_now(real_redis)
    real_redis.set("brain:panic_override",
                   Override(OverrideMode.FORCE_FULL, "tool", "long", now - 1, now + 10 * 3600).to_json())
    clock = FakeClock()
    breaker = VIXCircuitBreaker(real_redis, clock=clock, refresh_interval_s=1.0, server_time=False,
                                max_override_min=60)
    with capture_logs() as logs:
        for _ in range(5):
            assert breaker.get_ttl(60, "normal") == (0, "PANIC_FULL")
            clock.advance(2)
    assert [e["event"] for e in logs if e["event"] == "PANIC_OVERRIDE_CAPPED"] == ["PANIC_OVERRIDE_CAPPED"]


def test_a_drill_cannot_be_back_dated_past_the_max_panic_age(real_redis):
    with pytest.raises(ValueError, match="BREAKER_MAX_PANIC_AGE_H"):
        PanicClock(real_redis).start_drill(server_now(real_redis), backdate_s=49 * 3600)
    assert PanicClock(real_redis, max_panic_age_s=72 * 3600).start_drill(server_now(real_redis), backdate_s=49 * 3600)


def test_an_override_that_starts_in_the_future_does_not_pin_the_fleet_from_now(real_redis):
    """Review (identity), issue 19 finding 3 again: the cap counts from `since`, so an override written straight
    into Redis with `since` 10 h ahead and `until` 30 min after it (within any maximum) was honoured from now for
    10.5 h. The tools write `since` in server time, now; a `since` more than a minute ahead is refused (logged,
    ignored): planned windows are the schedule's (docs/protocol.md)."""
    now = server_now(real_redis)
    real_redis.set("brain:panic_override",  # force_full: its answer (TTL 0) differs from a calm fleet's
                   Override(OverrideMode.FORCE_FULL, "tool", "x", now + 10 * 3600, now + 10.5 * 3600).to_json())
    with capture_logs() as logs:
        assert VIXCircuitBreaker(real_redis, refresh_interval_s=0).get_ttl(60, "normal") == (60, "NORMAL")
    assert any(e["event"] == "INVALID_PANIC_OVERRIDE" and "future" in e["reason"] for e in logs)
    real_redis.set("brain:panic_override",  # a writer's clock a few seconds ahead of the server's: still honoured
                   Override(OverrideMode.FORCE_FULL, "tool", "x", now + 5, now + 600).to_json())
    assert VIXCircuitBreaker(real_redis, refresh_interval_s=0).get_ttl(60, "normal") == (0, "PANIC_FULL")
