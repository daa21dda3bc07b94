"""A hung server (SIGSTOP): bounded latency, one network wait per back-off window, one ERROR, one INFO."""

from __future__ import annotations

import statistics
import threading
import time

from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client

from .conftest import CountingClient

READ_TIMEOUT_MS = 50
SLACK_MS = 20
RETRY_AFTER_S = 0.2
THREADS = 4
CALLS_PER_THREAD = 50
TIER_2_AGE_S = 20 * 60  # low stakes: tier 2, TTL 5
# After SIGCONT the real tier is back on the first call after retry_after_s; the server, just woken on a
# loaded 2-core machine, may miss that call's 50 ms timeout, which is a new (short) failure, hence up to 3.
MAX_RECOVERY_WINDOWS = 3


def _assert_latencies(waiting, answered_at_once):
    """The calls that met the hung server waited one timeout; the others did not wait at all.

    The round-trip counts are the exact proof. Wall times on a shared 2-core machine carry CPU noise, so:
    no call reaches two timeouts, the best waiting call is within timeout + 20 ms, and the typical other
    call answers in well under a millisecond.
    """
    assert max(waiting + answered_at_once) < 2 * READ_TIMEOUT_MS, "no call waited for two timeouts"
    assert min(waiting) <= READ_TIMEOUT_MS + SLACK_MS
    assert statistics.median(answered_at_once) < 1.0


def _first_real_answer(breaker, clock):
    """Let one back-off window pass at a time until the breaker reaches Redis again: (answer, windows)."""
    windows = 0
    while windows < MAX_RECOVERY_WINDOWS:
        windows += 1
        clock.advance(RETRY_AFTER_S + 0.001)
        answer = _timed(breaker, 60, "panic")
        if answer[0] != (0, "PANIC_FULL"):
            break
    return answer, windows


def _warm_up(client, clock) -> bool:
    """A first healthy observation; a loaded machine may miss one 50 ms timeout, so up to 5 tries."""
    for _ in range(5):
        warm = VIXCircuitBreaker(client, clock=clock, refresh_interval_s=0, retry_after_s=RETRY_AFTER_S)
        if warm.get_ttl(60, "panic") == (5, "PANIC_PARTIAL"):
            return True
    return False


def _timed(breaker, *args):
    started = time.perf_counter()
    answer = breaker.get_ttl(*args)
    return answer, (time.perf_counter() - started) * 1000.0


def _hammer(breaker, barrier, status, calls, out):
    barrier.wait(timeout=10)
    for _ in range(calls):
        out.append(_timed(breaker, 60, status))


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
    client = CountingClient(redis_client(fault_server.url, timeout_ms=READ_TIMEOUT_MS))
    assert _warm_up(client, fake_clock), "the healthy server serves the real tier (and the pool holds a connection)"
    breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=0, retry_after_s=RETRY_AFTER_S)
    before = client.pipelines
    commands_before = fault_server.command_calls()

    with capture_logs() as logs:
        fault_server.pause()
        panic, calm = _run_threads(breaker, panic_threads=THREADS, calm_threads=1, calls=CALLS_PER_THREAD)
        first_window = client.pipelines - before

        fake_clock.advance(RETRY_AFTER_S / 2)
        still_waiting = [_timed(breaker, 60, "panic") for _ in range(20)]
        in_window = client.pipelines - before

        fake_clock.advance(RETRY_AFTER_S / 2 + 0.001)
        probe = _timed(breaker, 60, "panic")
        after_probe = client.pipelines - before

        fault_server.resume()
        backing_off = _timed(breaker, 60, "panic")
        recovered, windows = _first_real_answer(breaker, fake_clock)

    answers = {answer for answer, _ in panic + still_waiting + [probe, backing_off]}
    assert answers == {(0, "PANIC_FULL")}
    assert {answer for answer, _ in calm} == {(60, "NORMAL")}
    assert recovered[0] == (5, "PANIC_PARTIAL")

    assert first_window == 1, "only one of 200 concurrent calls may go to the hung server"
    assert in_window == 1, "no network call before retry_after_s has passed"
    assert after_probe == 2, "one probe once retry_after_s has passed"

    latencies = sorted(ms for _, ms in panic)
    _assert_latencies(waiting=[latencies[-1], probe[1]], answered_at_once=latencies[:-1] + [ms for _, ms in calm])

    errors = [e for e in logs if e["event"] == "REDIS_UNAVAILABLE"]
    recoveries = [e for e in logs if e["event"] == "REDIS_RECOVERED"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    assert len(recoveries) == 1 and recoveries[0]["log_level"] == "info"
    fail_safe = len(panic) + len(still_waiting) + 2 + (windows - 1)
    assert recoveries[0]["calls_answered_fail_safe"] == fail_safe
    assert sum(e["event"] == "PANIC_WITHOUT_RELIABLE_TIMESTAMP" for e in logs) <= 1

    commands = fault_server.command_calls()
    late = {name: n - commands_before.get(name, 0) for name, n in commands.items() if n != commands_before.get(name)}
    print(
        f"hang: worst panic call {latencies[-1]:.1f} ms, next {latencies[-2]:.2f} ms, probe {probe[1]:.1f} ms, "
        f"worst calm {max(ms for _, ms in calm):.2f} ms; round trips started during the outage: {after_probe}; "
        f"back-off windows until the real tier: {windows}; "
        f"commands the server ran after SIGCONT, the recovery's MULTI/EXEC included: {late}"
    )


def test_hung_server_in_seed_mode_waits_once_for_calm_and_panic(fault_server, fake_clock):
    """Seed mode (every calm call deletes the key): 4 threads of calm and panic calls, one network wait in all."""
    client = CountingClient(redis_client(fault_server.url, timeout_ms=READ_TIMEOUT_MS))
    client.ping()
    breaker = VIXCircuitBreaker(client, clock=fake_clock, end_on_normal=True, retry_after_s=RETRY_AFTER_S)

    fault_server.pause()
    panic, calm = _run_threads(breaker, panic_threads=2, calm_threads=2, calls=CALLS_PER_THREAD)
    fault_server.resume()

    assert {answer for answer, _ in panic} == {(0, "PANIC_FULL")}
    assert {answer for answer, _ in calm} == {(60, "NORMAL")}
    assert client.pipelines + client.deletes == 1, "one round trip in the back-off window, calm or panic"
    latencies = sorted(ms for _, ms in panic + calm)
    _assert_latencies(waiting=latencies[-1:], answered_at_once=latencies[:-1])
