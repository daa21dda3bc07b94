"""VIXCircuitBreaker: fail-safe answers, outage logging, log-on-change, input handling."""

import socket
import threading

import pytest
import redis
from structlog.testing import capture_logs

from breaker import PanicMode, VIXCircuitBreaker, redis_client

from .stubs import StubClock, round_trips

FAIL_SAFE = (0, PanicMode.PANIC_FULL)


@pytest.fixture
def real_redis(server_redis):
    """Every test of this module that uses the real server runs on each supported version (valkey9, redis7)."""
    return server_redis


@pytest.fixture
def redis_url(server_url):
    return server_url


def events(logs, name):
    return [e for e in logs if e["event"] == name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_redis_is_fail_safe_and_warns_once(fake_clock):
    """Without Redis every panic answers PANIC_FULL, with one not_configured warning."""
    breaker = VIXCircuitBreaker(None, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        answers = {breaker.get_ttl(60, "panic", {"stakes": "high"}) for _ in range(100)}
        assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    assert answers == {FAIL_SAFE}
    warned = events(logs, "PANIC_WITHOUT_RELIABLE_TIMESTAMP")
    assert len(warned) == 1 and warned[0]["redis_status"] == "not_configured"


def test_refused_port_fails_safe_with_one_attempt_and_one_error(fake_clock):
    """Connection refused: PANIC_FULL, one connection attempt per back-off window, one ERROR, one warning."""
    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    pool = client.connection_pool
    attempts = []
    take = pool.get_connection

    def counted(*args, **kwargs):
        attempts.append(1)
        return take(*args, **kwargs)

    pool.get_connection = counted
    breaker = VIXCircuitBreaker(client, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        answers = [breaker.get_ttl(60, "panic") for _ in range(200)]
        assert breaker.get_ttl(60, "warning") == (60, "NORMAL")
        assert len(attempts) == 1  # the other 199 did not touch the network: retry_after_s has not passed
        fake_clock.advance(1.0)
        assert breaker.get_ttl(60, "panic") == FAIL_SAFE
    assert len(attempts) == 2
    assert set(answers) == {FAIL_SAFE}
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
    assert errors[0]["redis_status"] == "configured_but_error"
    assert len(events(logs, "PANIC_WITHOUT_RELIABLE_TIMESTAMP")) == 1


def test_outage_then_recovery_logs_once_each(fake_clock, server_factory):
    """One ERROR when Redis goes, one INFO with the count of fail-safe calls when it comes back."""
    server = server_factory()
    port = server.port
    client = redis_client(server.connection_url, timeout_ms=500)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, retry_after_s=1.0, refresh_interval_s=0, server_time=False)
    try:
        breaker.get_ttl(60, "panic")
        server.stop()
        with capture_logs() as logs:
            for _ in range(30):
                assert breaker.get_ttl(60, "panic") == FAIL_SAFE
                fake_clock.advance(0.1)
            server = server_factory(port)
            fake_clock.advance(1.0)
            assert breaker.get_ttl(60, "panic") == FAIL_SAFE  # a new clock starts: tier 1
        assert len(events(logs, "REDIS_UNAVAILABLE")) == 1
        recovered = events(logs, "REDIS_RECOVERED")
        assert len(recovered) == 1 and recovered[0]["calls_answered_fail_safe"] == 30
    finally:
        client.close()
        server.stop()


def test_unexpected_exception_is_fail_safe(fake_clock):
    """Any exception from the client answers PANIC_FULL and logs VIX_CIRCUIT_BREAKER_ERROR."""

    class Broken:
        def pipeline(self, *a, **k):
            raise RuntimeError("bug in a client wrapper")

    breaker = VIXCircuitBreaker(Broken(), clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic") == FAIL_SAFE
    assert events(logs, "VIX_CIRCUIT_BREAKER_ERROR")


@pytest.mark.parametrize("status", [None, "", "unknown", 42, b"panic", ["panic"], "pan ic"])
def test_unknown_status_is_fail_safe_and_touches_no_clock(real_redis, fake_clock, status):
    """An unknown status answers PANIC_FULL, logs an error and observes no clock; its interval's heartbeat
    round trip is still made when due (SPEC 4 v3), and not again within the interval."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, status) == FAIL_SAFE
    before = round_trips(real_redis)
    assert breaker.get_ttl(60, status) == FAIL_SAFE
    assert events(logs, "UNKNOWN_VIX_STATUS")[0]["log_level"] == "error"
    assert round_trips(real_redis) == before
    assert not real_redis.exists("brain:panic_start_ts")
    assert real_redis.hexists("brain:workers", breaker.worker_id)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("PANIC", (5, "PANIC_PARTIAL")), (" panic ", (5, "PANIC_PARTIAL")), ("Panic\n", (5, "PANIC_PARTIAL")),
     ("\tpanic", (5, "PANIC_PARTIAL")), ("NORMAL", (60, "NORMAL")), (" Warning ", (60, "NORMAL")),
     ("normal\n", (60, "NORMAL"))],
)
def test_status_is_case_and_space_insensitive(real_redis, fake_clock, status, expected):
    """Case and surrounding whitespace do not matter (a 20-minute low-stakes panic is tier 2, not fail-safe)."""
    real_redis.set("brain:panic_start_ts", repr(fake_clock() - 20 * 60), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, status, {"stakes": "low"}) == expected
    assert not [e for e in logs if e["log_level"] == "error"]


@pytest.mark.parametrize("base_ttl", [-1, float("nan"), float("inf"), "60", True, None])
def test_bad_base_ttl_is_fail_safe(real_redis, fake_clock, base_ttl):
    """An invalid base_ttl answers PANIC_FULL, logs INVALID_BASE_TTL, touches no clock."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(base_ttl, "normal") == FAIL_SAFE
        assert breaker.get_ttl(base_ttl, "panic") == FAIL_SAFE
    assert len(events(logs, "INVALID_BASE_TTL")) == 2
    assert not real_redis.exists("brain:panic_start_ts")


def test_steady_panic_logs_info_only_on_tier_change(real_redis, fake_clock):
    """10 000 steady-panic calls over 7 hours log one INFO per tier change per stakes class."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    contexts = [{"stakes": "high"}, {"stakes": "medium"}, {"stakes": "low"}]
    with capture_logs() as logs:
        for i in range(10_000):
            breaker.get_ttl(60, "panic", contexts[i % 3])
            fake_clock.advance(420 * 60 / 10_000)
    infos = [e for e in logs if e["log_level"] == "info"]
    assert {e["event"] for e in infos} == {"VIX_TTL_STATE_CHANGE"}
    assert len(infos) == 12  # 4 tiers x 3 classes, the first of each included
    changes = [(e["match_importance"], e["previous_tier"], e["tier"]) for e in infos]
    assert ("low_stakes", 1, 2) in changes and ("high_stakes", 3, 4) in changes
    assert all("previous_mode" in e for e in infos)
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["PANIC_TIMESTAMP_INITIALIZED"]
    assert len(events(logs, "VIX_TTL_DECISION")) == 10_000 - 12


def test_calm_markets_between_panics_log_no_change(real_redis, fake_clock):
    """The signal is per market: calm answers between panic answers change no logged state."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    with capture_logs() as logs:
        for i in range(1000):
            breaker.get_ttl(60, "panic" if i % 2 else "normal", {"stakes": "low"})
    changes = events(logs, "VIX_TTL_STATE_CHANGE")
    assert [(c["previous_mode"], c["mode"]) for c in changes] == [(None, "PANIC_FULL")]


def test_seed_mode_deletion_starts_a_new_logged_episode(real_redis, fake_clock):
    """In seed mode a calm call that deletes the clock resets the logged state: the next panic logs tier 1 anew."""
    breaker = VIXCircuitBreaker(
        real_redis, clock=fake_clock, end_on_normal=True, refresh_interval_s=0, server_time=False,
    )
    assert breaker.panic_key_ttl_s == 86400  # seed mode's usual expiry
    with capture_logs() as logs:
        breaker.get_ttl(60, "panic")
        breaker.get_ttl(60, "normal")
        breaker.get_ttl(60, "panic")
    changes = events(logs, "VIX_TTL_STATE_CHANGE")
    assert [(c["previous_mode"], c["mode"]) for c in changes] == [(None, "PANIC_FULL"), (None, "PANIC_FULL")]
    assert 86000 < real_redis.ttl("brain:panic_start_ts") <= 86400


def test_state_listener_sees_changes_and_cannot_break_answers(real_redis, fake_clock):
    """on_state_change receives each change; a failing listener is logged and does not change the answer."""
    real_redis.set("brain:panic_start_ts", repr(fake_clock() - 20 * 60), ex=900)
    seen = []
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, on_state_change=seen.append, server_time=False)
    breaker.get_ttl(60, "panic", {"stakes": "low"})
    assert seen[0]["mode"] == "PANIC_PARTIAL" and seen[0]["tier"] == 2

    def explode(event):
        raise RuntimeError("audit down")

    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, on_state_change=explode, server_time=False)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
    assert events(logs, "STATE_LISTENER_FAILED")


def test_state_listener_is_not_called_during_an_outage(fake_clock):
    """A listener writing to the same Redis would wait on it: during an outage it is skipped."""
    seen = []
    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    breaker = VIXCircuitBreaker(client, clock=fake_clock, on_state_change=seen.append, server_time=False)
    assert breaker.get_ttl(60, "panic") == FAIL_SAFE
    assert seen == []


def test_logging_failure_never_escapes(fake_clock):
    """A log sink that raises cannot make get_ttl raise: the answer is still given."""
    import structlog

    def broken(logger, method, event_dict):
        raise RuntimeError("log sink closed")

    structlog.configure(processors=[broken])
    breaker = VIXCircuitBreaker(None, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic") == FAIL_SAFE
    assert breaker.get_ttl(60, "bogus") == FAIL_SAFE
    assert breaker.get_ttl("x", "normal") == FAIL_SAFE


class _StuckClock(StubClock):
    """A PanicClock stand-in whose observation never returns until released (a client with no read timeout)."""

    start_key = "brain:panic_start_ts"

    def __init__(self, start):
        self.start = start
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def observe(self, now):
        from breaker.clock import Observation

        self.calls += 1
        if self.calls > 1:
            self.entered.set()
            self.release.wait(10)
        return Observation(self.start, initialized=False)


def test_stale_start_is_not_served_forever_while_a_refresh_hangs(fake_clock):
    """While one thread is stuck refreshing, others use the cached start only briefly, then fail safe."""
    breaker = VIXCircuitBreaker(None, clock=fake_clock, refresh_interval_s=1.0, retry_after_s=1.0, server_time=False)
    stuck = _StuckClock(fake_clock() - 20 * 60)
    breaker.panic_clock = stuck
    low = {"stakes": "low"}
    assert breaker.get_ttl(60, "panic", low) == (5, "PANIC_PARTIAL")
    fake_clock.advance(1.5)
    prober = threading.Thread(target=breaker.get_ttl, args=(60, "panic", low))
    prober.start()
    try:
        assert stuck.entered.wait(10)
        assert breaker.get_ttl(60, "panic", low) == (5, "PANIC_PARTIAL")  # within the grace: the cached start
        fake_clock.advance(30 * 60)
        assert breaker.get_ttl(60, "panic", low) == FAIL_SAFE  # unconfirmed for too long: fail safe
    finally:
        stuck.release.set()
        prober.join(10)


def test_clock_stepping_back_does_not_freeze_the_cache(real_redis, fake_clock):
    """A wall clock that steps back does not make the cached start look fresh for longer."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1.0, server_time=False)
    breaker.get_ttl(60, "panic")
    before = round_trips(real_redis)
    fake_clock.advance(-3600)
    breaker.get_ttl(60, "panic")
    assert round_trips(real_redis) == before + 1


def test_from_settings_wires_the_environment(redis_url):
    """VIXCircuitBreaker.from_settings uses every worker setting and builds its client from REDIS_URL."""
    from breaker import Settings

    settings = Settings.from_env({"REDIS_URL": redis_url, "BREAKER_KEY_PREFIX": "w:", "BREAKER_END_ON_NORMAL": "on",
                                  "BREAKER_REFRESH_INTERVAL_S": "0.5"})
    breaker = VIXCircuitBreaker.from_settings(settings)
    assert (breaker.key_prefix, breaker.end_on_normal, breaker.refresh_interval_s) == ("w:", True, 0.5)
    assert breaker.panic_key_ttl_s == 86400
    assert breaker.get_ttl(60, "panic") == FAIL_SAFE
    assert breaker.redis.exists("w:panic_start_ts")
    breaker.redis.delete("w:panic_start_ts", "w:panic_last_seen_ts")


def test_client_that_may_stall_is_named_once(fake_clock):
    """A passed-in client with long timeouts or retries logs REDIS_CLIENT_MAY_STALL naming the setting."""
    with capture_logs() as logs:
        VIXCircuitBreaker(redis.Redis(host="127.0.0.1", port=1), clock=fake_clock, server_time=False)
        VIXCircuitBreaker(redis_client("redis://127.0.0.1:1"), clock=fake_clock, server_time=False)
    stalls = events(logs, "REDIS_CLIENT_MAY_STALL")
    assert len(stalls) == 1 and stalls[0]["log_level"] == "warning"
    assert any("retry" in s for s in stalls[0]["settings"])
    assert any("socket_timeout" in s for s in stalls[0]["settings"])


def test_threads_share_one_breaker_safely(real_redis, fake_clock):
    """20 threads hammering one breaker get the real tier, never an error."""
    real_redis.set("brain:panic_start_ts", repr(fake_clock() - 20 * 60), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0, server_time=False)
    answers = []

    def worker():
        for i in range(300):
            answers.append(breaker.get_ttl(60, "panic" if i % 2 else "normal", {"stakes": "low"}))

    with capture_logs() as logs:
        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(answers) == 6000
    # A thread that finds another on the network answers fail-safe rather than wait on it.
    assert set(answers) <= {(5, PanicMode.PANIC_PARTIAL), (60, PanicMode.NORMAL), FAIL_SAFE}
    assert answers.count((5, PanicMode.PANIC_PARTIAL)) > 0
    assert not [e for e in logs if e["log_level"] == "error"]


@pytest.mark.parametrize(
    ("name", "value"), [("refresh_interval_s", -1), ("retry_after_s", float("nan")), ("refresh_interval_s", "1")]
)
def test_constructor_rejects_bad_intervals(name, value):
    """Bad intervals fail at construction, naming the argument."""
    with pytest.raises(ValueError, match=name):
        VIXCircuitBreaker(None, **{name: value})


def test_a_new_panic_at_the_same_tier_is_logged(real_redis, fake_clock):
    """A panic that ends and a new one that starts at tier 1 again are two logged episodes."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0, server_time=False)
    with capture_logs() as logs:
        breaker.get_ttl(60, "panic")
        real_redis.delete("brain:panic_start_ts")  # the first panic ended (its expiry ran out)
        fake_clock.advance(3600)
        breaker.get_ttl(60, "normal")
        breaker.get_ttl(60, "panic")
        breaker.get_ttl(60, "panic")
    changes = events(logs, "VIX_TTL_STATE_CHANGE")
    assert [(c["previous_mode"], c["mode"]) for c in changes] == [(None, "PANIC_FULL"), (None, "PANIC_FULL")]
    assert changes[1]["panic_start"] == changes[0]["panic_start"] + 3600


def test_listener_skipped_for_fail_safe_answers_while_a_refresh_hangs(fake_clock):
    """A fail-safe answer given because another thread's refresh hangs does not call the listener."""
    seen = []
    breaker = VIXCircuitBreaker(None, clock=fake_clock, on_state_change=seen.append, server_time=False)
    stuck = _StuckClock(fake_clock() - 20 * 60)
    breaker.panic_clock = stuck
    low = {"stakes": "low"}
    breaker.get_ttl(60, "panic", low)
    assert [e["tier"] for e in seen] == [2]
    fake_clock.advance(1.5)
    prober = threading.Thread(target=breaker.get_ttl, args=(60, "panic", low))
    prober.start()
    try:
        assert stuck.entered.wait(10)
        fake_clock.advance(30 * 60)
        assert breaker.get_ttl(60, "panic", low) == FAIL_SAFE
        assert [e["tier"] for e in seen] == [2]
    finally:
        stuck.release.set()
        prober.join(10)


def test_clock_stepping_back_does_not_stretch_the_back_off(fake_clock):
    """After a failure, a wall clock stepped back an hour does not keep the breaker off Redis for an hour."""
    calls = []

    class Flaky(StubClock):
        def observe(self, now):
            from breaker.clock import Observation

            calls.append(now)
            if len(calls) == 1:
                raise ConnectionError("down")
            return Observation(now - 20 * 60, initialized=False)

    breaker = VIXCircuitBreaker(None, clock=fake_clock, retry_after_s=1.0, server_time=False)
    breaker.panic_clock = Flaky()
    assert breaker.get_ttl(60, "panic") == FAIL_SAFE
    fake_clock.advance(-3600)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
    assert len(calls) == 2
