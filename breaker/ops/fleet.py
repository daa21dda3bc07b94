"""The fleet as the workers' heartbeats describe it, read with the clock and the override in one round trip.

Each worker writes one field of ``{prefix}workers`` per interval (``breaker.heartbeat``). A reader sees who
reports, what they answered, which ones fail safe or fell silent, and which ones answer a tier the clock
does not imply (a worker on another prefix, a stale build). Beats of gone workers are deleted by the reader
when the server cannot expire hash fields itself (Redis before 7.4).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ..clock import ClockReading, PanicClock, server_time
from ..heartbeat import STATES, WORKERS_KEY_NAME, InvalidBeat, WorkerBeat, parse_beat
from ..importance import MatchImportance
from ..keyspace import queue_time
from ..override import OverrideMode
from ..policy import AdaptivePanicQuota
from .overrides import OverrideReading, is_wrong_type, override_key, override_reading


@dataclass(frozen=True)
class FleetView:
    """The fleet at server time ``now``."""

    now: float
    reading: ClockReading
    override: OverrideReading
    workers: list[WorkerBeat]
    counts: dict[str, int]
    tiers: dict[str, dict[int, int]]
    answers_per_s: float
    disagreeing: list[WorkerBeat]
    invalid: dict[str, str] = field(default_factory=dict)  # field -> why it is not a readable beat


def workers_key(clock: PanicClock) -> str:
    return f"{clock.key_prefix}{WORKERS_KEY_NAME}"


def expected_tier(beat: WorkerBeat, stakes: str, reading: ClockReading, override: OverrideReading,
                  quota: AdaptivePanicQuota) -> int | None:
    """The tier the clock (and override) implied when the worker last beat; None when it cannot be judged."""
    if override.override is not None:
        return 1 if override.override.mode is OverrideMode.FORCE_FULL else None
    if reading.start is None:
        return None
    try:
        importance = MatchImportance(stakes)
    except ValueError:
        return None
    duration_min = max(0.0, beat.seen - reading.start) / 60.0
    return quota.decide(0, duration_min, importance, True).tier


def _disagrees(beat: WorkerBeat, reading: ClockReading, override: OverrideReading,
               quota: AdaptivePanicQuota) -> bool:
    if beat.state != "panic":
        return False
    for stakes, tier in beat.tiers.items():
        expected = expected_tier(beat, stakes, reading, override, quota)
        if expected is None:
            if reading.start is None and override.override is None and tier > 1:
                return True  # no clock at all, yet a tier only a running clock gives
            continue
        if tier != expected and tier not in _tiers_nearby(beat, stakes, reading, quota):
            return True
    return False


def _tiers_nearby(beat: WorkerBeat, stakes: str, reading: ClockReading, quota: AdaptivePanicQuota) -> set[int]:
    """The tiers the clock implies within one interval of the beat: at a tier change the worker may still
    answer the previous tier (or already the next one). Only those are excused: a worker answering any other
    tier still disagrees while the clock crosses a boundary (excusing every tier there made the count drop
    to 0 at each boundary, and a persistent disagreement's alert start over)."""
    if reading.start is None:
        return set()
    importance = MatchImportance(stakes)
    slack = max(beat.interval_s, 1.0)
    return {
        quota.decide(0, max(0.0, beat.seen + shift - reading.start) / 60.0, importance, True).tier
        for shift in (-slack, 0.0, slack)
    }


def read_fleet(clock: PanicClock, *, interval_s: float = 1.0, prune: bool = True) -> FleetView:
    """Workers, clock and override in ONE round trip (a MULTI). ``interval_s`` is assumed for beats that do
    not say theirs. Gone workers' fields are then deleted (``prune``) when there are any."""
    pipe = clock.client.pipeline(transaction=True)
    queue_time(pipe, clock.start_key)
    pipe.hgetall(workers_key(clock))
    clock.queue_read(pipe)
    pipe.get(override_key(clock))
    replies = pipe.execute(raise_on_error=False)
    invalid: dict[str, str] = {}
    beats = replies[1]
    if is_wrong_type(beats):  # not the workers' hash: flag it, still show the clock and the override
        invalid[workers_key(clock)] = "the key holds another type than a hash: no heartbeat can be read"
        beats = {}
    for reply in (replies[0], beats):
        if isinstance(reply, Exception):
            raise reply
    now = server_time(replies[0])
    reading = clock.reading(replies[2:6], now)
    override = override_reading(replies[6], now)  # a key of another type is flagged there, like garbage
    quota = AdaptivePanicQuota()
    workers: list[WorkerBeat] = []
    for name, raw in (beats or {}).items():
        try:
            workers.append(parse_beat(name, raw, now))
        except InvalidBeat as exc:
            invalid[name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)] = str(exc)
    workers.sort(key=lambda beat: beat.worker_id)
    gone = [beat.worker_id for beat in workers if beat.state == "gone"]
    if prune and gone:
        with contextlib.suppress(Exception):  # pruning is housekeeping: the view is already read
            clock.client.hdel(workers_key(clock), *gone)
    counts = dict.fromkeys(STATES, 0)
    tiers: dict[str, dict[int, int]] = {importance.value: {} for importance in MatchImportance}
    answers_per_s = 0.0
    for beat in workers:
        counts[beat.state] += 1
        if beat.state in ("stale", "gone"):
            continue
        answers_per_s += beat.answers / max(beat.interval_s or interval_s, 1e-3)
        for stakes, tier in beat.tiers.items():
            per_tier = tiers.setdefault(stakes, {})
            per_tier[tier] = per_tier.get(tier, 0) + 1
    return FleetView(
        now=now,
        reading=reading,
        override=override,
        workers=workers,
        counts=counts,
        tiers=tiers,
        answers_per_s=answers_per_s,
        disagreeing=[beat for beat in workers if _disagrees(beat, reading, override, quota)],
        invalid=invalid,
    )
