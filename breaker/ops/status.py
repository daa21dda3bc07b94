"""What the clock means right now for each stakes class: the console's Live view, computed once."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import ClockReading
from ..importance import MatchImportance
from ..policy import AdaptivePanicQuota, PanicMode


@dataclass(frozen=True)
class ClassStatus:
    importance: MatchImportance
    tier: int
    mode: PanicMode
    ttl: int
    minutes_to_next_tier: float | None


def class_statuses(reading: ClockReading, base_ttl: int, quota: AdaptivePanicQuota) -> list[ClassStatus]:
    """Tier, mode, TTL and time to the next tier for every stakes class, as a worker would answer now.

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
