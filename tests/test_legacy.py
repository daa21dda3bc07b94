"""The older get_adaptive_ttl API: rolling window, hysteresis, logic table, metrics."""

import pytest

from breaker import PANIC_START_TS_KEY, PANIC_TS_TTL_SECONDS, CircuitBreakerMode, VIXCircuitBreaker

N, HV, CO = CircuitBreakerMode.NORMAL, CircuitBreakerMode.HIGH_VOLATILITY, CircuitBreakerMode.CIRCUIT_OPEN


def breaker_with(window=10, **kwargs):
    return VIXCircuitBreaker(None, window_seconds=window, **kwargs)


def test_constants_kept():
    """The seed's module constants remain."""
    assert PANIC_START_TS_KEY == "brain:panic_start_ts" and PANIC_TS_TTL_SECONDS == 86400


def test_enter_high_volatility_strictly_above_half():
    """Exactly 50 % panic stays normal; above 50 % enters high volatility."""
    b2 = breaker_with()
    for s in ["normal"] * 5 + ["panic"] * 5:
        b2.record_panic_status(s)
    assert b2.get_metrics()["panic_ratio_pct"] == 50.0 and b2.mode is N
    b2.record_panic_status("panic")  # window slides: 6/10
    assert b2.mode is HV


def run(breaker, sequence):
    for status in sequence:
        breaker.record_panic_status(status)


def test_leave_high_volatility_strictly_below_exit():
    """At exactly 30 % the mode stays high volatility; below it returns to normal."""
    b = breaker_with()
    run(b, ["normal"] * 10 + ["panic"] * 6)  # window n n n n p p p p p p: 60 %
    assert b.mode is HV
    run(b, ["normal"] * 7)  # slides out four normals, then three panics: 30 %
    assert b.get_metrics()["panic_ratio_pct"] == 30.0 and b.mode is HV
    b.record_panic_status("normal")  # 20 %
    assert b.mode is N


def test_open_strictly_above_80_and_close_strictly_below_60():
    """Open above 80 %, stay open at exactly 60 %, close to high volatility below 60 %."""
    b = breaker_with()
    for _ in range(10):
        b.record_panic_status("panic")
    assert b.mode is CO  # normal -> high_volatility -> circuit_open, one step per sample
    for _ in range(4):
        b.record_panic_status("normal")  # 6/10
    assert b.mode is CO
    b.record_panic_status("normal")  # 5/10
    assert b.mode is HV


def test_exactly_80_does_not_open():
    """Exactly 80 % panic keeps high volatility."""
    b = breaker_with()
    for s in ["normal", "normal"] + ["panic"] * 8:
        b.record_panic_status(s)
    assert b.get_metrics()["panic_ratio_pct"] == 80.0 and b.mode is HV


@pytest.mark.parametrize(
    ("mode_panics", "status", "expected"),
    [
        (0, "panic", (0, "bypass")),
        (0, "warning", (60, "normal")),
        (0, "normal", (60, "normal")),
        (6, "panic", (5, "adaptive")),
        (6, "warning", (10, "adaptive")),
        (6, "normal", (60, "normal")),
    ],
)
def test_logic_table_normal_and_high_volatility(mode_panics, status, expected):
    """The documented TTL table for the normal and high-volatility modes."""
    b = breaker_with(window=1000)
    run(b, ["normal"] * (10 - mode_panics) + ["panic"] * mode_panics)
    assert b.get_adaptive_ttl(status) == expected


@pytest.mark.parametrize(("status", "expected"), [("panic", (10, "adaptive")), ("warning", (30, "adaptive")),
                                                  ("normal", (60, "normal"))])
def test_logic_table_circuit_open(status, expected):
    """The documented TTL table for the open circuit."""
    b = breaker_with(window=5)
    for _ in range(5):
        b.record_panic_status("panic")
    assert b.mode is CO
    b2 = breaker_with(window=100)
    for _ in range(100):
        b2.record_panic_status("panic")
    assert b2.get_adaptive_ttl(status) == expected


def test_values_capped_at_base():
    """Every legacy TTL is capped at the caller's base."""
    b = breaker_with(window=100)
    for _ in range(100):
        b.record_panic_status("panic")
    assert b.get_adaptive_ttl("normal", base_ttl=20) == (20, "normal")
    assert b.get_adaptive_ttl("warning", base_ttl=20) == (20, "adaptive")


def test_metrics_shape():
    """get_metrics reports mode, ratio, window and thresholds in percent."""
    b = breaker_with(window=4)
    for _ in range(6):
        b.record_panic_status("panic")
    m = b.get_metrics()
    assert m["mode"] == "circuit_open" and m["panic_ratio_pct"] == 100.0
    assert m["window_size"] == 4 and m["window_full"] and m["window_seconds"] == 4
    assert m["mode_changes_count"] == 2 and m["last_mode_change"] is not None
    assert m["thresholds"]["circuit_close_pct"] == 60.0


def test_metrics_keep_the_seeds_threshold_keys():
    """get_metrics()["thresholds"] has the seed's four keys, in percent."""
    t = breaker_with().get_metrics()["thresholds"]
    assert {k: t[k] for k in ("enter_high_vol_pct", "exit_high_vol_pct", "circuit_open_pct", "hysteresis_pct")} == {
        "enter_high_vol_pct": 50.0, "exit_high_vol_pct": 30.0, "circuit_open_pct": 80.0, "hysteresis_pct": 20.0}


def test_last_mode_change_is_an_iso_8601_string():
    """last_mode_change is None before any change, then the change's time as an ISO-8601 string (UTC)."""
    from datetime import datetime

    b = VIXCircuitBreaker(None, window_seconds=2, clock=lambda: 1_800_000_000.5)
    assert b.get_metrics()["last_mode_change"] is None
    run(b, ["panic"] * 2)
    stamp = b.get_metrics()["last_mode_change"]
    assert isinstance(stamp, str) and datetime.fromisoformat(stamp).timestamp() == 1_800_000_000.5
    assert stamp.endswith("+00:00")


def test_panic_history_is_a_read_only_view_of_the_window():
    """panic_history holds the window's samples (1 panic, 0 otherwise), oldest first, and cannot be written."""
    b = breaker_with(window=3)
    run(b, ["panic", "normal", "warning", "panic"])
    history = b.panic_history
    assert list(history) == [0, 0, 1] and sum(history) == 1 and len(history) == 3
    with pytest.raises((TypeError, AttributeError)):
        history.append(1)
    with pytest.raises(AttributeError):
        b.panic_history = []


def test_reset_empties_the_window_and_the_mode():
    """reset() empties the window, returns to normal and forgets the mode changes."""
    b = breaker_with(window=4)
    run(b, ["panic"] * 4)
    assert b.mode is CO
    b.reset()
    m = b.get_metrics()
    assert b.mode is N and len(b.panic_history) == 0
    assert (m["window_size"], m["panic_ratio_pct"], m["mode_changes_count"], m["last_mode_change"]) == (0, 0.0, 0, None)
    b.record_panic_status("panic")  # 1/1 panic: one step, to high volatility
    assert b.mode is HV and b.get_metrics()["mode_changes_count"] == 1


def test_window_ratio_is_exact_after_many_slides():
    """The O(1) running count stays equal to a recount after the window slides many times."""
    b = breaker_with(window=7)
    for i in range(1000):
        b.record_panic_status("panic" if i % 3 == 0 else "warning")
    expected = sum(1 for i in range(993, 1000) if i % 3 == 0) / 7
    assert b.get_metrics()["panic_ratio_pct"] == round(100 * expected, 2)


def test_unknown_status_counts_as_panic():
    """An unknown status in the legacy API is counted as panic (fail safe), not an exception."""
    b = breaker_with()
    run(b, ["normal"] * 10)
    assert b.get_adaptive_ttl("bogus") == (0, "bypass")
    assert b.get_metrics()["panic_ratio_pct"] == 10.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"panic_threshold_enter": 0.3, "panic_threshold_exit": 0.3}, "panic_threshold_exit"),
        ({"circuit_open_threshold": 0.5, "circuit_close_threshold": 0.6}, "circuit_close_threshold"),
        ({"panic_threshold_enter": 1.5}, "panic_threshold_enter"),
        ({"circuit_open_threshold": -0.1}, "circuit_open_threshold"),
        ({"window_seconds": 0}, "window_seconds"),
    ],
)
def test_constructor_validates_thresholds(kwargs, name):
    """Bad thresholds fail with ValueError naming the argument."""
    with pytest.raises(ValueError, match=name):
        VIXCircuitBreaker(None, **kwargs)
