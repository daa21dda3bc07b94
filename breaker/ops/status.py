"""What the workers answer right now for each stakes class: Live and the CLI's ``status``, computed once.

A worker's answer is the override's when one is in force (``force_full``: TTL 0, PANIC_FULL; ``force_calm``:
the base TTL, NORMAL), otherwise the clock's. Both are kept, so a view can show the answer first and the
clock-implied tier beside it ("without the override"), and heartbeats that report a tier matching neither
are named per class.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..clock import ClockReading
from ..heartbeat import WorkerBeat
from ..importance import MatchImportance
from ..override import Override, OverrideMode
from ..policy import AdaptivePanicQuota, PanicMode

#: The tier an override's answer stands for: force_full is the fail-safe tier 1, force_calm is calm (0).
OVERRIDE_TIER = {OverrideMode.FORCE_FULL: 1, OverrideMode.FORCE_CALM: 0}
LIVE_STATES = ("panic", "calm", "fail_safe")


@dataclass(frozen=True)
class ClassStatus:
    """What the clock alone implies for one stakes class."""

    importance: MatchImportance
    tier: int
    mode: PanicMode
    ttl: int
    minutes_to_next_tier: float | None


@dataclass(frozen=True)
class ClassAnswer:
    """What workers answer for one stakes class: ``tier``/``mode``/``ttl`` are the answer (the override's when
    ``overridden_by`` is set), ``clock`` what the clock implies without the override, and ``reported_tiers``
    the tiers live heartbeats report for this class that match neither (with how many workers report each)."""

    importance: MatchImportance
    tier: int
    mode: PanicMode
    ttl: int
    overridden_by: OverrideMode | None
    clock: ClassStatus
    reported_tiers: dict[int, int]

    @property
    def minutes_to_next_tier(self) -> float | None:
        return self.clock.minutes_to_next_tier


def class_statuses(reading: ClockReading, base_ttl: int, quota: AdaptivePanicQuota) -> list[ClassStatus]:
    """Tier, mode, TTL and time to the next tier for every stakes class, as the clock alone implies now.

    A clock that exists but cannot be read answers tier 1, as the workers do.
    """
    active = reading.exists
    duration_min = (reading.duration_s or 0.0) / 60.0
    statuses = []
    for importance in MatchImportance:
        ttl, mode, tier = quota.decide(base_ttl, duration_min, importance, active)
        table = quota.tables[importance]
        statuses.append(
            ClassStatus(importance, tier, mode, ttl, table.minutes_to_next_tier(duration_min) if active else None)
        )
    return statuses


def worker_answers(reading: ClockReading, override: Override | None, base_ttl: int,
                   quota: AdaptivePanicQuota | None = None, beats: Iterable[WorkerBeat] = (),
                   off_tiers: dict[str, dict[int, int]] | None = None) -> list[ClassAnswer]:
    """Per stakes class, what a worker answers at ``reading.now``: the override's answer when ``override`` is in
    force, else the clock's; and which tiers the live ``beats`` report that are neither (a worker that has not
    picked the override up yet, another prefix, a stale build). Pure: the caller reads clock, override and
    heartbeats (one round trip, ``read_fleet``). ``off_tiers`` instead of ``beats``: the workers per stakes class
    and tier that the aggregates found answering a tier the clock did not imply (``FleetSummary.off_tiers``)."""
    quota = quota or AdaptivePanicQuota()
    live = [beat for beat in beats if beat.state in LIVE_STATES]
    answers = []
    for status in class_statuses(reading, base_ttl, quota):
        forced = override.mode if override is not None else None
        if forced is OverrideMode.FORCE_FULL:
            tier, mode, ttl = OVERRIDE_TIER[forced], PanicMode.PANIC_FULL, 0
        elif forced is OverrideMode.FORCE_CALM:
            tier, mode, ttl = OVERRIDE_TIER[forced], PanicMode.NORMAL, base_ttl
        else:
            tier, mode, ttl = status.tier, status.mode, status.ttl
        reported: dict[int, int] = {}
        if off_tiers is not None:
            reported = {t: n for t, n in off_tiers.get(status.importance.value, {}).items()
                        if t not in (tier, status.tier)}
        for beat in live:
            told = beat.tiers.get(status.importance.value)
            if told is None or told in (tier, status.tier) or _clock_tier_near(beat, status.importance, reading,
                                                                               quota, told):
                continue
            reported[told] = reported.get(told, 0) + 1
        answers.append(ClassAnswer(status.importance, tier, mode, ttl, forced, status, dict(sorted(reported.items()))))
    return answers


def _clock_tier_near(beat: WorkerBeat, importance: MatchImportance, reading: ClockReading,
                     quota: AdaptivePanicQuota, told: int) -> bool:
    """The clock implied ``told`` when the worker beat (give or take one of its intervals): not a disagreement."""
    if reading.start is None:
        return False
    slack = max(beat.interval_s, 1.0)
    return any(quota.decide(0, max(0.0, beat.seen + shift - reading.start) / 60.0, importance, True)[2] == told
               for shift in (-slack, 0.0, slack))
