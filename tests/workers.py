"""Process entry points for multi-process tests (importable by spawned children)."""

from __future__ import annotations


def panic_at_barrier(url: str, prefix: str, barrier, now: float, results) -> None:
    """One worker process: wait for the others, then observe a panic through the breaker."""
    from breaker import VIXCircuitBreaker, redis_client
    from breaker.clock import PanicClock

    client = redis_client(url, timeout_ms=2000)
    breaker = VIXCircuitBreaker(client, key_prefix=prefix, clock=lambda: now, refresh_interval_s=0)
    barrier.wait(timeout=30)
    answer = breaker.get_ttl(60, "panic")
    start = PanicClock(client, key_prefix=prefix).read(now).start
    results.put((now, tuple(answer), start))
    client.close()
