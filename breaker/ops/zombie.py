"""The zombie verdict: is the panic clock stuck, and why. One function every page and tool calls."""

from __future__ import annotations

from typing import NamedTuple

from ..clock import ClockReading
from .timefmt import format_duration

DEFAULT_STALE_AFTER_S = 900.0


class ZombieVerdict(NamedTuple):
    """``suspect`` is True when any reason applies; ``reasons`` say why in operator words."""

    suspect: bool
    reasons: tuple[str, ...]


def zombie_verdict(reading: ClockReading, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> ZombieVerdict:
    """Judge a clock snapshot: a zombie keeps workers in panic although nobody feeds or ends it.

    Suspect when the key has no expiry (it will never end by itself), does not parse (workers
    answer tier 1 and replace it), starts in the future (clock skew), or has not been refreshed
    by a worker for longer than ``stale_after_s``.
    """
    if isinstance(stale_after_s, bool) or not isinstance(stale_after_s, (int, float)) or not stale_after_s > 0:
        raise ValueError(f"stale_after_s must be a positive number of seconds, got {stale_after_s!r}")
    if not reading.exists:
        return ZombieVerdict(False, ())
    reasons = []
    if not reading.has_expiry:
        reasons.append("no expiry: the key will never end by itself")
    if reading.wrong_type:
        reasons.append(f"does not parse: the key holds a {reading.raw}, not a timestamp")
    elif reading.implausible:
        reasons.append(f"implausible start: stored value {_show(reading.raw)} is older than the maximum panic "
                       "age (workers replace it)")
    elif not reading.parses:
        reasons.append(f"does not parse: stored value {_show(reading.raw)} is not a timestamp")
    if reading.starts_in_future:
        ahead = reading.start - reading.now  # type: ignore[operator]
        shown = f"{ahead:.0f} s" if ahead < 1e7 else f"{ahead / 31_557_600:.3g} years"
        reasons.append(f"starts in the future: {shown} ahead of this clock (clock skew?)")
    since = reading.since_last_observation_s
    if since is None:
        reasons.append("not refreshed: no worker observation recorded")
    elif since > stale_after_s:
        reasons.append(f"not refreshed for {format_duration(since)} (threshold {format_duration(stale_after_s)})")
    return ZombieVerdict(bool(reasons), tuple(reasons))


def _show(raw: object) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."
