"""The pure tier policy: boundaries, the base-TTL cap, metadata, validation, properties."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from breaker import AdaptivePanicQuota, MatchImportance, PanicMode

HIGH = {"stakes": "high"}
MEDIUM = {"stakes": "medium"}
LOW = {"stakes": "low"}

# (context, minutes, expected ttl, expected mode) on both sides of every boundary, base TTL 300.
BOUNDARIES = [
    (HIGH, 0.0, 0, PanicMode.PANIC_FULL),
    (HIGH, 59.99, 0, PanicMode.PANIC_FULL),
    (HIGH, 60.0, 5, PanicMode.PANIC_PARTIAL),
    (HIGH, 179.99, 5, PanicMode.PANIC_PARTIAL),
    (HIGH, 180.0, 30, PanicMode.DEGRADED),
    (HIGH, 359.99, 30, PanicMode.DEGRADED),
    (HIGH, 360.0, 60, PanicMode.NEW_NORMAL),
    (HIGH, 10_000.0, 60, PanicMode.NEW_NORMAL),
    (MEDIUM, 0.0, 0, PanicMode.PANIC_FULL),
    (MEDIUM, 29.99, 0, PanicMode.PANIC_FULL),
    (MEDIUM, 30.0, 5, PanicMode.PANIC_PARTIAL),
    (MEDIUM, 89.99, 5, PanicMode.PANIC_PARTIAL),
    (MEDIUM, 90.0, 30, PanicMode.DEGRADED),
    (MEDIUM, 179.99, 30, PanicMode.DEGRADED),
    (MEDIUM, 180.0, 60, PanicMode.NEW_NORMAL),
    (LOW, 0.0, 0, PanicMode.PANIC_FULL),
    (LOW, 14.99, 0, PanicMode.PANIC_FULL),
    (LOW, 15.0, 5, PanicMode.PANIC_PARTIAL),
    (LOW, 44.99, 5, PanicMode.PANIC_PARTIAL),
    (LOW, 45.0, 20, PanicMode.DEGRADED),
    (LOW, 89.99, 20, PanicMode.DEGRADED),
    (LOW, 90.0, 45, PanicMode.NEW_NORMAL),
]


@pytest.fixture
def quota():
    return AdaptivePanicQuota()


@pytest.mark.parametrize(("context", "minutes", "ttl", "mode"), BOUNDARIES)
def test_tier_boundaries(quota, context, minutes, ttl, mode):
    """Each tier's lower bound is inclusive, on both sides of every threshold."""
    got_ttl, got_mode, meta = quota.calculate_ttl_strategy(300, minutes, context, panic_active=True)
    assert (got_ttl, got_mode) == (ttl, mode)
    assert meta["mode"] == mode.value


def test_no_panic_answers_base_ttl(quota):
    """Duration 0 with panic_active unset means no panic: base TTL, NORMAL, tier 0."""
    ttl, mode, meta = quota.calculate_ttl_strategy(120, 0)
    assert (ttl, mode, meta["tier"], meta["panic_active"]) == (120, PanicMode.NORMAL, 0, False)


def test_panic_active_at_zero_is_tier_one(quota):
    """panic_active=True with duration 0 is tier 1, never NORMAL."""
    assert quota.calculate_ttl_strategy(120, 0, panic_active=True)[:2] == (0, PanicMode.PANIC_FULL)


def test_panic_inferred_from_positive_duration(quota):
    """panic_active=None follows the seed: a positive duration is a panic."""
    assert quota.calculate_ttl_strategy(120, 0.5)[1] is PanicMode.PANIC_FULL


def test_panic_active_false_overrides_duration(quota):
    """panic_active=False answers the base TTL whatever the duration."""
    assert quota.calculate_ttl_strategy(120, 500, panic_active=False)[:2] == (120, PanicMode.NORMAL)


def test_negative_duration_with_active_panic_is_tier_one(quota):
    """A negative duration (clock skew) never fails open."""
    ttl, mode, meta = quota.calculate_ttl_strategy(120, -5, panic_active=True)
    assert (ttl, mode, meta["tier"]) == (0, PanicMode.PANIC_FULL, 1)


@pytest.mark.parametrize(("base", "expected"), [(10, 10), (3, 3), (0, 0), (60, 60), (61, 60)])
def test_ttl_capped_at_base(quota, base, expected):
    """A panic never caches longer than calm weather does."""
    assert quota.calculate_ttl_strategy(base, 1000, HIGH, panic_active=True)[0] == expected


def test_float_base_ttl_is_floored(quota):
    """A fractional base TTL is floored: never cache longer than asked."""
    assert quota.calculate_ttl_strategy(2.5, 0)[0] == 2


def test_metadata_keys_and_alerts(quota):
    """Metadata carries the documented keys; tiers 3 and 4 add their alerts."""
    _, _, meta = quota.calculate_ttl_strategy(60, 46.04, {"league": "Ligue 1"}, panic_active=True)
    assert {"panic_active", "panic_duration_min", "match_importance", "tier", "mode", "reason", "thresholds"} <= set(
        meta
    )
    assert meta["panic_duration_min"] == 46.0
    assert meta["match_importance"] == "medium_stakes"
    assert meta["tier"] == 2 and "alert" not in meta
    assert meta["thresholds"]["tier1"] == 30
    assert quota.calculate_ttl_strategy(60, 100, MEDIUM)[2]["alert"] == "REVIEW_MARKET_CONDITIONS"
    assert quota.calculate_ttl_strategy(60, 200, MEDIUM)[2]["alert"] == "MARKET_REGIME_CHANGE_SUSPECTED"


@pytest.mark.parametrize(
    ("base_ttl", "error"),
    [(-1, ValueError), (math.nan, ValueError), (math.inf, ValueError), (True, TypeError), ("60", TypeError),
     (None, TypeError), ([60], TypeError)],
)
def test_invalid_base_ttl_names_the_argument(quota, base_ttl, error):
    """A bad base_ttl raises with a message naming base_ttl."""
    with pytest.raises(error, match="base_ttl"):
        quota.calculate_ttl_strategy(base_ttl, 10)


@pytest.mark.parametrize(("duration", "error"), [(math.nan, ValueError), ("10", TypeError), (None, TypeError)])
def test_invalid_duration_names_the_argument(quota, duration, error):
    """A bad duration raises with a message naming panic_duration_minutes."""
    with pytest.raises(error, match="panic_duration_minutes"):
        quota.calculate_ttl_strategy(60, duration)


def test_negative_duration_without_panic_flag_is_tier_one(quota):
    """With panic_active unset only a duration of exactly 0 is no panic: a negative one (clock skew) is tier 1."""
    ttl, mode, meta = quota.calculate_ttl_strategy(60, -10, {})
    assert (ttl, mode, meta["tier"], meta["panic_active"]) == (0, PanicMode.PANIC_FULL, 1, True)
    assert quota.calculate_ttl_strategy(60, -0.0)[1] is PanicMode.NORMAL


SEED_THRESHOLDS = {
    "high_stakes": {"tier1": 60, "tier2": 180, "tier3": 360, "ttl_partial": 5, "ttl_degraded": 30,
                    "ttl_new_normal": 60},
    "medium_stakes": {"tier1": 30, "tier2": 90, "tier3": 180, "ttl_partial": 5, "ttl_degraded": 30,
                      "ttl_new_normal": 60},
    "low_stakes": {"tier1": 15, "tier2": 45, "tier3": 90, "ttl_partial": 5, "ttl_degraded": 20,
                   "ttl_new_normal": 45},
}


def test_thresholds_is_the_seeds_dict(quota):
    """.thresholds is the seed's dict: stakes value -> tier1..tier3 minutes and the three TTLs."""
    assert isinstance(quota.thresholds, dict) and quota.thresholds == SEED_THRESHOLDS
    assert quota.thresholds[MatchImportance.MEDIUM_STAKES]["tier1"] == 30


def test_thresholds_are_one_copy_per_instance():
    """Writing into one instance's thresholds changes that instance's tiers, not another's."""
    changed, other = AdaptivePanicQuota(), AdaptivePanicQuota()
    changed.thresholds["medium_stakes"]["tier1"] = 999
    assert other.thresholds["medium_stakes"]["tier1"] == 30
    assert other.calculate_ttl_strategy(60, 35, MEDIUM)[1] is PanicMode.PANIC_PARTIAL
    assert changed.calculate_ttl_strategy(60, 35, MEDIUM)[1] is PanicMode.PANIC_FULL  # 35 < 999
    assert AdaptivePanicQuota().thresholds == SEED_THRESHOLDS


def test_thresholds_written_one_key_at_a_time_follow_the_seed():
    """Keys written one by one (the seed's only way to tune) drive tiers and TTLs as the seed's if/elif did."""
    quota = AdaptivePanicQuota()
    low = quota.thresholds["low_stakes"]
    low.update(tier1=100, ttl_partial=7)  # tier1 is now above tier2 and tier3 until those are written
    assert quota.calculate_ttl_strategy(60, 99, LOW)[:2] == (0, PanicMode.PANIC_FULL)
    assert quota.calculate_ttl_strategy(60, 100, LOW)[:2] == (45, PanicMode.NEW_NORMAL)
    low["tier2"], low["tier3"] = 200, 300
    assert quota.calculate_ttl_strategy(60, 150, LOW)[:2] == (7, PanicMode.PANIC_PARTIAL)
    assert quota.calculate_ttl_strategy(60, 250, LOW)[:2] == (20, PanicMode.DEGRADED)
    assert quota.tier_rows(MatchImportance.LOW_STAKES)[1]["from_min"] == 100
    quota.thresholds["low_stakes"] = {"tier1": 1, "tier2": 2, "tier3": 3}  # a whole class: its keys are written
    assert quota.calculate_ttl_strategy(60, 2.5, LOW)[0] == 20


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [("tier1", "30", TypeError), ("tier2", math.nan, TypeError), ("ttl_partial", -1, ValueError),
     ("ttl_full", 3, KeyError)],
)
def test_thresholds_writes_are_checked(quota, key, value, error):
    """A write that is not a finite number, a negative TTL or an unknown key is refused and changes nothing."""
    with pytest.raises(error):
        quota.thresholds["medium_stakes"][key] = value
    assert quota.thresholds == SEED_THRESHOLDS
    with pytest.raises(TypeError):
        del quota.thresholds["medium_stakes"]["tier1"]


def test_metadata_thresholds_is_the_class_dict(quota):
    """metadata["thresholds"] is that stakes class's seed-style dict; tier_rows keeps the per-tier rows."""
    meta = quota.calculate_ttl_strategy(60, 35.0, {"league": "Ligue 1"})[2]
    assert meta["thresholds"] == SEED_THRESHOLDS["medium_stakes"]
    assert quota.tier_rows(MatchImportance.MEDIUM_STAKES)[1] == {"tier": 2, "from_min": 30.0, "until_min": 90.0,
                                                                 "ttl_s": 5}


def test_infinite_duration_is_the_last_tier(quota):
    """An infinite duration is a number: the last tier."""
    assert quota.calculate_ttl_strategy(60, math.inf, LOW)[1] is PanicMode.NEW_NORMAL


def test_custom_tiers_are_per_instance():
    """Custom tiers apply to their own instance only and leave the defaults alone."""
    custom = AdaptivePanicQuota(tiers={"low_stakes": [(0, 0), (1, 2), (2, 3), (3, 4)]})
    assert custom.calculate_ttl_strategy(60, 2.5, LOW)[0] == 3
    assert AdaptivePanicQuota().calculate_ttl_strategy(60, 2.5, LOW)[0] == 0


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"low_stakes": [(0, 0), (10, 5), (10, 6), (20, 7)]}, "increase"),
        ({"low_stakes": [(0, 0), (10, -5), (15, 6), (20, 7)]}, "non-negative"),
        ({"low_stakes": [(0, 0), (10, 5)]}, "exactly 4"),
        ({"low_stakes": [(5, 0), (10, 5), (15, 6), (20, 7)]}, "start at 0"),
        ({"mega_stakes": [(0, 0), (10, 5), (15, 6), (20, 7)]}, "unknown stakes"),
        ({"low_stakes": [(0, 0), (10, 5), (15, math.nan), (20, 7)]}, "finite"),
    ],
)
def test_custom_tiers_validated_at_construction(tiers, message):
    """Bad custom tiers fail at construction with a message saying what is wrong."""
    with pytest.raises((ValueError, TypeError), match=message):
        AdaptivePanicQuota(tiers=tiers)


def test_default_importance_is_used_for_unmatched_context():
    """The quota passes its default_importance to classification."""
    quota = AdaptivePanicQuota(default_importance=MatchImportance.HIGH_STAKES)
    assert quota.calculate_ttl_strategy(60, 70, {"league": "Sunday league"})[2]["match_importance"] == "high_stakes"


durations = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
contexts = st.sampled_from([HIGH, MEDIUM, LOW, None, {"league": "Ligue 1"}, {"competition": "UCL final"}])
bases = st.integers(min_value=0, max_value=10**6)


@given(base=bases, a=durations, b=durations, context=contexts)
def test_ttl_never_decreases_as_duration_grows(base, a, b, context):
    """Within one stakes class, a longer panic never gets a shorter TTL."""
    quota = AdaptivePanicQuota()
    low, high = sorted((a, b))
    ttl_low = quota.calculate_ttl_strategy(base, low, context, panic_active=True)[0]
    ttl_high = quota.calculate_ttl_strategy(base, high, context, panic_active=True)[0]
    assert ttl_low <= ttl_high


@given(base=bases, duration=durations, context=contexts)
def test_ttl_never_above_base_and_never_normal_in_panic(base, duration, context):
    """TTL <= base always; an active panic is never NORMAL."""
    ttl, mode, meta = AdaptivePanicQuota().calculate_ttl_strategy(base, duration, context, panic_active=True)
    assert ttl <= base
    assert mode is not PanicMode.NORMAL and meta["tier"] >= 1
