"""The zombie verdict, from readings of a real clock."""

import pytest

from breaker import PanicClock
from breaker.ops import zombie_verdict


def test_no_clock_is_not_a_zombie(real_redis, fake_clock):
    """Without a key there is nothing to be stuck."""
    verdict = zombie_verdict(PanicClock(real_redis).read(fake_clock()))
    assert verdict == (False, ())


def test_fed_clock_with_expiry_is_healthy(real_redis, fake_clock):
    """A clock a worker just observed, with its expiry, is not suspect."""
    clock = PanicClock(real_redis)
    clock.observe(fake_clock())
    assert not zombie_verdict(clock.read(fake_clock() + 60)).suspect


def test_key_without_expiry_is_a_zombie(real_redis, fake_clock):
    """A start set by hand without an expiry never ends by itself."""
    clock = PanicClock(real_redis)
    clock.observe(fake_clock())
    real_redis.persist(clock.start_key)
    verdict = zombie_verdict(clock.read(fake_clock()))
    assert verdict.suspect and any(r.startswith("no expiry") for r in verdict.reasons)


@pytest.mark.parametrize("raw", [b"garbage", b"nan", b"inf", b"-5"])
def test_unparsable_value_is_a_zombie(real_redis, fake_clock, raw):
    """A value that is not a timestamp is named in the reason."""
    clock = PanicClock(real_redis)
    clock.observe(fake_clock())
    real_redis.set(clock.start_key, raw, ex=900)
    verdict = zombie_verdict(clock.read(fake_clock()))
    assert verdict.suspect and any(r.startswith("does not parse") for r in verdict.reasons)


def test_wrong_type_is_a_zombie(real_redis, fake_clock):
    """A hash where the timestamp should be does not parse either."""
    clock = PanicClock(real_redis)
    real_redis.hset(clock.start_key, "a", "b")
    verdict = zombie_verdict(clock.read(fake_clock()))
    assert any("hash" in r for r in verdict.reasons)


def test_start_in_the_future_is_a_zombie(real_redis, fake_clock):
    """Clock skew: a start ahead of now is flagged with how far ahead."""
    clock = PanicClock(real_redis)
    clock.observe(fake_clock() + 3600)
    verdict = zombie_verdict(clock.read(fake_clock()))
    assert any(r.startswith("starts in the future: 3600 s") for r in verdict.reasons)


def test_not_refreshed_beyond_threshold_is_a_zombie(real_redis, fake_clock):
    """No observation for longer than the operator's threshold is suspect; within it is not."""
    clock = PanicClock(real_redis, panic_key_ttl_s=86400)
    clock.observe(fake_clock())
    assert not zombie_verdict(clock.read(fake_clock() + 599), stale_after_s=600).suspect
    verdict = zombie_verdict(clock.read(fake_clock() + 1200), stale_after_s=600)
    assert verdict.reasons == ("not refreshed for 20 min 00 s (threshold 10 min 00 s)",)


def test_never_observed_clock_is_a_zombie(real_redis, fake_clock):
    """A start written by hand has no worker observation: that is a reason of its own."""
    real_redis.set("brain:panic_start_ts", repr(fake_clock()), ex=900)
    verdict = zombie_verdict(PanicClock(real_redis).read(fake_clock()))
    assert verdict.reasons == ("not refreshed: no worker observation recorded",)


@pytest.mark.parametrize("bad", [0, -1, True, "600", float("nan")])
def test_bad_threshold_is_rejected(real_redis, fake_clock, bad):
    """The threshold must be a positive number of seconds."""
    with pytest.raises(ValueError, match="stale_after_s"):
        zombie_verdict(PanicClock(real_redis).read(fake_clock()), bad)
