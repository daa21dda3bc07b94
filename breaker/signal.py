"""The volatility signal: how far the current odds sit from their recent history."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_FUTURE_SKEW_S = 60.0


def _check_odds(name: str, odds: object) -> None:
    """Odds must be finite numbers: a NaN would make every comparison false and read as calm."""
    if isinstance(odds, bool) or not isinstance(odds, (int, float)) or not math.isfinite(odds):
        raise ValueError(f"{name} must be a finite number, got {odds!r}")


@dataclass(frozen=True)
class MarketVIX:
    z_score: float
    volatility_status: str  # normal | warning | panic
    recommended_ttl: int
    send_alert: bool
    bypass_cache: bool
    reasoning: str


class VIXCalculator:
    """Z-score of the current odds against a market's odds over the last ``window_s`` seconds."""

    def __init__(
        self,
        *,
        window_s: float = 1800.0,
        min_samples: int = 3,
        panic_z: float = 2.0,
        warning_z: float = 1.5,
        min_stdev: float = 0.01,
        base_ttl: int = 60,
        warning_ttl: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < warning_z <= panic_z:
            raise ValueError(f"need 0 < warning_z <= panic_z, got warning_z={warning_z!r}, panic_z={panic_z!r}")
        if not min_stdev > 0:
            raise ValueError(f"min_stdev must be > 0, got {min_stdev!r}")
        if min_samples < 2:
            raise ValueError(f"min_samples must be >= 2, got {min_samples!r}")
        self.window_s = window_s
        self.min_samples = min_samples
        self.panic_z = panic_z
        self.warning_z = warning_z
        self.min_stdev = min_stdev
        self.base_ttl = base_ttl
        self.warning_ttl = warning_ttl
        self.clock = clock
        self._history: dict[str, deque[tuple[float, float]]] = defaultdict(deque)
        self._lock = threading.Lock()

    def add_odds_snapshot(self, market_key: str, odds: float, timestamp: float | None = None) -> None:
        _check_odds("odds", odds)
        now = self.clock()
        ts = now if timestamp is None else timestamp
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
        if ts > now + MAX_FUTURE_SKEW_S:  # e.g. milliseconds: it would never age out and block pruning
            raise ValueError(
                f"timestamp {timestamp!r} is more than {MAX_FUTURE_SKEW_S:g} s ahead of this clock ({now!r})"
            )
        with self._lock:
            history = self._history[market_key]
            history.append((ts, float(odds)))
            # Prune on this process's clock, not the sample's: one skewed timestamp must not wipe the window.
            self._prune(history, now)

    def _prune(self, history: deque[tuple[float, float]], now: float) -> None:
        while history and history[0][0] < now - self.window_s:
            history.popleft()

    def detect_panic_mode(self, market_key: str, current_odds: float) -> MarketVIX:
        _check_odds("current_odds", current_odds)
        with self._lock:
            history = self._history.get(market_key, deque())
            self._prune(history, self.clock())
            odds = [value for _, value in history]
            if not history:
                self._history.pop(market_key, None)  # markets that went quiet do not stay in memory
        if len(odds) < self.min_samples:
            return MarketVIX(0.0, "normal", self.base_ttl, False, False,
                             f"{len(odds)} samples in the window, need {self.min_samples}: no signal yet")
        mean = statistics.fmean(odds)
        stdev = statistics.stdev(odds)
        spread = max(stdev, self.min_stdev)  # flat history: a jump is still a move
        z = abs(current_odds - mean) / spread
        if z >= self.panic_z:
            status, ttl, alert = "panic", 0, True
        elif z >= self.warning_z:
            status, ttl, alert = "warning", self.warning_ttl, False
        else:
            status, ttl, alert = "normal", self.base_ttl, False
        reasoning = (
            f"odds {current_odds:g} vs mean {mean:.4g} over {len(odds)} samples, "
            f"stdev {stdev:.4g} (floor {self.min_stdev:g}): z={z:.2f} -> {status}"
        )
        return MarketVIX(round(z, 4), status, ttl, alert, status == "panic", reasoning)
