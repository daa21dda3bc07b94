"""The older per-process API: a rolling window of statuses and a hysteresis state machine.

Kept for callers of ``get_adaptive_ttl``. The window holds the last
``window_seconds`` samples (one per call) and keeps a running panic count, so a
call costs O(1) whatever the window size.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

VALID_STATUSES = ("normal", "warning", "panic")


class CircuitBreakerMode(enum.StrEnum):
    NORMAL = "normal"
    HIGH_VOLATILITY = "high_volatility"
    CIRCUIT_OPEN = "circuit_open"


# mode -> status -> (ttl, strategy); every TTL is capped at the caller's base.
_LOGIC_TABLE: dict[CircuitBreakerMode, dict[str, tuple[int | None, str]]] = {
    CircuitBreakerMode.NORMAL: {"panic": (0, "bypass"), "warning": (None, "normal"), "normal": (None, "normal")},
    CircuitBreakerMode.HIGH_VOLATILITY: {
        "panic": (5, "adaptive"),
        "warning": (10, "adaptive"),
        "normal": (None, "normal"),
    },
    CircuitBreakerMode.CIRCUIT_OPEN: {"panic": (10, "adaptive"), "warning": (30, "adaptive"), "normal": (60, "normal")},
}


def _ratio(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _iso_8601(ts: float | None) -> str | None:
    """A Unix time as the seed reported it (``datetime.isoformat()``, UTC); None when unknown or unusable."""
    if ts is None or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


class VolatilityWindow:
    """Rolling panic ratio plus hysteresis: enter/exit high volatility, open/close the circuit."""

    def __init__(
        self,
        window_seconds: int = 1800,
        panic_threshold_enter: float = 0.50,
        panic_threshold_exit: float = 0.30,
        circuit_open_threshold: float = 0.80,
        circuit_close_threshold: float = 0.60,
        *,
        clock: Any = None,
    ) -> None:
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, int) or window_seconds < 1:
            raise ValueError(f"window_seconds must be a whole number >= 1, got {window_seconds!r}")
        self.enter = _ratio("panic_threshold_enter", panic_threshold_enter)
        self.exit = _ratio("panic_threshold_exit", panic_threshold_exit)
        self.open = _ratio("circuit_open_threshold", circuit_open_threshold)
        self.close = _ratio("circuit_close_threshold", circuit_close_threshold)
        if not self.exit < self.enter:
            raise ValueError(f"panic_threshold_exit ({self.exit}) must be below panic_threshold_enter ({self.enter})")
        if not self.close < self.open:
            raise ValueError(
                f"circuit_close_threshold ({self.close}) must be below circuit_open_threshold ({self.open})"
            )
        self.window_seconds = window_seconds
        self._samples: deque[bool] = deque(maxlen=window_seconds)
        self._panics = 0
        self._clock = clock
        self._lock = threading.Lock()
        self.mode = CircuitBreakerMode.NORMAL
        self.mode_changes_count = 0
        self.last_mode_change: float | None = None

    @property
    def panic_ratio(self) -> float:
        return self._panics / len(self._samples) if self._samples else 0.0

    def record(self, status: str) -> tuple[CircuitBreakerMode, CircuitBreakerMode]:
        """Add one sample, run the state machine; returns (previous mode, mode)."""
        is_panic = status == "panic"
        with self._lock:
            if len(self._samples) == self._samples.maxlen and self._samples[0]:
                self._panics -= 1
            self._samples.append(is_panic)
            self._panics += is_panic
            previous = self.mode
            self.mode = self._next_mode(previous, self.panic_ratio)
            if self.mode is not previous:
                self.mode_changes_count += 1
                self.last_mode_change = self._clock() if self._clock else time.time()
            return previous, self.mode

    @property
    def samples(self) -> tuple[int, ...]:
        """The window's samples, oldest first: 1 for panic, 0 otherwise (the seed's ``panic_history``)."""
        with self._lock:
            return tuple(map(int, self._samples))

    def reset(self) -> None:
        """Back to an empty window in normal mode, with no mode change recorded."""
        with self._lock:
            self._samples.clear()
            self._panics = 0
            self.mode = CircuitBreakerMode.NORMAL
            self.mode_changes_count = 0
            self.last_mode_change = None

    def _next_mode(self, mode: CircuitBreakerMode, ratio: float) -> CircuitBreakerMode:
        """One step per sample, strict inequalities: exactly at a threshold the mode stays put."""
        if mode is CircuitBreakerMode.NORMAL:
            return CircuitBreakerMode.HIGH_VOLATILITY if ratio > self.enter else mode
        if mode is CircuitBreakerMode.HIGH_VOLATILITY:
            if ratio > self.open:
                return CircuitBreakerMode.CIRCUIT_OPEN
            return CircuitBreakerMode.NORMAL if ratio < self.exit else mode
        return CircuitBreakerMode.HIGH_VOLATILITY if ratio < self.close else mode

    def ttl_for(self, status: str, base_ttl: int) -> tuple[int, str]:
        ttl, strategy = _LOGIC_TABLE[self.mode][status]
        return (base_ttl if ttl is None else min(ttl, base_ttl)), strategy

    def metrics(self) -> dict[str, Any]:
        with self._lock:
            return {
                "mode": self.mode.value,
                "panic_ratio_pct": round(100.0 * self.panic_ratio, 2),
                "window_size": len(self._samples),
                "window_full": len(self._samples) == self.window_seconds,
                "window_seconds": self.window_seconds,
                "mode_changes_count": self.mode_changes_count,
                "last_mode_change": _iso_8601(self.last_mode_change),
                "thresholds": {  # the seed's four keys, then ours
                    "enter_high_vol_pct": 100.0 * self.enter,
                    "exit_high_vol_pct": 100.0 * self.exit,
                    "circuit_open_pct": 100.0 * self.open,
                    "hysteresis_pct": round(100.0 * (self.enter - self.exit), 10),
                    "panic_enter_pct": 100.0 * self.enter,
                    "panic_exit_pct": 100.0 * self.exit,
                    "circuit_close_pct": 100.0 * self.close,
                },
            }
