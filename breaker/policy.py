"""The tier policy: panic duration and stakes in, cache TTL out.

Pure on purpose: no clock, no I/O, no state beyond the tier table, so every
boundary can be tested exhaustively and the same function drives the workers,
the console's charts and the scenario replay.
"""

from __future__ import annotations

import enum
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

from .importance import MatchImportance, explain_importance


class PanicMode(enum.StrEnum):
    """What a TTL decision means; values equal names so they log and compare as text."""

    NORMAL = "NORMAL"
    PANIC_FULL = "PANIC_FULL"
    PANIC_PARTIAL = "PANIC_PARTIAL"
    DEGRADED = "DEGRADED"
    NEW_NORMAL = "NEW_NORMAL"


MODE_OF_TIER = (
    PanicMode.NORMAL,
    PanicMode.PANIC_FULL,
    PanicMode.PANIC_PARTIAL,
    PanicMode.DEGRADED,
    PanicMode.NEW_NORMAL,
)
ALERT_OF_TIER = {3: "REVIEW_MARKET_CONDITIONS", 4: "MARKET_REGIME_CHANGE_SUSPECTED"}

#: (tier start in minutes, TTL in seconds) for tiers 1..4 of each stakes class.
DEFAULT_TIERS: Mapping[MatchImportance, tuple[tuple[float, int], ...]] = {
    MatchImportance.HIGH_STAKES: ((0, 0), (60, 5), (180, 30), (360, 60)),
    MatchImportance.MEDIUM_STAKES: ((0, 0), (30, 5), (90, 30), (180, 60)),
    MatchImportance.LOW_STAKES: ((0, 0), (15, 5), (45, 20), (90, 45)),
}


class Decision(NamedTuple):
    ttl: int
    mode: PanicMode
    tier: int


class TierTable(NamedTuple):
    """One stakes class: where tiers 2..4 start (minutes) and the TTL of tiers 1..4."""

    starts: tuple[float, ...]
    ttls: tuple[int, ...]

    def tier_for(self, duration_min: float) -> int:
        """Tier 1..4 of a panic that has lasted ``duration_min``; lower bounds inclusive."""
        return 1 + bisect_right(self.starts, duration_min)

    def minutes_to_next_tier(self, duration_min: float) -> float | None:
        tier = self.tier_for(duration_min)
        if tier > len(self.starts):
            return None
        return self.starts[tier - 1] - max(duration_min, 0.0)


def _validated_table(importance: MatchImportance, rows: Any) -> TierTable:
    try:
        pairs = [(start, ttl) for start, ttl in rows]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tiers[{importance.value}] must be 4 (start_minutes, ttl_seconds) pairs") from exc
    if len(pairs) != 4:
        raise ValueError(f"tiers[{importance.value}] must have exactly 4 tiers, got {len(pairs)}")
    for start, ttl in pairs:
        for label, value in (("start", start), ("ttl", ttl)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TypeError(f"tiers[{importance.value}] {label} must be a finite number, got {value!r}")
        if ttl < 0:
            raise ValueError(f"tiers[{importance.value}] TTLs must be non-negative, got {ttl!r}")
    starts = [start for start, _ in pairs]
    if starts[0] != 0:
        raise ValueError(f"tiers[{importance.value}] tier 1 must start at 0 minutes, got {starts[0]!r}")
    if any(b <= a for a, b in pairwise(starts)):
        raise ValueError(f"tiers[{importance.value}] thresholds must increase, got {starts!r}")
    return TierTable(tuple(float(s) for s in starts[1:]), tuple(int(t) for _, t in pairs))


def check_base_ttl(base_ttl: Any) -> int:
    """Whole seconds of a valid base TTL, or an error naming ``base_ttl``."""
    if isinstance(base_ttl, bool) or not isinstance(base_ttl, (int, float)):
        raise TypeError(f"base_ttl must be a number of seconds, got {type(base_ttl).__name__} {base_ttl!r}")
    if not math.isfinite(base_ttl):
        raise ValueError(f"base_ttl must be finite, got {base_ttl!r}")
    if base_ttl < 0:
        raise ValueError(f"base_ttl must be >= 0, got {base_ttl!r}")
    return int(base_ttl)  # floor: never cache longer than asked


def check_duration(panic_duration_minutes: Any) -> float:
    value = panic_duration_minutes
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"panic_duration_minutes must be a number, got {type(value).__name__} {value!r}"
        )
    if math.isnan(value):
        raise ValueError("panic_duration_minutes must not be NaN")
    return float(value)


class AdaptivePanicQuota:
    """Re-enables caching in four tiers as a panic lasts, on per-stakes thresholds."""

    def __init__(
        self,
        tiers: Mapping[MatchImportance | str, Sequence[tuple[float, int]]] | None = None,
        default_importance: MatchImportance = MatchImportance.LOW_STAKES,
    ) -> None:
        if not isinstance(default_importance, MatchImportance):
            default_importance = MatchImportance(default_importance)
        self.default_importance = default_importance
        merged: dict[MatchImportance, Any] = dict(DEFAULT_TIERS)
        for key, rows in (tiers or {}).items():
            try:
                merged[MatchImportance(key)] = rows
            except ValueError as exc:
                raise ValueError(f"tiers: unknown stakes class {key!r}") from exc
        self.tables: dict[MatchImportance, TierTable] = {
            importance: _validated_table(importance, rows) for importance, rows in merged.items()
        }

    def classify(self, match_context: Any) -> MatchImportance:
        return explain_importance(match_context, self.default_importance).importance

    def decide(self, base_ttl: int, duration_min: float, importance: MatchImportance, panic_active: bool) -> Decision:
        """The hot path: inputs already validated, no metadata built."""
        if not panic_active:
            return Decision(base_ttl, PanicMode.NORMAL, 0)
        table = self.tables[importance]
        tier = table.tier_for(duration_min)
        ttl = table.ttls[tier - 1]
        return Decision(ttl if ttl < base_ttl else base_ttl, MODE_OF_TIER[tier], tier)

    def calculate_ttl_strategy(
        self,
        base_ttl: Any,
        panic_duration_minutes: Any,
        match_context: Any = None,
        *,
        panic_active: bool | None = None,
    ) -> tuple[int, PanicMode, dict[str, Any]]:
        """``(ttl, mode, metadata)`` for a panic that has lasted ``panic_duration_minutes``."""
        base = check_base_ttl(base_ttl)
        duration = check_duration(panic_duration_minutes)
        active = duration > 0 if panic_active is None else bool(panic_active)
        importance = self.classify(match_context)
        ttl, mode, tier = self.decide(base, duration, importance, active)
        table = self.tables[importance]
        metadata: dict[str, Any] = {
            "panic_active": active,
            "panic_duration_min": round(duration, 1),
            "match_importance": importance.value,
            "tier": tier,
            "mode": mode.value,
            "reason": self._reason(tier, duration, importance, ttl, capped=tier > 0 and table.ttls[tier - 1] > base),
            "thresholds": self.thresholds(importance),
        }
        if tier in ALERT_OF_TIER:
            metadata["alert"] = ALERT_OF_TIER[tier]
        if active:
            metadata["minutes_to_next_tier"] = table.minutes_to_next_tier(duration)
        return ttl, mode, metadata

    def thresholds(self, importance: MatchImportance) -> list[dict[str, Any]]:
        table = self.tables[importance]
        bounds = (0.0, *table.starts, None)
        return [
            {"tier": i + 1, "from_min": bounds[i], "until_min": bounds[i + 1], "ttl_s": table.ttls[i]}
            for i in range(len(table.ttls))
        ]

    @staticmethod
    def _reason(tier: int, duration: float, importance: MatchImportance, ttl: int, *, capped: bool) -> str:
        if tier == 0:
            return "no active panic: base TTL"
        note = " (capped at base TTL)" if capped else ""
        return f"{importance.value} panic for {duration:.1f} min: tier {tier}, TTL {ttl}s{note}"
