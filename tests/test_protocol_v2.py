"""Protocol v2 on a real server: server time, overrides honoured within an interval, heartbeats, fleet reads."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from unittest import mock

import pytest
from structlog.testing import capture_logs

from breaker import PanicClock, VIXCircuitBreaker, parse_beat, redis_client
from breaker.ops import AuditTrail, Principal, clear_override, read_fleet, set_override
from tests.conftest import FakeClock
from tests.workers import beat_until_killed

KEY = "brain:panic_start_ts"
OVERRIDE = "brain:panic_override"
HOURS_7 = 7 * 3600
CONTEXTS = ({"stakes": "high"}, {"stakes": "medium"}, {"stakes": "low"})
ALICE = Principal.of("alice")


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def answers(breaker) -> list:
    return [breaker.get_ttl(60, "panic", context) for context in CONTEXTS]


@pytest.mark.parametrize("skew_s", [-HOURS_7, HOURS_7])
def test_a_skewed_first_writer_answers_like_a_true_clock(real_redis, skew_s):
    """A worker 7 h behind or ahead starts the panic in server time: every worker answers tier 1 for all classes."""
    skewed = VIXCircuitBreaker(real_redis, clock=lambda: time.time() + skew_s)
    true = VIXCircuitBreaker(real_redis)
    assert answers(skewed) == answers(true) == [(0, "PANIC_FULL")] * 3
    assert abs(float(real_redis.get(KEY)) - server_now(real_redis)) < 5


@pytest.mark.parametrize("skew_s", [-HOURS_7, HOURS_7])
def test_skewed_workers_agree_on_a_running_panic(real_redis, skew_s):
    """On a clock started 100 min ago (server time) a skewed worker answers the true tiers: 2, 3 and 4."""
    real_redis.set(KEY, repr(server_now(real_redis) - 100 * 60), ex=900)
    skewed = VIXCircuitBreaker(real_redis, clock=lambda: time.time() + skew_s)
    expected = [(5, "PANIC_PARTIAL"), (30, "DEGRADED"), (45, "NEW_NORMAL")]
    assert answers(skewed) == answers(VIXCircuitBreaker(real_redis)) == expected


def test_durations_between_round_trips_follow_the_local_clock_from_the_server_offset(real_redis):
    """Between round trips a skewed worker measures server time as its clock plus the offset it learned."""
    clock = FakeClock(time.time() - HOURS_7)
    real_redis.set(KEY, repr(server_now(real_redis) - 14 * 60), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=clock, refresh_interval_s=3600)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    clock.advance(2 * 60)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "soon", None])
def test_a_broken_local_clock_is_never_written(real_redis, value):
    """A clock returning NaN, inf or a non-number: panics fail safe, calm stays calm, nothing is written."""
    breaker = VIXCircuitBreaker(real_redis, clock=lambda: value)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
        assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert real_redis.keys("*") == []
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["INVALID_LOCAL_CLOCK"]


def test_time_time_patched_by_the_host_moves_the_default_clock(real_redis):
    """Without an injected clock, mock.patch("time.time") moves the breaker's clock (read at call time)."""
    breaker = VIXCircuitBreaker(real_redis, server_time=False, refresh_interval_s=3600)
    with mock.patch("time.time", return_value=1_800_000_000.0):
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert float(real_redis.get(KEY)) == 1_800_000_000.0
    with mock.patch("time.time", return_value=1_800_000_000.0 + 20 * 60):
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")


# --- overrides ---------------------------------------------------------------------------------------------


def _tools(client):
    return PanicClock(client), AuditTrail(client)


@pytest.mark.parametrize("status", ["normal", "panic"])
def test_force_full_is_honoured_within_one_interval(real_redis, fake_clock, status):
    """force_full set by another client: from the next round trip on, every call answers (0, PANIC_FULL)."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1.0)
    assert breaker.get_ttl(60, status)[1] in ("NORMAL", "PANIC_FULL")
    set_override(*_tools(real_redis), ALICE, mode="force_full", minutes=5, why="bad feed")
    with capture_logs() as logs:
        fake_clock.advance(1.0)
        assert breaker.get_ttl(60, status, {"stakes": "low"}) == (0, "PANIC_FULL")
        assert breaker.get_ttl(60, "normal") == (0, "PANIC_FULL")
    seen = [e for e in logs if e["event"] == "PANIC_OVERRIDE_SEEN"]
    assert len(seen) == 1 and seen[0]["log_level"] == "warning" and seen[0]["mode"] == "force_full"
    assert seen[0]["who"] == "alice"
    clear_override(*_tools(real_redis), ALICE, why="over")
    fake_clock.advance(1.0)
    assert breaker.get_ttl(60, "normal") == (60, "NORMAL")


def test_force_calm_answers_base_and_stops_observing_so_the_clock_ends(real_redis, fake_clock):
    """force_calm: panic calls answer (base, NORMAL), the clock is no longer fed and expires after its calm period."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1.0)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    set_override(*_tools(real_redis), ALICE, mode="force_calm", minutes=5, why="stuck signal")
    fake_clock.advance(1.0)
    assert breaker.get_ttl(45, "panic") == (45, "NORMAL")  # the round trip that read it is the last to observe
    last_seen = real_redis.get("brain:panic_last_seen_ts")
    real_redis.pexpire(KEY, 300)  # the calm period, shortened so the test can watch it end
    deadline = time.monotonic() + 5
    while real_redis.exists(KEY):
        fake_clock.advance(1.0)
        assert breaker.get_ttl(45, "panic") == (45, "NORMAL")
        assert real_redis.get("brain:panic_last_seen_ts") in (last_seen, None)
        assert time.monotonic() < deadline, "the clock was kept alive"
        time.sleep(0.05)
    assert breaker.get_ttl(45, "panic") == (45, "NORMAL")
    assert not real_redis.exists(KEY)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("garbage", "JSON"),
        (json.dumps({"mode": "force_normal", "who": "x", "why": "", "since": 1.0, "until": 9e9}), "mode"),
        (json.dumps({"mode": "force_calm", "who": "x", "why": "", "since": 1.0}), "end"),
        (json.dumps({"mode": "force_calm", "who": "x", "why": "", "since": 1.0, "until": 2.0}), "expired"),
        pytest.param("[" * 2000 + "]" * 2000, "nested", id="nested"),  # in the 4 KiB read, too deep for json
    ],
)
def test_unusable_overrides_are_ignored_and_logged_once(real_redis, fake_clock, raw, reason):
    """Garbage, a wrong mode, no end or an expired value: never force_calm, INVALID_PANIC_OVERRIDE once."""
    real_redis.set(KEY, repr(server_now(real_redis) - 20 * 60), ex=900)
    real_redis.set(OVERRIDE, raw, ex=600)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1.0)
    with capture_logs() as logs:
        for _ in range(5):
            assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
            assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
            fake_clock.advance(1.0)
    invalid = [e for e in logs if e["event"] == "INVALID_PANIC_OVERRIDE"]
    assert len(invalid) == 1 and invalid[0]["log_level"] == "error" and reason in invalid[0]["reason"]
    assert not [e for e in logs if e["event"] == "PANIC_OVERRIDE_SEEN"]


def test_a_huge_override_is_read_bounded_and_ignored(real_redis, fake_clock):
    """A 1 MB value at the override key is not read whole: it is too long, hence invalid and ignored."""
    real_redis.set(OVERRIDE, '{"mode": "force_calm"' + " " * 1_000_000 + "}")
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert "longer than" in next(e for e in logs if e["event"] == "INVALID_PANIC_OVERRIDE")["reason"]


def test_the_last_override_is_honoured_through_an_outage_until_it_ends(real_redis, fake_clock):
    """While round trips fail, the override last seen stays in force until its until, then calm is calm again."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1.0)
    set_override(*_tools(real_redis), ALICE, mode="force_full", minutes=2, why="drill")
    assert breaker.get_ttl(60, "normal") == (0, "PANIC_FULL")

    class Down:
        def __getattr__(self, name):
            raise ConnectionError("down")

    breaker.panic_clock = Down()
    fake_clock.advance(60)
    assert breaker.get_ttl(60, "normal") == (0, "PANIC_FULL")
    assert breaker.last_error is not None
    fake_clock.advance(61)
    assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")  # fail-safe as before: no reliable start


# --- heartbeats and the fleet ------------------------------------------------------------------------------


def test_each_round_trip_writes_the_workers_beat_in_server_time(real_redis, fake_clock):
    """The beat field holds SPEC 7's JSON: v=1, calls by mode since the last beat, seen in server time."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock)
    breaker.get_ttl(60, "panic", {"stakes": "medium"})
    for _ in range(3):
        breaker.get_ttl(60, "normal")
    fake_clock.advance(1.0)
    breaker.get_ttl(60, "normal")
    beat = json.loads(real_redis.hget("brain:workers", breaker.worker_id))
    assert beat["v"] == 1 and beat["pid"] == os.getpid() and beat["version"]
    assert beat["calls"] == {"NORMAL": 3, "PANIC_FULL": 1} and beat["tiers"] == {"medium_stakes": 1}
    assert beat["fail_safe"] == 0 and beat["override"] is None and beat["error"] is None
    assert abs(beat["seen"] - server_now(real_redis)) < 5
    assert 0 < real_redis.httl("brain:workers", breaker.worker_id)[0] <= 60  # pruned by the server


def _kill(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)


def test_fifty_breakers_report_and_a_killed_one_goes_stale_then_gone(real_redis, redis_url):
    """40 threads and 10 processes write 50 beats, read in one round trip; a killed process's beat ages out."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Queue()
    processes = [ctx.Process(target=beat_until_killed, args=(redis_url, "brain:", 0.2, ready), daemon=True)
                 for _ in range(10)]
    for process in processes:
        process.start()
    try:
        id_of = dict(ready.get(timeout=30) for _ in processes)
        ids = [id_of[process.pid] for process in processes]  # ids[0] is the process killed below
        def one_breaker() -> None:
            VIXCircuitBreaker(redis_client(redis_url, timeout_ms=2000)).get_ttl(60, "panic")

        threads = [threading.Thread(target=one_breaker) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        _kill(processes[0])
        real_redis.config_resetstat()
        view = read_fleet(PanicClock(real_redis), prune=False)
        stats = real_redis.info("commandstats")
        assert stats["cmdstat_exec"]["calls"] == 1 and stats["cmdstat_multi"]["calls"] == 1
        assert len(view.workers) == 50 and not view.invalid
        assert view.counts["panic"] + view.counts["calm"] + view.counts["stale"] == 50
        killed = real_redis.hget("brain:workers", ids[0])
        time.sleep(0.3)
        assert real_redis.hget("brain:workers", ids[0]) == killed  # no longer beating
        assert real_redis.hget("brain:workers", ids[1]) != json.dumps(None)
        seen = json.loads(killed)["seen"]
        assert parse_beat(ids[0], killed, now=seen + 0.5).state == "calm"
        assert parse_beat(ids[0], killed, now=seen + 3 * 0.2 + 1.1).state == "stale"
        assert parse_beat(ids[0], killed, now=seen + 61).state == "gone"
        assert 0 < real_redis.httl("brain:workers", ids[0])[0] <= 60  # the server prunes it then
    finally:
        for process in processes:
            if process.is_alive():
                _kill(process)
