"""VIXCalculator: z-scores of odds moves, the stdev floor, boundaries, too few samples."""

import pytest

from breaker import VIXCalculator


def calc(**kwargs):
    return VIXCalculator(clock=lambda: 1_000_000.0, **kwargs)


def test_spike_after_flat_odds_is_panic():
    """Perfectly flat history then a jump: the stdev floor makes it a move, not zero."""
    c = calc()
    for i in range(5):
        c.add_odds_snapshot("m", 2.10, timestamp=1_000_000.0 - 60 * i)
    vix = c.detect_panic_mode("m", 2.50)
    assert vix.volatility_status == "panic" and vix.bypass_cache and vix.send_alert and vix.recommended_ttl == 0


def test_flat_history_and_flat_odds_is_normal():
    """No move at all is normal."""
    c = calc()
    for _ in range(5):
        c.add_odds_snapshot("m", 2.10)
    assert c.detect_panic_mode("m", 2.10).volatility_status == "normal"


@pytest.mark.parametrize(("z", "status"), [(1.49, "normal"), (1.5, "warning"), (1.99, "warning"), (2.0, "panic")])
def test_sigma_boundaries(z, status):
    """Warning at >= 1.5 sigma, panic at >= 2.0 sigma."""
    c = calc()
    for odds in (1.0, 2.0, 3.0):  # mean 2, sample stdev 1
        c.add_odds_snapshot("m", odds)
    vix = c.detect_panic_mode("m", 2.0 + z)
    assert vix.volatility_status == status
    assert vix.z_score == pytest.approx(z)


def test_too_few_samples_is_normal_with_reason():
    """Fewer than 3 samples give no signal, and say so."""
    c = calc()
    c.add_odds_snapshot("m", 2.0)
    c.add_odds_snapshot("m", 2.0)
    vix = c.detect_panic_mode("m", 9.0)
    assert vix.volatility_status == "normal" and "need 3" in vix.reasoning


def test_old_samples_leave_the_window():
    """Snapshots older than 30 minutes do not count."""
    c = calc()
    for _ in range(3):
        c.add_odds_snapshot("m", 2.0, timestamp=1_000_000.0 - 31 * 60)
    assert "0 samples" in c.detect_panic_mode("m", 5.0).reasoning


def test_thresholds_configurable_and_validated():
    """Custom sigma thresholds apply; inconsistent ones are refused."""
    c = calc(panic_z=3.0, warning_z=2.5)
    for odds in (1.0, 2.0, 3.0):
        c.add_odds_snapshot("m", odds)
    assert c.detect_panic_mode("m", 4.6).volatility_status == "warning"
    with pytest.raises(ValueError, match="warning_z"):
        VIXCalculator(panic_z=1.0, warning_z=2.0)
    with pytest.raises(ValueError, match="odds"):
        c.add_odds_snapshot("m", float("nan"))


def test_non_finite_odds_are_refused_not_read_as_calm():
    """NaN current odds would compare false everywhere and read as calm: they are refused."""
    c = calc()
    for odds in (1.0, 2.0, 3.0):
        c.add_odds_snapshot("m", odds)
    with pytest.raises(ValueError, match="current_odds"):
        c.detect_panic_mode("m", float("nan"))
    with pytest.raises(ValueError, match="timestamp"):
        c.add_odds_snapshot("m", 2.0, timestamp=float("inf"))


def test_future_timestamp_is_refused_and_the_window_stays_intact():
    """A sample stamped far ahead (milliseconds by mistake) is refused: it would wipe or pin the window."""
    c = calc()
    for odds in (2.0, 2.0, 2.0, 2.0):
        c.add_odds_snapshot("m", odds)
    with pytest.raises(ValueError, match="ahead"):
        c.add_odds_snapshot("m", 2.0, timestamp=1e12)
    c.add_odds_snapshot("m", 2.0, timestamp=1_000_000.0 + 30)  # small skew is fine
    assert c.detect_panic_mode("m", 2.5).volatility_status == "panic"


def test_quiet_markets_are_forgotten():
    """A market whose samples all left the window is dropped from memory."""
    now = [1_000_000.0]
    c = VIXCalculator(clock=lambda: now[0])
    c.add_odds_snapshot("m", 2.0)
    now[0] += 3600
    c.detect_panic_mode("m", 2.0)
    assert "m" not in c._history
