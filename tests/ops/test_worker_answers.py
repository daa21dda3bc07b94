"""What the workers answer per stakes class (breaker.ops.status.worker_answers) and the one duration format."""

from __future__ import annotations

import pytest

from breaker.clock import ClockReading
from breaker.heartbeat import WorkerBeat
from breaker.ops.status import worker_answers
from breaker.ops.timefmt import format_duration
from breaker.override import Override, OverrideMode
from breaker.policy import PanicMode

NOW = 1_700_000_000.0


def reading(minutes_ago: float | None) -> ClockReading:
    start = None if minutes_ago is None else NOW - minutes_ago * 60
    return ClockReading(now=NOW, exists=start is not None, raw=None if start is None else str(start), start=start,
                        wrong_type=False, expiry_left_s=900.0 if start else None, has_expiry=start is not None,
                        last_observed_at=NOW if start else None)


def override(mode: OverrideMode) -> Override:
    return Override(mode, "alice", "drill", NOW - 60, NOW + 600)


def beat(stakes: str, tier: int, *, state: str = "panic") -> WorkerBeat:
    return WorkerBeat("w1", "host", 1, NOW - 600, NOW - 1, 1.0, {"PANIC_FULL": 3}, 0, {stakes: tier}, None, None,
                      "3", state)


def test_force_full_answers_ttl_0_panic_full_and_keeps_the_clock_tier():
    """A panic 100 min old under force_full: every class TTL 0 PANIC_FULL, the clock's tier kept beside it."""
    answers = worker_answers(reading(100), override(OverrideMode.FORCE_FULL), 60)
    assert [(a.ttl, a.mode, a.overridden_by) for a in answers] == [(0, PanicMode.PANIC_FULL,
                                                                     OverrideMode.FORCE_FULL)] * 3
    assert [a.clock.tier for a in answers] == [2, 3, 4]
    assert [a.clock.mode for a in answers] == [PanicMode.PANIC_PARTIAL, PanicMode.DEGRADED, PanicMode.NEW_NORMAL]


def test_force_calm_during_a_panic_answers_base_ttl_normal():
    answers = worker_answers(reading(20), override(OverrideMode.FORCE_CALM), 45)
    assert [(a.tier, a.ttl, a.mode) for a in answers] == [(0, 45, PanicMode.NORMAL)] * 3
    assert [a.clock.tier for a in answers] == [1, 1, 2]


def test_without_override_the_answer_is_the_clock():
    answers = worker_answers(reading(46), None, 60)
    assert [(a.mode, a.ttl, a.overridden_by) for a in answers] == [
        (PanicMode.PANIC_FULL, 0, None), (PanicMode.PANIC_PARTIAL, 5, None), (PanicMode.DEGRADED, 20, None)]


def test_heartbeats_reporting_neither_answer_are_named_per_class():
    """Low stakes tier 2 under force_full with the clock at tier 4 there: neither answer, named. High stakes
    tier 2 is its clock tier (a worker that has not picked the override up yet); a stale beat is not counted."""
    beats = [beat("low_stakes", 2), beat("high_stakes", 2), beat("medium_stakes", 2, state="stale")]
    answers = worker_answers(reading(100), override(OverrideMode.FORCE_FULL), 60, beats=beats)
    assert [a.reported_tiers for a in answers] == [{}, {}, {2: 1}]


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 min 00 s"), (42, "0 min 42 s"), (20 * 60 + 42, "20 min 42 s"), (3600 + 5 * 60 + 10, "1 h 05 min"),
    (None, "—"), (-5, "0 min 00 s"), (float("nan"), "—"),
])
def test_one_duration_format(seconds, text):
    assert format_duration(seconds) == text
