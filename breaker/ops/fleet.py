"""The fleet as the workers' heartbeats describe it, read with the clock and the override in one round trip.

Each worker writes one field of ``{prefix}workers`` per interval (``breaker.heartbeat``). A reader sees who
reports, what they answered, which ones fail safe or fell silent, and which ones answer a tier the clock
does not imply (a worker on another prefix, a stale build). The read is bounded: one deadline over the whole
read (``read_deadline``), at most ``READ_MAX_FIELDS`` fields in HSCAN pages of ``PAGE_FIELDS`` (never HGETALL),
and pruning of dead, garbage and future-dated fields with bounded work per read (``fleet_prune``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..clock import ClockReading, PanicClock, server_time
from ..heartbeat import STATES, WORKERS_KEY_NAME, InvalidBeat, WorkerBeat, parse_beat
from ..importance import MatchImportance
from ..keyspace import queue_time
from ..override import OverrideMode
from ..policy import AdaptivePanicQuota
from .fleet_prune import delete_fields, expire_fields, future_reason, is_future, prune_reason, walk_and_prune
from .overrides import DEFAULT_MAX_OVERRIDE_S, OverrideReading, is_wrong_type, override_key, override_reading
from .read_deadline import DEFAULT_OPERATOR_READ_S, operator_deadline

#: HSCAN COUNT of one page: about a millisecond of server time (a beat is a few hundred bytes).
PAGE_FIELDS = 1000
#: Fields one ``read_fleet`` reads at most (in pages); a larger hash is read in part, see ``FleetView.complete``.
READ_MAX_FIELDS = 10_000


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
    #: HLEN of the workers hash at the read; ``complete`` False when the read covered only ``scanned`` fields
    #: of it (a hash over ``max_fields``): the counts are then those of the fields read.
    fields_total: int = 0
    complete: bool = True
    scanned: int = 0
    pruned: int = 0  # fields this read deleted or gave their grace expiry (dead, garbage, future-dated)


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


def disagrees(beat: WorkerBeat, reading: ClockReading, override: OverrideReading,
              quota: AdaptivePanicQuota) -> bool:
    """The beat answers a tier the clock (and override) did not imply when it was written."""
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


def scan_reply(reply: Any) -> tuple[int, dict[Any, Any]]:
    """HSCAN's reply as (cursor, {field: value}): redis-py parses it so, a cluster pipeline hands over the raw
    ``[cursor, [field, value, …]]``."""
    cursor, fields = reply
    if not isinstance(fields, dict):
        fields = dict(zip(fields[::2], fields[1::2]))
    return int(cursor), fields


def judge_field(name: Any, raw: Any, now: float) -> tuple[WorkerBeat | None, str | None, str | None]:
    """One field of the workers hash at ``now``: (its beat, or None), why it is no readable beat (or None), and
    why a reader deletes it (``fleet_prune.prune_reason``; None: keep). A beat ``seen`` in the future is no
    beat: it is listed as invalid and never counted as a live worker."""
    try:
        beat = parse_beat(name, raw, now)
    except InvalidBeat as exc:
        return None, str(exc), prune_reason(None, exc, raw, now)
    if is_future(beat, now):
        return None, future_reason(beat, now), "future"
    return beat, None, prune_reason(beat, None, raw, now)


def read_fleet(clock: PanicClock, *, interval_s: float = 1.0, prune: bool = True,
               deadline_s: float = DEFAULT_OPERATOR_READ_S, max_fields: int = READ_MAX_FIELDS,
               max_override_s: float = DEFAULT_MAX_OVERRIDE_S) -> FleetView:
    """Workers, clock and override in one MULTI (HSCAN's first page of ``PAGE_FIELDS`` inside it: a fleet of
    that size is one round trip), then further HSCAN pages up to ``max_fields`` fields in all: a larger hash is
    read in part (``complete`` False, ``fields_total`` says how large it is) rather than all at once. At most
    ``max_fields / PAGE_FIELDS`` HSCAN calls (a page of a region emptied by pruning may hold fewer fields). The whole
    read, pruning included, ends within ``deadline_s`` (``operator_deadline``). ``interval_s`` is assumed for
    beats that do not say theirs. With ``prune``, dead, garbage and future-dated fields among those read are
    removed (``fleet_prune``), and when the read did not cover the hash, ``PRUNE_WALK_FIELDS`` more from the
    remembered cursor. ``max_override_s``: the workers' cap on an override (``override_reading``)."""
    key = workers_key(clock)
    client = clock.client
    with operator_deadline(deadline_s):
        pipe = client.pipeline(transaction=True)
        queue_time(pipe, clock.start_key)
        pipe.hlen(key)
        clock.queue_read(pipe)
        pipe.get(override_key(clock))
        pipe.hscan(key, 0, count=max(1, min(PAGE_FIELDS, max_fields)))
        replies = pipe.execute(raise_on_error=False)
        invalid: dict[str, str] = {}
        total, page = replies[1], replies[7]
        cursor, fields = 0, {}
        if is_wrong_type(page) or is_wrong_type(total):  # not the workers' hash: flag it, still show the rest
            invalid[key] = "the key holds another type than a hash: no heartbeat can be read"
            total = 0
        else:
            for reply in (replies[0], total, page):
                if isinstance(reply, Exception):
                    raise reply
            cursor, fields = scan_reply(page)
        if isinstance(replies[0], Exception):
            raise replies[0]
        now = server_time(replies[0])
        reading = clock.reading(replies[2:6], now)
        override = override_reading(replies[6], now, max_override_s)  # a key of another type is flagged there
        fields = dict(fields)
        pages = 1
        while cursor and len(fields) < max_fields and pages < -(-max_fields // PAGE_FIELDS):
            cursor, more = client.hscan(key, cursor, count=max(1, min(PAGE_FIELDS, max_fields - len(fields))))
            fields.update(more)
            pages += 1
        workers: list[WorkerBeat] = []
        dead: list[Any] = []
        for name, raw in fields.items():
            beat, why_invalid, why_prune = judge_field(name, raw, now)
            if beat is not None:
                workers.append(beat)
            else:
                invalid[name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)] = why_invalid
            if why_prune is not None:
                dead.append((name, why_prune))
        pruned = 0
        if prune:
            with contextlib.suppress(Exception):  # pruning is housekeeping: the view is already read
                if cursor:  # larger than one read: whatever is dead goes now, and the walk goes on
                    pruned += delete_fields(client, key, [name for name, _ in dead])
                    pruned += walk_and_prune(client, clock.key_prefix, now,
                                             lambda name, raw: judge_field(name, raw, now)[2])
                else:  # gone beats now; invalid ones stay listed for GRACE_S, then the server removes them
                    pruned += delete_fields(client, key, [name for name, why in dead if why == "gone"])
                    pruned += expire_fields(client, key, [name for name, why in dead if why != "gone"])
    workers.sort(key=lambda beat: beat.worker_id)
    quota = AdaptivePanicQuota()
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
        disagreeing=[beat for beat in workers if disagrees(beat, reading, override, quota)],
        invalid=invalid,
        fields_total=int(total or 0),
        complete=not cursor,
        scanned=len(fields),
        pruned=pruned,
    )
