"""Process entry points for multi-process tests (importable by spawned children)."""

from __future__ import annotations


def panic_at_barrier(url: str, prefix: str, barrier, now: float, results) -> None:
    """One worker process: wait for the others, then observe a panic through the breaker."""
    from breaker import VIXCircuitBreaker, redis_client
    from breaker.clock import PanicClock

    client = redis_client(url, timeout_ms=2000)
    breaker = VIXCircuitBreaker(client, key_prefix=prefix, clock=lambda: now, refresh_interval_s=0, server_time=False)
    barrier.wait(timeout=30)
    answer = breaker.get_ttl(60, "panic")
    start = PanicClock(client, key_prefix=prefix).read(now).start
    results.put((now, tuple(answer), start))
    client.close()


def beat_until_killed(url: str, prefix: str, interval_s: float, ready) -> None:
    """One worker process that answers calm calls (and so beats) until it is killed."""
    import os
    import time

    from breaker import VIXCircuitBreaker, redis_client

    breaker = VIXCircuitBreaker(redis_client(url, timeout_ms=2000), key_prefix=prefix, refresh_interval_s=interval_s)
    breaker.get_ttl(60, "normal")
    ready.put((os.getpid(), breaker.worker_id))
    while True:
        breaker.get_ttl(60, "normal")
        time.sleep(interval_s / 2)
