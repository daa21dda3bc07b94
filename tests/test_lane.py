"""The worker's kept connection (``breaker.wire.Lane``): one checkout for many round trips, never a stale or
half-read connection, safe across threads, ``client.close()`` and fork."""

import gc
import os
import threading

import pytest
import redis

from breaker import PanicClock, VIXCircuitBreaker
from breaker.wire import Lane, can_keep, pack

KEY = "brain:panic_start_ts"
NOW = 1_800_000_000.0


class Checkouts:
    """Counts the connections taken from a client's pool."""

    def __init__(self, client) -> None:
        self.count = 0
        pool = client.connection_pool
        take = pool.get_connection

        def counted(*args, **kwargs):
            self.count += 1
            return take(*args, **kwargs)

        pool.get_connection = counted


def test_a_worker_checks_out_one_connection_for_many_round_trips(real_redis, fake_clock):
    """refresh_interval_s=0: 200 panic calls, 200 round trips on the server, one pool checkout."""
    checkouts = Checkouts(real_redis)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0)
    real_redis.config_resetstat()
    before = checkouts.count
    for _ in range(200):
        breaker.get_ttl(60, "panic", {"stakes": "low"})
    assert breaker.last_error is None
    assert checkouts.count - before == 1
    stats = real_redis.info("commandstats")
    evalsha, evals = stats["cmdstat_evalsha"], stats.get("cmdstat_eval", {"calls": 0})
    assert evalsha["calls"] - evalsha["failed_calls"] + evals["calls"] == 200  # NOSCRIPT once, then EVAL


def test_a_connection_the_server_closed_is_replaced_without_failing_a_call(real_redis, fake_clock):
    """CLIENT KILL between two round trips: the next call notices before sending and reconnects."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0)
    breaker.get_ttl(60, "panic")
    real_redis.client_kill_filter(_type="normal", skipme=True)
    real_redis.set(KEY, "garbage")  # unusable: only a round trip that reaches the server replaces it
    breaker.get_ttl(60, "panic")
    assert breaker.last_error is None
    assert float(real_redis.get(KEY)) > 1e9  # replaced by a start


def test_client_close_then_the_next_round_trip_reconnects(real_redis, fake_clock):
    """client.close() disconnects the kept connection too; the breaker checks out a new one."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    real_redis.close()
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert breaker.last_error is None
    assert real_redis.exists(KEY) == 1


def test_an_error_reply_keeps_the_connection_in_step(real_redis):
    """An error reply is raised; the same kept connection then answers the next command correctly."""
    lane = Lane(real_redis)
    real_redis.set("k", "v")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        lane.call(pack(b"HGET", b"k", b"f"), budget_s=1.0)
    assert lane.call(pack(b"GET", b"k"), budget_s=1.0) == b"v"
    assert lane.call(pack(b"ECHO", b"a\r\nb"), budget_s=1.0) == b"a\r\nb"  # CRLF inside a string


def test_threads_share_one_clock_without_crossed_replies(real_redis):
    """8 threads calling one lane at once: each gets its own reply (the busy lane sends the others to the pool)."""
    lane = Lane(real_redis)
    for i in range(8):
        real_redis.set(f"k{i}", f"v{i}")
    wrong = []

    def work(i: int) -> None:
        for _ in range(200):
            if lane.call(pack(b"GET", f"k{i}".encode()), budget_s=2.0) != f"v{i}".encode():
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_forked_child_does_not_use_the_parents_connection(real_redis):
    """After fork the child checks out its own connection; the parent's keeps working."""
    lane = Lane(real_redis)
    parent_id = lane.call(pack(b"CLIENT", b"ID"), budget_s=1.0)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if it talked on a connection of its own
        ok = False
        try:
            ok = lane.call(pack(b"CLIENT", b"ID"), budget_s=1.0) != parent_id
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lane.call(pack(b"CLIENT", b"ID"), budget_s=1.0) == parent_id


def test_a_collected_lane_gives_its_connection_back(real_redis):
    """A lane garbage collected (its breaker gone) returns the connection to the pool: nothing leaks."""
    pool = real_redis.connection_pool
    lane = Lane(real_redis)
    lane.call(pack(b"PING"), budget_s=1.0)
    assert len(pool._in_use_connections) == 1
    del lane
    gc.collect()
    assert len(pool._in_use_connections) == 0
    assert real_redis.ping()


def test_only_a_plain_unbounded_pool_is_kept(real_redis, redis_url):
    """A BlockingConnectionPool's few connections are the host's: its round trips check out per call."""
    assert can_keep(real_redis)
    blocking = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(redis_url, timeout=0.05))
    try:
        assert not can_keep(blocking)
        assert PanicClock(blocking, keep_connection=True)._lane is None
    finally:
        blocking.close()
