"""Times and durations as operators read them, one way for the console and the CLI alike.

Every "ago", "left" and "since" an operator reads is measured at the server's time (the reader passes the
server's ``now``); these functions only write it down, so a page and a runbook paste say the same thing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


def format_duration(seconds: float | None) -> str:
    """``20 min 42 s``, ``1 h 05 min``; ``—`` when unknown (None, NaN, infinite); a negative duration (a clock
    read a moment late) is ``0 min 00 s``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def format_ts(ts: float | None, *, time_only: bool = False, missing: str = "—") -> str:
    """A Unix timestamp in UTC; a stored start no calendar has (1e308) is shown as the number it is."""
    if ts is None:
        return missing
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC" if time_only else "%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{ts:.6g} (out of range)"


LATENCY_DECIMALS = 1


def latency_ms(ms: float) -> float:
    """A round-trip time at the one precision every view uses (a tenth of a millisecond), for tables."""
    return round(ms, LATENCY_DECIMALS)


def format_latency_ms(ms: float) -> str:
    """A round-trip time as text, at the same precision: ``1.2 ms``."""
    return f"{latency_ms(ms):.{LATENCY_DECIMALS}f} ms"
