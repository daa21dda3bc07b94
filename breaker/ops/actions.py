"""Operator actions: each one checks the right to write, does the work, and leaves an audit entry.

The panic-clock writes (start, end, force-clear) commit with their audit entry in one MULTI/EXEC
(``audited_write``): when the entry cannot be written, they raise and nothing is written. The drills
and the replay return their result together with any audit error instead: a drill that ran is worth showing
even when Redis refused its audit entry (the fail-safe drill is most useful exactly when Redis is sick).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..clock import ClockReading, PanicClock, format_ts
from ..importance import MatchImportance
from ..policy import AdaptivePanicQuota
from .audit import AuditTrail
from .audited_write import Planned, audited_write
from .drills import FailSafeDrill, MultiWorkerDrill, Replay, fail_safe_drill, multi_worker_drill, replay_scenario
from .roles import WriteAccess
from .zombie import DEFAULT_STALE_AFTER_S, ZombieVerdict, zombie_verdict

MIN_CLEAR_REASON_CHARS = 10
T = TypeVar("T")


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

    A running panic is not overwritten unless ``overwrite``; then nothing is written. The clock and its
    audit entry are written together or not at all.
    """
    access.require("starting a panic", "panic_start")
    if not math.isfinite(backdate_s) or backdate_s < 0:
        raise ValueError(f"backdate_s must be a finite number >= 0, got {backdate_s!r}")
    hold = clock.panic_key_ttl_s if hold_s is None else int(hold_s)
    if hold < 1:
        raise ValueError(f"hold_s must be >= 1 second, got {hold_s!r}")
    tier = fleet_tier(backdate_s / 60.0)

    def plan(pipe: Any) -> Planned[PanicStart] | PanicStart:
        if not overwrite and pipe.exists(clock.start_key):
            return PanicStart(False, 0, clock.read(now))

        def queue(tx: Any) -> None:
            tx.set(clock.start_key, format_ts(now - backdate_s), ex=hold)  # plain SET: replaces any type
            tx.set(clock.last_seen_key, format_ts(now), ex=hold)

        return Planned(dict(
            **access.audit(), who=access.who, action="panic_start", why=why or "drill", tier=tier, at=now,
            panic_start=now - backdate_s, hold_until=now + hold, backdate_s=backdate_s, hold_s=hold,
            overwrite=overwrite, key=clock.start_key,
        ), queue, PanicStart(True, tier))

    return audited_write(clock.client, trail, watch=(clock.start_key,), plan=plan)


def end_panic(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, now: float, why: str) -> bool:
    """Delete the clock; True when there was one. Workers still in panic start a new clock."""
    access.require("ending the panic", "panic_end")

    def plan(pipe: Any) -> Planned[bool]:
        existed = bool(pipe.exists(clock.start_key, clock.last_seen_key))
        return Planned(dict(who=access.who, **access.audit(),
                            action="panic_end", why=why or "operator ended the panic", at=now,
                            existed=existed, key=clock.start_key),
                       lambda tx: tx.delete(clock.start_key, clock.last_seen_key), existed)

    return audited_write(clock.client, trail, watch=(clock.start_key, clock.last_seen_key), plan=plan)


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
    """Clear a zombie clock; the reason (at least 10 characters) and the verdict go into the audit trail,
    in the same transaction as the deletion."""
    access.require("force-clearing the clock", "zombie_clear")
    reason = (why or "").strip()
    if len(reason) < MIN_CLEAR_REASON_CHARS:
        raise ValueError(f"reason must be at least {MIN_CLEAR_REASON_CHARS} characters, got {len(reason)}")

    def plan(pipe: Any) -> Planned[ClockCleared]:
        reading = clock.read(now)  # another connection; the WATCH above still catches a change after it
        verdict = zombie_verdict(reading, stale_after_s)
        existed = bool(reading.exists or reading.last_observed_at is not None)
        return Planned(dict(who=access.who, **access.audit(),
                            action="zombie_clear", why=reason, at=now, existed=existed,
                            zombie=verdict.suspect, reasons=list(verdict.reasons), key=clock.start_key),
                       lambda tx: tx.delete(clock.start_key, clock.last_seen_key), ClockCleared(existed, verdict))

    return audited_write(clock.client, trail, watch=(clock.start_key, clock.last_seen_key), plan=plan)


@dataclass(frozen=True)
class AuditedRun(Generic[T]):
    """A drill's result, and why its audit entry could not be written (None when it was, or none was due)."""

    result: T
    audit_error: str | None = None


def run_failsafe_drill(trail: AuditTrail, access: WriteAccess, *, calls: int = 5) -> AuditedRun[FailSafeDrill]:
    """Anyone may run the fail-safe drill (it touches no key); only someone with the right to write gets it
    audited, so a read-only visitor cannot fill the audit stream with it."""
    drill = fail_safe_drill(calls)
    if not access.may("drill"):
        return AuditedRun(drill)
    return AuditedRun(drill, _record(
        trail, who=access.who, **access.audit(),
        action="failsafe_drill", why="fail-safe drill", target=drill.target,
        all_fail_safe=drill.all_fail_safe, worst_latency_ms=round(drill.worst_latency_ms, 2),
    ))


def run_multi_worker_drill(
    trail: AuditTrail,
    access: WriteAccess,
    *,
    url: str,
    client: Any,
    key_prefix: str,
    threads: int,
    processes: int,
) -> AuditedRun[MultiWorkerDrill]:
    """The multi-worker drill writes (to a scratch namespace), so it needs the right to write."""
    access.require("the multi-worker drill", "drill")
    result = multi_worker_drill(url, client, key_prefix=key_prefix, threads=threads, processes=processes)
    return AuditedRun(result, _record(
        trail, who=access.who, **access.audit(),
        action="multi_worker_drill", why=f"{threads} threads + {processes} processes",
        namespace=result.namespace, agreed=result.agreed, distinct_starts=len(result.distinct_starts),
    ))


def run_replay(
    trail: AuditTrail,
    access: WriteAccess,
    *,
    client: Any,
    scenario: str,
    key_prefix: str,
    base_ttl: int,
    stakes: str,
    minutes: int,
) -> AuditedRun[list[Replay]]:
    """Replay ``scenario`` in default mode and in seed mode (``end_on_normal``); it writes scratch keys, so it
    needs the right to write."""
    access.require("the scenario replay", "drill")
    replays = [
        replay_scenario(client, scenario, key_prefix=key_prefix, end_on_normal=seed, base_ttl=base_ttl,
                        match_context={"stakes": stakes}, minutes=minutes)
        for seed in (False, True)
    ]
    return AuditedRun(replays, _record(
        trail, who=access.who, **access.audit(),
        action="scenario_replay", why=f"{scenario}, {stakes}, {minutes} min",
    ))


def _record(trail: AuditTrail, **entry: Any) -> str | None:
    try:
        trail.record(**entry)
    except Exception as exc:  # redis errors, OSError: the caller shows it beside the result
        return f"{type(exc).__name__}: {exc}"
    return None
