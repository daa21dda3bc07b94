"""A worker process with mixed traffic for the failover tests (importable by spawned children)."""

from __future__ import annotations

import time
import traceback


def mixed_traffic(url: str, name: str, ready, stop, results) -> None:
    """Answer calm, warning and medium-stakes panic calls as a backend would until ``stop`` is set.

    Each panic answer is recorded with its wall time; ``ready`` hears the worker once it is running and
    again at its first tier-2 answer after a fail-safe one (it recovered). Then the worker makes one more
    observation and reports the start its own client sees. Anything raised by get_ttl is recorded.
    """
    from breaker import VIXCircuitBreaker, redis_client

    client = redis_client(url)  # a worker's defaults: 50 ms timeouts, no retries
    breaker = VIXCircuitBreaker(client)  # refresh 1 s, retry after 1 s: the defaults a fleet runs with
    answers: list[tuple[float, int, str]] = []
    raised: list[str] = []
    statuses = ("panic", "normal", "panic", "warning")
    breaker.get_ttl(60, "panic", {"stakes": "medium"})
    ready.put(name)
    i, failed_safe, recovered = 0, False, False
    while not stop.is_set():
        status = statuses[i % len(statuses)]
        i += 1
        try:
            ttl, mode = breaker.get_ttl(60, status, {"stakes": "medium"})
        except Exception:
            raised.append(traceback.format_exc())
            continue
        if status == "panic":
            answers.append((time.time(), ttl, str(mode)))
            failed_safe = failed_safe or ttl == 0
            if failed_safe and ttl > 0 and not recovered:
                recovered = True
                ready.put(name)
        time.sleep(0.004)
    try:
        start = breaker.panic_clock.observe(time.time()).start
    except Exception as exc:
        start = repr(exc)
    results.put({"name": name, "answers": answers, "raised": raised, "start": start})
    client.close()


def panic_at_barrier(url: str, barrier, now: float, results) -> None:
    """One worker process: wait for the others, then observe a panic at ``now`` (its own injected clock, so
    the stored start names the writer) and report its answer and the start stored in the {brain} slot."""
    from breaker import PanicClock, VIXCircuitBreaker, redis_client

    client = redis_client(url, timeout_ms=2000)
    breaker = VIXCircuitBreaker(client, clock=lambda: now, refresh_interval_s=0, server_time=False)
    client.cluster.ping()  # the slot map is fetched before the race
    barrier.wait(timeout=30)
    answer = breaker.get_ttl(60, "panic")
    start = PanicClock(client, key_prefix=breaker.key_prefix).read(now).start
    results.put((now, tuple(answer), start))
    client.close()
