"""A hung server (SIGSTOP): bounded waits, one network wait per back-off window, one ERROR, one INFO.

The exact proof of "one network wait per window" is the count of round trips the breaker starts. Waits are
checked on blocked time (see ``TimedCall``): on a shared 2-core machine wall time also holds however long
other processes kept this one off the CPU, which says nothing about the breaker.
"""

from __future__ import annotations

import statistics
import threading

import redis
from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client
from breaker.wire import can_bound as can_pack_by_hand

from .conftest import RoundTrips, timed_call

READ_TIMEOUT_MS = 50
SLACK_MS = 20
RETRY_AFTER_S = 0.2
THREADS = 4
CALLS_PER_THREAD = 50
TIER_2_AGE_S = 20 * 60  # low stakes: tier 2, TTL 5
# The real tier is back on the first call after retry_after_s in every run measured; a just-woken server on
# a loaded machine may still miss that call's 50 ms timeout (a new, short failure), hence up to 3 windows.
MAX_RECOVERY_WINDOWS = 3


def _assert_waits(waiting, answered_at_once):
    """The calls that met the hung server were blocked one timeout at most; no other call waited for one."""
    assert max(call.blocked_ms for call in waiting) <= READ_TIMEOUT_MS + SLACK_MS
    assert max(call.blocked_ms for call in answered_at_once) < READ_TIMEOUT_MS, "only the probing call waits"
    assert statistics.median(call.wall_ms for call in answered_at_once) < 1.0


def _real_answer(breaker, clock):
    """Ask until the breaker reaches Redis, one back-off window at a time: (call, windows waited)."""
    call, windows = timed_call(breaker.get_ttl, 60, "panic"), 0
    while call.answer == (0, "PANIC_FULL") and windows < MAX_RECOVERY_WINDOWS:
        windows += 1
        clock.advance(RETRY_AFTER_S + 0.001)
        call = timed_call(breaker.get_ttl, 60, "panic")
    return call, windows


def _hold_a_live_connection(client) -> None:
    """A pooled connection, so that the hang meets a command rather than a handshake; up to 5 tries."""
    for _ in range(5):
        try:
            client.ping()
            return
        except redis.RedisError:
            continue
    raise AssertionError("the healthy server did not answer PING in 5 tries")


def _warm_up(client, clock) -> bool:
    """A first healthy observation so that the pool holds a live connection; up to 5 tries on a loaded machine."""
    for _ in range(5):
        warm = VIXCircuitBreaker(
            client, clock=clock, refresh_interval_s=0, retry_after_s=RETRY_AFTER_S, server_time=False,
        )
        if warm.get_ttl(60, "panic") == (5, "PANIC_PARTIAL"):
            return True
    return False


def _hammer(breaker, barrier, status, calls, out):
    barrier.wait(timeout=10)
    for _ in range(calls):
        out.append(timed_call(breaker.get_ttl, 60, status))


def _run_threads(breaker, *, panic_threads, calm_threads, calls):
    barrier = threading.Barrier(panic_threads + calm_threads)
    panic = [[] for _ in range(panic_threads)]
    calm = [[] for _ in range(calm_threads)]
    threads = [threading.Thread(target=_hammer, args=(breaker, barrier, "panic", calls, out)) for out in panic]
    threads += [threading.Thread(target=_hammer, args=(breaker, barrier, "normal", calls, out)) for out in calm]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return [r for out in panic for r in out], [r for out in calm for r in out]


def test_hung_server_answers_fail_safe_with_one_network_wait_per_window(fault_server, fake_clock):
    """4 threads x 50 panic calls on a stopped server: all PANIC_FULL, one timeout, then none until retry_after_s."""
    fault_server.write_raw(repr(fake_clock.now - TIER_2_AGE_S), ex=900)
    client = redis_client(fault_server.url, timeout_ms=READ_TIMEOUT_MS)
    assert can_pack_by_hand(client), "the worker's production path: the hand-packed MULTI/EXEC"
    round_trips = RoundTrips(client)
    assert _warm_up(client, fake_clock), "the healthy server serves the real tier"
    breaker = VIXCircuitBreaker(
        client, clock=fake_clock, refresh_interval_s=0, retry_after_s=RETRY_AFTER_S, server_time=False,
    )
    before = round_trips.count
    commands_before = fault_server.command_calls()

    with capture_logs() as logs:
        fault_server.pause()
        panic, calm = _run_threads(breaker, panic_threads=THREADS, calm_threads=1, calls=CALLS_PER_THREAD)
        first_window = round_trips.count - before

        fake_clock.advance(RETRY_AFTER_S / 2)
        still_waiting = [timed_call(breaker.get_ttl, 60, "panic") for _ in range(20)]
        in_window = round_trips.count - before

        fake_clock.advance(RETRY_AFTER_S / 2 + 0.001)
        probe = timed_call(breaker.get_ttl, 60, "panic")
        after_probe = round_trips.count - before

        fault_server.resume()
        backing_off = timed_call(breaker.get_ttl, 60, "panic")
        recovered, windows = _real_answer(breaker, fake_clock)

    assert {c.answer for c in panic + still_waiting + [probe, backing_off]} == {(0, "PANIC_FULL")}
    assert {c.answer for c in calm} == {(60, "NORMAL")}
    assert recovered.answer == (5, "PANIC_PARTIAL")

    assert first_window == 1, "only one of the concurrent calls (calm or panic) may go to the hung server"
    assert in_window == 1, "no network call before retry_after_s has passed"
    assert after_probe == 2, "one probe once retry_after_s has passed"

    # Calm calls carry the round trip too (protocol v2): the one call that waited may be a calm one.
    by_wait = sorted(panic + calm, key=lambda call: call.blocked_ms)
    _assert_waits(waiting=[by_wait[-1], probe], answered_at_once=by_wait[:-1] + still_waiting)

    errors = [e for e in logs if e["event"] == "REDIS_UNAVAILABLE"]
    recoveries = [e for e in logs if e["event"] == "REDIS_RECOVERED"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    assert len(recoveries) == 1 and recoveries[0]["log_level"] == "info"
    fail_safe = len(panic) + len(still_waiting) + 2 + windows  # the first call of _real_answer is in the window
    assert recoveries[0]["calls_answered_fail_safe"] == fail_safe
    assert sum(e["event"] == "PANIC_WITHOUT_RELIABLE_TIMESTAMP" for e in logs) <= 1

    commands = fault_server.command_calls()
    late = {name: n - commands_before.get(name, 0) for name, n in commands.items() if n != commands_before.get(name)}
    worst_wall = max(c.wall_ms for c in panic + still_waiting + calm + [probe])
    print(
        f"hang: waiting calls blocked {by_wait[-1].blocked_ms:.1f} / {probe.blocked_ms:.1f} ms "
        f"(wall {by_wait[-1].wall_ms:.1f} / {probe.wall_ms:.1f}); others blocked at most "
        f"{max(c.blocked_ms for c in by_wait[:-1] + still_waiting):.2f} ms; worst wall of any call "
        f"{worst_wall:.1f} ms; round trips started for {fail_safe} fail-safe answers: {after_probe}; "
        f"back-off windows until the real tier: {windows}; commands the server ran after SIGCONT (recovery "
        f"included): {late}"
    )


def test_hung_server_in_seed_mode_waits_once_for_calm_and_panic(fault_server, fake_clock):
    """Seed mode (every calm call deletes the key): 4 threads of calm and panic calls, one network wait in all."""
    client = redis_client(fault_server.url, timeout_ms=READ_TIMEOUT_MS)
    _hold_a_live_connection(client)
    round_trips = RoundTrips(client)
    breaker = VIXCircuitBreaker(
        client, clock=fake_clock, end_on_normal=True, retry_after_s=RETRY_AFTER_S, server_time=False,
    )

    fault_server.pause()
    panic, calm = _run_threads(breaker, panic_threads=2, calm_threads=2, calls=CALLS_PER_THREAD)
    fault_server.resume()

    assert {c.answer for c in panic} == {(0, "PANIC_FULL")}
    assert {c.answer for c in calm} == {(60, "NORMAL")}
    assert round_trips.count == 1, "one round trip in the back-off window, calm or panic"
    by_wait = sorted(panic + calm, key=lambda call: call.blocked_ms)
    _assert_waits(waiting=by_wait[-1:], answered_at_once=by_wait[:-1])


def test_warm_worker_serves_its_last_start_until_the_refresh_is_due(fault_server, fake_clock):
    """During a hang a worker keeps its last start for refresh_interval_s without the network, then fails safe."""
    fault_server.write_raw(repr(fake_clock.now - TIER_2_AGE_S), ex=900)
    client = redis_client(fault_server.url, timeout_ms=READ_TIMEOUT_MS)
    round_trips = RoundTrips(client)
    breaker = VIXCircuitBreaker(
        client, clock=fake_clock, refresh_interval_s=1.0, retry_after_s=RETRY_AFTER_S, server_time=False,
    )
    assert _real_answer(breaker, fake_clock)[0].answer == (5, "PANIC_PARTIAL")
    trips = round_trips.count

    fault_server.pause()
    fake_clock.advance(0.5)
    assert breaker.get_ttl(60, "panic") == (5, "PANIC_PARTIAL"), "the start read 0.5 s ago is still reliable"
    assert round_trips.count == trips
    fake_clock.advance(0.5)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL"), "refresh due, Redis silent: fail safe"
    assert round_trips.count == trips + 1
    fault_server.resume()

    recovered, _ = _real_answer(breaker, fake_clock)
    assert recovered.answer == (5, "PANIC_PARTIAL")


def test_hang_while_replacing_an_unusable_value_costs_one_timeout(fault_server, fake_clock):
    """Garbage at the key, then a hang between the observation and its WATCH/MULTI repair: one timeout, fail-safe."""
    fault_server.write_raw(b"garbage")
    client = redis_client(fault_server.url, timeout_ms=READ_TIMEOUT_MS)
    _hold_a_live_connection(client)
    # the observation is round trip 1; its WATCH/MULTI repair of the unusable value is round trip 2
    round_trips = RoundTrips(client, before_each=lambda n: fault_server.pause() if n == 2 else None)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, retry_after_s=RETRY_AFTER_S, server_time=False)
    with capture_logs() as logs:
        call = timed_call(breaker.get_ttl, 60, "panic")
    fault_server.resume()
    assert call.answer == (0, "PANIC_FULL")
    assert round_trips.count == 2, "the observation went through, the repair met the hang"
    assert call.blocked_ms <= READ_TIMEOUT_MS + SLACK_MS
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["REDIS_UNAVAILABLE"]
