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
from itertools import accumulate, pairwise
from typing import Any, NamedTuple

from .importance import MatchImportance, importance_of


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


#: The seed's names for a stakes class's thresholds: where tiers 2, 3, 4 start, and their TTLs.
SEED_START_KEYS = ("tier1", "tier2", "tier3")
SEED_TTL_KEYS = ("ttl_partial", "ttl_degraded", "ttl_new_normal")


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


def _table_from_seed_dict(values: Mapping[str, float], tier1_ttl: int) -> TierTable:
    """The tier table a seed-style dict describes. The seed compared in order (``duration < tier1``, then
    ``< tier2``, ...); the running maximum of the starts gives the same tiers, also while a team rewrites
    them one key at a time and they do not increase yet."""
    starts = tuple(accumulate((float(values[k]) for k in SEED_START_KEYS), max))
    return TierTable(starts, (tier1_ttl, *(int(values[k]) for k in SEED_TTL_KEYS)))


def _restore(cls: type, items: dict[str, Any], attributes: dict[str, Any]) -> dict:
    """Rebuild a copied or unpickled thresholds dict without replaying its writes (its quota's tables
    are restored with the quota)."""
    restored = cls.__new__(cls)
    dict.update(restored, items)
    restored.__dict__.update(attributes)
    return restored


class StakesThresholds(dict):
    """One stakes class's thresholds in the seed's shape; a write re-derives its quota's tier table.

    The seed had no constructor argument for tiers: teams tuned them by writing into this dict, so a
    write must change this instance's answers (and only its). Each value is checked as it is written;
    the keys are fixed.
    """

    def __init__(self, quota: AdaptivePanicQuota, importance: MatchImportance, table: TierTable) -> None:
        starts = (int(start) if start.is_integer() else start for start in table.starts)  # 30, as the seed wrote
        super().__init__(zip(SEED_START_KEYS + SEED_TTL_KEYS, (*starts, *table.ttls[1:]), strict=True))
        self._quota = quota
        self._importance = importance

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in SEED_START_KEYS and key not in SEED_TTL_KEYS:
            raise KeyError(f"thresholds[{self._importance.value}]: unknown key {key!r}")
        label = f"thresholds[{self._importance.value}][{key!r}]"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{label} must be a finite number, got {value!r}")
        if value < 0:
            raise ValueError(f"{label} must be >= 0, got {value!r}")
        super().__setitem__(key, value)
        quota = self._quota
        quota.tables[self._importance] = _table_from_seed_dict(self, quota.tables[self._importance].ttls[0])

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> StakesThresholds:
        self.update(other)
        return self

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"thresholds[{self._importance.value}]: keys cannot be removed")

    __delitem__ = pop = popitem = clear = _refuse

    def __reduce__(self) -> Any:
        return _restore, (StakesThresholds, dict(self), {"_quota": self._quota, "_importance": self._importance})


class SeedThresholds(dict):
    """``AdaptivePanicQuota.thresholds``: stakes value -> :class:`StakesThresholds`. Assigning a whole
    class (``thresholds["low_stakes"] = {...}``) writes its keys into the live dict."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            raise KeyError(f"thresholds: unknown stakes class {key!r}")
        self[key].update(value)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("thresholds: stakes classes cannot be removed")

    __delitem__ = pop = popitem = clear = _refuse

    def __reduce__(self) -> Any:
        return _restore, (SeedThresholds, dict(self), {})


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
        #: The seed's view, one copy per instance: ``thresholds["medium_stakes"]["tier1"] == 30``.
        self.thresholds = SeedThresholds(
            (importance.value, StakesThresholds(self, importance, table)) for importance, table in self.tables.items()
        )

    def classify(self, match_context: Any) -> MatchImportance:
        return importance_of(match_context, self.default_importance)

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
        # The seed's rule: no panic only at exactly 0; a negative duration (clock skew) is a panic, tier 1.
        active = duration != 0 if panic_active is None else bool(panic_active)
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
            "thresholds": dict(self.thresholds[importance.value]),
        }
        if tier in ALERT_OF_TIER:
            metadata["alert"] = ALERT_OF_TIER[tier]
        if active:
            metadata["minutes_to_next_tier"] = table.minutes_to_next_tier(duration)
        return ttl, mode, metadata

    def tier_rows(self, importance: MatchImportance) -> list[dict[str, Any]]:
        """Tiers 1..4 of a stakes class as rows (start, end, TTL) for tables and charts."""
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
