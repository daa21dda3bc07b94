"""What the hot path skips, and that skipping it changes no answer: the benchmark's optimisations, pinned."""

import math

from breaker import AdaptivePanicQuota, MatchImportance, VIXCircuitBreaker, explain_importance


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


CONTEXTS = ({"league": "Ligue 2"}, {"league": "Serie A"}, {"league": "UEFA Champions League"})


def test_steady_answers_equal_the_policy_at_and_around_every_tier_boundary(real_redis, fake_clock):
    """Cached steady answers match the policy a hair before, at and after each boundary, also stepping back."""
    start = fake_clock() - 60.0
    real_redis.set("brain:panic_start_ts", repr(start), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=3600, server_time=False)
    quota = AdaptivePanicQuota()
    boundaries = sorted({s for table in quota.tables.values() for s in table.starts})
    for minutes in boundaries:
        at = start + minutes * 60.0
        times = [at - 1.0, math.nextafter(at, 0.0), at, math.nextafter(at, math.inf), at + 1.0, at - 1.0, at]
        for now in times:
            fake_clock.now = now
            measured = (now - start) / 60.0
            for context in CONTEXTS:
                expected = quota.calculate_ttl_strategy(60, measured, context, panic_active=True)[:2]
                assert breaker.get_ttl(60, "panic", context) == expected, (minutes, now - at, context)
                assert breaker.get_ttl(3, "panic", context)[0] == min(expected[0], 3)  # capped at base, per call


def test_a_thresholds_write_changes_the_next_steady_answer(real_redis, fake_clock):
    """Writing a stakes class's thresholds changes that breaker's very next answer, within one stretch."""
    real_redis.set("brain:panic_start_ts", repr(fake_clock() - 10 * 60), ex=900)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=3600, server_time=False)
    assert breaker.get_ttl(60, "panic", CONTEXTS[0]) == (0, "PANIC_FULL")  # low stakes, 10 min: tier 1
    breaker.quota.thresholds["low_stakes"]["tier1"] = 5
    assert breaker.get_ttl(60, "panic", CONTEXTS[0]) == (5, "PANIC_PARTIAL")
    breaker.quota = AdaptivePanicQuota({"low_stakes": [(0, 0), (1, 7), (2, 8), (3, 9)]})
    assert breaker.get_ttl(60, "panic", CONTEXTS[0]) == (9, "NEW_NORMAL")
