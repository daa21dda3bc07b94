"""Operator writes on the panic clock: each one checks the right to write, then leaves an audit entry."""

from __future__ import annotations

from dataclasses import dataclass

from .access import WriteAccess
from .audit import AuditTrail
from .clock import ClockReading, PanicClock
from .importance import MatchImportance
from .policy import AdaptivePanicQuota
from .zombie import DEFAULT_STALE_AFTER_S, ZombieVerdict, zombie_verdict

MIN_CLEAR_REASON_CHARS = 10


@dataclass(frozen=True)
class PanicStart:
    """``started`` is False when a running panic was left alone; ``running`` then shows it."""

    started: bool
    tier: int
    running: ClockReading | None = None


def fleet_tier(duration_min: float, quota: AdaptivePanicQuota | None = None) -> int:
    """The highest tier any stakes class is in after ``duration_min`` of panic."""
    quota = quota or AdaptivePanicQuota()
    return max(quota.decide(0, duration_min, importance, True).tier for importance in MatchImportance)


def start_panic(
    clock: PanicClock,
    trail: AuditTrail,
    access: WriteAccess,
    *,
    now: float,
    why: str,
    backdate_s: float = 0.0,
    hold_s: int | None = None,
    overwrite: bool = False,
) -> PanicStart:
    """Start a simulated panic ``backdate_s`` ago that lasts ``hold_s`` unless workers keep observing it.

    A running panic is not overwritten unless ``overwrite``; then nothing is written.
    """
    access.require("starting a panic")
    hold = clock.panic_key_ttl_s if hold_s is None else int(hold_s)
    if not clock.start_drill(now, backdate_s=backdate_s, hold_s=hold, overwrite=overwrite):
        return PanicStart(False, 0, clock.read(now))
    tier = fleet_tier(backdate_s / 60.0)
    trail.record(
        who=access.who, action="panic_start", why=why or "drill", tier=tier, at=now,
        panic_start=now - backdate_s, hold_until=now + hold, backdate_s=backdate_s, hold_s=hold, overwrite=overwrite,
        key=clock.start_key,
    )
    return PanicStart(True, tier)


def end_panic(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, now: float, why: str) -> bool:
    """Delete the clock; True when there was one. Workers still in panic start a new clock."""
    access.require("ending the panic")
    existed = clock.end()
    trail.record(who=access.who, action="panic_end", why=why or "operator ended the panic", at=now,
                 existed=existed, key=clock.start_key)
    return existed


@dataclass(frozen=True)
class ClockCleared:
    """What a force-clear did: whether there was a clock, and the zombie verdict it had when it was cleared
    (so the page can say "zombie" only when it was one)."""

    existed: bool
    verdict: ZombieVerdict


def force_clear(
    clock: PanicClock,
    trail: AuditTrail,
    access: WriteAccess,
    *,
    now: float,
    why: str,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> ClockCleared:
    """Clear a zombie clock; the reason (at least 10 characters) and the verdict go into the audit trail."""
    access.require("force-clearing the clock")
    reason = (why or "").strip()
    if len(reason) < MIN_CLEAR_REASON_CHARS:
        raise ValueError(f"reason must be at least {MIN_CLEAR_REASON_CHARS} characters, got {len(reason)}")
    verdict = zombie_verdict(clock.read(now), stale_after_s)
    existed = clock.end()
    trail.record(who=access.who, action="zombie_clear", why=reason, at=now, existed=existed,
                 zombie=verdict.suspect, reasons=list(verdict.reasons), key=clock.start_key)
    return ClockCleared(existed, verdict)
