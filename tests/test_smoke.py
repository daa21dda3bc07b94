"""The package imports and answers on a real server (a canary before the detailed suites)."""

from breaker import VIXCircuitBreaker


def test_panic_on_real_server_starts_at_tier_one(real_redis, fake_clock):
    """A first panic observation on the real server answers PANIC_FULL."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
