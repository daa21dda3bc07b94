"""What the hot path skips, and that skipping it changes no answer: the benchmark's optimisations, pinned."""

from breaker import MatchImportance, VIXCircuitBreaker, explain_importance


class UnhashableText(str):
    """A str whose hash fails: the classification cache must not turn it into an exception."""

    __hash__ = None

    def __eq__(self, other):
        return str.__eq__(self, other)


class BadHash:
    def __hash__(self):
        raise ValueError("no hash for you")


class SpyLogger:
    """Stands in for the bound logger: says whether DEBUG is on, records what is logged."""

    def __init__(self, debug_on):
        self.debug_on = debug_on
        self.level_checks = 0
        self.debug_lines = 0

    def is_enabled_for(self, level):
        self.level_checks += 1
        return self.debug_on

    def debug(self, event, **kw):
        self.debug_lines += 1

    def info(self, event, **kw):
        pass

    warning = error = info


def test_steady_decisions_at_info_never_build_a_debug_line(real_redis, fake_clock):
    """With DEBUG off, 1000 steady calls make no debug call and ask the level once per refresh."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=60, server_time=False)
    breaker._log = spy = SpyLogger(debug_on=False)
    for _ in range(1000):
        breaker.get_ttl(60, "panic", {"league": "Ligue 1"})
    assert spy.debug_lines == 0
    assert spy.level_checks == 1


def test_debug_lines_follow_a_reconfigured_level_at_the_next_refresh(real_redis, fake_clock):
    """Turning DEBUG on is seen after the next round trip; steady calls then log VIX_TTL_DECISION."""
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=1, server_time=False)
    breaker._log = spy = SpyLogger(debug_on=False)
    for _ in range(3):
        breaker.get_ttl(60, "panic")
    spy.debug_on = True
    fake_clock.advance(1.5)
    for _ in range(3):
        breaker.get_ttl(60, "panic")
    assert spy.debug_lines == 3


def test_cached_classification_equals_a_fresh_one():
    """A context classified twice (second time from the cache) gets the same class and rule."""
    context = {"league": "Premier League", "stage": "Final"}
    assert explain_importance(context) == explain_importance(dict(context))
    assert explain_importance(context).importance is MatchImportance.HIGH_STAKES


def test_values_that_cannot_be_cache_keys_still_classify():
    """Unhashable or hash-raising values are ignored like any non-string; strings still match."""
    assert MatchImportance.classify({"league": ["x"], "competition": "Serie A"}) is MatchImportance.MEDIUM_STAKES
    assert MatchImportance.classify({"league": BadHash(), "competition": "Derby"}) is MatchImportance.HIGH_STAKES
    assert MatchImportance.classify({"league": UnhashableText("UCL")}) is MatchImportance.HIGH_STAKES


def test_odd_context_values_never_reach_get_ttl_as_errors(real_redis, fake_clock):
    """A hash-raising value in the context does not turn a panic answer into an error."""
    real_redis.set("brain:panic_start_ts", repr(fake_clock() - 20 * 60), ex=900)  # low stakes: tier 2, not fail-safe
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic", {"league": BadHash()}) == (5, "PANIC_PARTIAL")
    assert breaker.get_ttl(60, "normal", {"league": BadHash()}) == (60, "NORMAL")
