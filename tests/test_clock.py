"""The shared panic clock on a real server: atomicity, expiry, cost, odd stored values."""

import math
import multiprocessing
import threading

import pytest
from structlog.testing import capture_logs

from breaker import PanicClock, VIXCircuitBreaker, redis_client
from breaker.ops.embedded import start_embedded_server
from tests.stubs import round_trips
from tests.workers import panic_at_barrier

KEY = "brain:panic_start_ts"


def test_first_writer_wins_among_20_threads(real_redis, redis_url):
    """20 threads observing at once agree on one start: the first writer's."""
    barrier = threading.Barrier(20)
    results = []

    def worker(i):
        client = redis_client(redis_url, timeout_ms=2000)
        clock = PanicClock(client)
        barrier.wait()
        results.append(clock.observe(1_800_000_000.0 + i))
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 20
    assert len({r.start for r in results}) == 1
    assert sum(r.initialized for r in results) == 1
    assert float(real_redis.get(KEY)) == results[0].start


def test_first_writer_wins_among_8_processes(real_redis, redis_url):
    """8 processes released at a barrier agree on one start timestamp."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=panic_at_barrier, args=(redis_url, "brain:", barrier, 1_800_000_000.0 + i, results))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    try:
        got = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    starts = {start for _, _, start in got}
    assert len(starts) == 1
    assert starts.pop() in {now for now, _, _ in got}
    assert all(answer == (0, "PANIC_FULL") for _, answer, _ in got)
    assert all(p.exitcode == 0 for p in procs)


def test_observation_sets_and_refreshes_expiry(real_redis, fake_clock):
    """Each observation (re)sets the dead man's switch to panic_key_ttl_s."""
    clock = PanicClock(real_redis, panic_key_ttl_s=900)
    clock.observe(fake_clock())
    assert 899 <= real_redis.ttl(KEY) <= 900
    real_redis.expire(KEY, 5)
    clock.observe(fake_clock() + 10)
    assert 899 <= real_redis.ttl(KEY) <= 900


def test_key_without_expiry_gets_one(real_redis, fake_clock):
    """A key set by hand without expiry is given one by the next observation, and keeps its value."""
    real_redis.set(KEY, "1799999000.0")
    assert real_redis.ttl(KEY) == -1
    obs = PanicClock(real_redis).observe(fake_clock())
    assert obs.start == 1799999000.0 and not obs.initialized
    assert real_redis.ttl(KEY) > 0


def test_observation_is_one_script_call(real_redis, fake_clock):
    """A panic observation is a single script call (EVALSHA; EVAL once when the server lacks the script)."""
    real_redis.script_flush()
    real_redis.config_resetstat()
    PanicClock(real_redis).observe(fake_clock())
    PanicClock(real_redis).observe(fake_clock())
    stats = real_redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 2 and stats["cmdstat_eval"]["calls"] == 1
    assert "cmdstat_multi" not in stats  # TIME, SET, GET, EXPIRE run inside the script: no other round trip


@pytest.mark.parametrize("status", ["normal", "panic"])
def test_steady_calls_reach_redis_once_per_refresh_interval(real_redis, fake_clock, status):
    """10 000 calls over 10 s of injected time, calm or panic, make at most 11 round trips (server-counted)."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1.0, server_time=False)
    real_redis.config_resetstat()
    for _ in range(10_000):
        breaker.get_ttl(60, status)
        fake_clock.advance(0.001)
    assert 10 <= round_trips(real_redis) <= 11
    assert "cmdstat_multi" not in real_redis.info("commandstats")
    assert real_redis.hlen("brain:workers") == 1  # every round trip carried the heartbeat
    assert real_redis.exists(KEY) == (status == "panic")  # calm round trips never observe the clock


def test_seed_mode_calm_calls_still_delete_each_time(real_redis, fake_clock):
    """Seed mode: calm calls delete the clock as before (one DEL per call), beside the beat per interval."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, end_on_normal=True, server_time=False)
    real_redis.config_resetstat()
    for _ in range(1000):
        breaker.get_ttl(60, "normal")
        fake_clock.advance(0.01)
    stats = real_redis.info("commandstats")
    assert stats["cmdstat_del"]["calls"] == 1000
    assert 10 <= round_trips(real_redis) <= 11


def test_refresh_interval_zero_reaches_redis_every_call(real_redis, fake_clock):
    """refresh_interval_s=0 sends every panic observation to Redis."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0, server_time=False)
    before = round_trips(real_redis)
    for _ in range(50):
        breaker.get_ttl(60, "panic")
    assert round_trips(real_redis) - before == 50


def test_duration_derived_locally_between_refreshes(real_redis, fake_clock):
    """Between refreshes the duration still grows: tiers advance on the local clock."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=3600, server_time=False)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    fake_clock.advance(15 * 60)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")


def test_tiers_follow_the_shared_start(real_redis, fake_clock):
    """A clock started 46 minutes ago: high tier 1, medium tier 2, low tier 3."""
    real_redis.set(KEY, repr(fake_clock() - 46 * 60), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic", {"league": "Champions League"}) == (0, "PANIC_FULL")
    assert breaker.get_ttl(60, "panic", {"league": "Ligue 1"}) == (5, "PANIC_PARTIAL")
    assert breaker.get_ttl(60, "panic", {"league": "Ligue 2"}) == (20, "DEGRADED")


def test_seed_mode_deletes_on_calm(real_redis, fake_clock):
    """end_on_normal=True: a calm observation deletes the clock and logs it."""
    breaker = VIXCircuitBreaker(
        real_redis, clock=fake_clock, end_on_normal=True, refresh_interval_s=0, server_time=False,
    )
    breaker.get_ttl(60, "panic")
    assert real_redis.exists(KEY)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    assert not real_redis.exists(KEY)
    assert {"event": "PANIC_TIMESTAMP_CLEARED", "log_level": "info", "key": KEY} in [
        {k: e[k] for k in ("event", "log_level", "key") if k in e} for e in logs
    ]


def test_default_mode_keeps_clock_through_calm(real_redis, fake_clock):
    """The default calm-period mode: calm calls leave the clock running."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    breaker.get_ttl(60, "panic")
    breaker.get_ttl(60, "normal")
    assert real_redis.exists(KEY)


@pytest.mark.parametrize("raw", [b"", b"abc", b"nan", b"NaN", b"inf", b"-inf", b"-1", b"0", "caf\u00e9".encode()])
def test_unparseable_value_is_replaced_and_answers_tier_one(real_redis, fake_clock, raw):
    """Garbage is replaced by now atomically, logged, and that call answers tier 1."""
    real_redis.set(KEY, raw)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert float(real_redis.get(KEY)) == fake_clock()
    assert real_redis.ttl(KEY) > 0
    assert any(e["event"] == "INVALID_PANIC_TIMESTAMP" for e in logs)


def test_wrong_type_value_is_replaced(real_redis, fake_clock):
    """A hash at the key (WRONGTYPE) is replaced by a fresh clock."""
    real_redis.hset(KEY, "a", "1")
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert float(real_redis.get(KEY)) == fake_clock()


def test_start_up_to_60_s_ahead_counts_as_zero(real_redis, fake_clock):
    """A start up to 60 s in the future (clock skew) is duration 0: tier 1, never NORMAL, and kept."""
    real_redis.set(KEY, repr(fake_clock() + 59), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert float(real_redis.get(KEY)) == fake_clock() + 59


def test_start_further_ahead_is_replaced_like_garbage(real_redis, fake_clock):
    """A start more than 60 s ahead was written by a broken clock: replaced by now and logged."""
    real_redis.set(KEY, repr(fake_clock() + 3600), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert float(real_redis.get(KEY)) == fake_clock()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["INVALID_PANIC_TIMESTAMP"]


def test_str_and_bytes_values_are_read(fake_clock):
    """Readers accept the start as bytes or str."""
    from breaker import parse_start

    assert parse_start(b"1800000000.5") == parse_start("1800000000.5") == 1800000000.5
    assert parse_start("nan") is None and parse_start(math.inf) is None


def test_flushed_server_starts_a_new_clock(real_redis, fake_clock):
    """After FLUSHALL the next panic observation starts a new clock; nothing raises."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0, server_time=False)
    breaker.get_ttl(60, "panic")
    first = float(real_redis.get(KEY))
    real_redis.flushall()
    fake_clock.advance(120)
    breaker.get_ttl(60, "panic")
    assert float(real_redis.get(KEY)) == first + 120


def test_restarted_server_starts_a_new_clock(fake_clock):
    """A server restarted on the same port (key lost): the next observation starts a new clock."""
    server = start_embedded_server()
    port = server.port
    client = redis_client(server.connection_url, timeout_ms=500)
    try:
        breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=0, retry_after_s=0, server_time=False)
        breaker.get_ttl(60, "panic")
        server.stop()
        fake_clock.advance(60)
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
        server = start_embedded_server(port=port)
        fake_clock.advance(60)
        assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
        assert float(client.get(KEY)) == fake_clock()
    finally:
        client.close()
        server.stop()


def test_read_reports_expiry_and_last_observation(real_redis, fake_clock):
    """The console's snapshot: start, duration, expiry left, last observation."""
    clock = PanicClock(real_redis)
    clock.observe(fake_clock())
    fake_clock.advance(30)
    clock.observe(fake_clock())
    reading = clock.read(fake_clock() + 5)
    assert reading.exists and reading.parses and reading.has_expiry
    assert reading.duration_s == 35
    assert reading.since_last_observation_s == 5
    assert 0 < reading.expiry_left_s <= 900


def test_drill_start_does_not_overwrite_unless_asked(real_redis, fake_clock):
    """A back-dated drill refuses to overwrite a running panic unless overwrite=True."""
    clock = PanicClock(real_redis)
    assert clock.start_drill(fake_clock(), backdate_s=600, hold_s=120)
    assert real_redis.ttl(KEY) <= 120
    assert not clock.start_drill(fake_clock(), backdate_s=3000)
    assert float(real_redis.get(KEY)) == fake_clock() - 600
    assert clock.start_drill(fake_clock(), backdate_s=3000, overwrite=True)
    assert float(real_redis.get(KEY)) == fake_clock() - 3000
    assert clock.end() and not real_redis.exists(KEY)


def test_refused_drill_writes_nothing(real_redis, fake_clock):
    """A drill refused because a panic is running leaves both keys exactly as they were."""
    clock = PanicClock(real_redis)
    clock.observe(fake_clock())
    before = (real_redis.get(KEY), real_redis.get("brain:panic_last_seen_ts"))
    fake_clock.advance(60)
    assert not clock.start_drill(fake_clock(), backdate_s=600, hold_s=7200)
    assert (real_redis.get(KEY), real_redis.get("brain:panic_last_seen_ts")) == before
    assert real_redis.ttl("brain:panic_last_seen_ts") <= 900


def test_drill_overwrites_a_wrong_type_key(real_redis, fake_clock):
    """With overwrite, a drill replaces even a hash at the key."""
    real_redis.hset(KEY, "a", "1")
    assert PanicClock(real_redis).start_drill(fake_clock(), backdate_s=60, overwrite=True)
    assert float(real_redis.get(KEY)) == fake_clock() - 60
