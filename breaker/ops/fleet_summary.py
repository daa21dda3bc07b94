"""The fleet in numbers, read in O(1) of its size: the per-bucket aggregates the workers' round trips keep.

Every beat a worker writes also adds, in the same script step (``breaker.refresh``), to the aggregate of the
server-time bucket it falls in (``AGG_BUCKET_S`` seconds): a hash ``{prefix}fleet_agg:<bucket>`` of counters
(``beats``, ``calls:<MODE>``, ``fail_safe``, ``epoch:<n>`` for panic beats, ``panic_seen``, ``skew_max``,
``skew_min``) and HyperLogLogs of worker ids, ``{prefix}fleet_agg:<bucket>:<state>`` (panic, calm, fail_safe)
and ``{prefix}fleet_agg:<bucket>:tier:<stakes>:<tier>``. They expire on their own a few buckets later.

A reader reads the *window*: the last ``n`` complete buckets, ``n = ceil(interval / AGG_BUCKET_S)``, so that every
live worker beat at least once inside it. In aggregate terms:
- a worker is counted in a state when it reported that state at least once in the window (a worker that
  changed state in the window counts in both: the state counts may add up to more than ``reporting``);
- ``reporting``: distinct workers that beat in the window;
- ``stale``: workers that beat in the window before it and not in it (``|prev ∪ last| - |last|``: exact
  for sets, and within the HyperLogLog's error of about 0.8 %); ``gone`` is not counted (0);
- tiers: distinct workers per stakes class and tier in the window; answers per second: the window's calls
  over its length.
Counts of distinct workers come from HyperLogLogs: exact to a few workers in a small fleet, ~0.8 % at scale.
Two short pipelines (TIME with the clock and the override, then the window's keys), a few dozen commands, none
of which reads more than a few hundred bytes: the same cost at 1 000 workers as at 100 000. Then one page
(``PRUNE_BATCH`` fields, one HSCAN) of the pruning walk over the heartbeats: the hash is read by nobody else in a
fleet that writes aggregates, so this is what removes dead, garbage and future-dated fields (``_prune_step``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..clock import ClockReading, PanicClock, server_time
from ..heartbeat import STATES
from ..importance import MatchImportance
from ..keyspace import queue_time
from ..override import OverrideMode
from ..policy import AdaptivePanicQuota
from ..refresh import AGG_BUCKET_S
from .overrides import DEFAULT_MAX_OVERRIDE_S, OverrideReading, override_key, override_reading
from .read_deadline import DEFAULT_OPERATOR_READ_S, operator_deadline

AGG_STATES = ("panic", "calm", "fail_safe")
#: |skew| beyond this is worth an operator's look (the alert rule's threshold, docs/alerts.md)
SKEW_WARN_S = 30.0


@dataclass(frozen=True)
class FleetSummary:
    """The fleet at server time ``now`` as the aggregates of the window ``[since, until)`` describe it."""

    now: float
    reading: ClockReading
    override: OverrideReading
    counts: dict[str, int]
    reporting: int
    tiers: dict[str, dict[int, int]]
    answers_per_s: float
    disagreeing: int
    beats: int
    fail_safe_answers: int
    epoch: int | None  # the stored counter ``{prefix}panic_epoch`` (None: no panic started yet)
    epochs: dict[int, int] = field(default_factory=dict)  # epoch -> panic beats answering from it in the window
    skew_max: float | None = None
    skew_min: float | None = None
    panic_seen: float | None = None  # the newest beat of a worker answering panic from the clock
    since: float = 0.0
    until: float = 0.0
    fields_total: int = 0  # HLEN of the workers hash (O(1))
    off_tiers: dict[str, dict[int, int]] = field(default_factory=dict)  # stakes -> tier -> workers not implied
    complete: bool = True  # counts cover the whole fleet (False: from_beats, and more heartbeats than one read)
    from_beats: bool = False  # summarized from the heartbeats (no aggregate in the window: see read_summary)
    pruned: int = 0  # fields of the workers hash this read's walk deleted or gave their grace expiry

    @property
    def known(self) -> int:
        """Workers seen in the window or the one before it (reporting + stale): the Fleet page's "Workers"."""
        return self.reporting + self.counts.get("stale", 0)

    @property
    def epoch_changed(self) -> bool:
        """Panic beats of the window answer from more than one epoch, or from another than the stored one:
        a new start in the window, or a start lost in a failover (workers still on the lost epoch)."""
        return len(self.epochs) > 1 or (bool(self.epochs) and self.epoch is not None and self.epoch not in self.epochs)


def window_buckets(now: float, interval_s: float) -> tuple[list[int], list[int]]:
    """(the window's buckets, the window before it), newest first; the current, incomplete bucket is in none."""
    n = max(1, math.ceil(max(interval_s, 1.0) / AGG_BUCKET_S))
    current = math.floor(now / AGG_BUCKET_S)
    last = [current - 1 - i for i in range(n)]
    return last, [b - n for b in last]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _float(value: Any) -> float | None:
    try:
        number = float(_text(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _tier_keys(quota: AdaptivePanicQuota) -> list[tuple[str, int]]:
    return [(importance.value, tier) for importance in MatchImportance
            for tier in range(1, len(quota.tables[importance].ttls) + 1)]


def expected_tiers(reading: ClockReading, override: OverrideReading, since: float, until: float, slack_s: float,
                   stakes: str, quota: AdaptivePanicQuota) -> set[int] | None:
    """The tiers the clock implied for ``stakes`` at some time of the window (give or take one interval): a
    worker answering another one disagrees. None: anything goes (force_calm answers no tier)."""
    if override.override is not None:
        return {1} if override.override.mode is OverrideMode.FORCE_FULL else None
    if reading.start is None:
        return {1}
    importance = MatchImportance(stakes)
    low, high = (quota.decide(0, max(0.0, t - reading.start) / 60.0, importance, True).tier
                 for t in (since - slack_s, until + slack_s))
    return set(range(low, high + 1))


def read_summary(clock: PanicClock, *, interval_s: float = 1.0, deadline_s: float = DEFAULT_OPERATOR_READ_S,
                 fallback: bool = True, max_override_s: float = DEFAULT_MAX_OVERRIDE_S,
                 prune: bool = True) -> FleetSummary:
    """Clock, override, epoch and HLEN with the server's TIME in one MULTI, then the window's aggregates in one
    pipeline; every command reads a few hundred bytes at most, whatever the fleet's size (the pruning walk's one
    HSCAN page aside).

    With ``fallback``, heartbeats but no aggregate in the window (workers on the no-scripting fallback, which
    writes beats but no aggregates, or workers older than the aggregates) are summarized from the beats
    themselves (``read_fleet``: bounded, at most ``READ_MAX_FIELDS`` of them), as before the aggregates.
    ``max_override_s``: the workers' cap on an override (``override_reading``). With ``prune``, the read also
    walks one page of the workers hash and removes what can never be a live worker (``_prune_step``)."""
    with operator_deadline(deadline_s):  # one deadline over the whole read, the fallback included
        summary = _read_aggregates(clock, interval_s, deadline_s, max_override_s)
        if fallback and summary.beats == 0 and summary.fields_total > 0:
            from .fleet import read_fleet

            return summary_of_view(read_fleet(clock, interval_s=interval_s, deadline_s=deadline_s,
                                              max_override_s=max_override_s), summary)
        if prune and summary.fields_total > 0:
            summary = replace(summary, pruned=_prune_step(clock, summary))
        return summary


def _prune_step(clock: PanicClock, summary: FleetSummary) -> int:
    """One page (``PRUNE_BATCH`` fields, one HSCAN) of the remembered-cursor walk over the workers hash: the
    summary reads no heartbeat, so without this step nothing would remove dead beats (servers without per-field
    expiry), garbage or future-dated fields in a fleet that writes aggregates. Every summary read (scrape,
    ``status``, Live, Fleet) advances the walk: a field the workers no longer write is gone after at most
    ``fields_total / PRUNE_BATCH`` reads. Housekeeping: its errors are swallowed (the summary is already read)."""
    from .fleet import READ_MAX_FIELDS, judge_field
    from .fleet_prune import PRUNE_BATCH, walk_and_prune

    now = summary.now
    with contextlib.suppress(Exception):
        return walk_and_prune(clock.client, clock.key_prefix, now, lambda name, raw: judge_field(name, raw, now)[2],
                              fields=PRUNE_BATCH, grace=summary.fields_total <= READ_MAX_FIELDS)
    return 0


def summary_of_view(view: Any, aggregates: FleetSummary) -> FleetSummary:
    """A ``FleetSummary`` from the heartbeats themselves (a ``FleetView``), for fleets that write no aggregates."""
    live = [beat for beat in view.workers if beat.state not in ("stale", "gone")]  # the window's: reporting
    epochs: dict[int, int] = {}
    for beat in live:
        if beat.state == "panic" and beat.epoch:
            epochs[beat.epoch] = epochs.get(beat.epoch, 0) + 1
    skews = [beat.skew_s for beat in live if beat.skew_s is not None]
    panic = [beat.seen for beat in live if beat.state == "panic" and beat.override is None]
    from .status import worker_answers

    off_tiers = {a.importance.value: dict(a.reported_tiers) for a in
                 worker_answers(view.reading, view.override.override, 60, beats=view.workers) if a.reported_tiers}
    return FleetSummary(
        now=view.now, reading=view.reading, override=view.override, counts=dict(view.counts), reporting=len(live),
        tiers=view.tiers, answers_per_s=view.answers_per_s, disagreeing=len(view.disagreeing), beats=len(live),
        fail_safe_answers=sum(beat.fail_safe for beat in live), epoch=aggregates.epoch, epochs=epochs,
        skew_max=max(skews) if skews else None, skew_min=min(skews) if skews else None,
        panic_seen=min(max(panic), view.now) if panic else None, since=aggregates.since, until=aggregates.until,
        fields_total=view.fields_total, off_tiers=off_tiers, from_beats=True, complete=view.complete,
        pruned=view.pruned,
    )


def _read_aggregates(clock: PanicClock, interval_s: float, deadline_s: float, max_override_s: float) -> FleetSummary:
    client = clock.client
    quota = AdaptivePanicQuota()
    with operator_deadline(deadline_s):
        pipe = client.pipeline(transaction=True)
        queue_time(pipe, clock.start_key)
        clock.queue_read(pipe)
        pipe.get(override_key(clock))
        pipe.get(clock.epoch_key)
        pipe.hlen(clock.workers_key)
        replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        now = server_time(replies[0])
        reading = clock.reading(replies[1:5], now)
        override = override_reading(replies[5], now, max_override_s)
        epoch_raw, total = replies[6], replies[7]
        epoch = None if isinstance(epoch_raw, Exception) or epoch_raw is None else _float(epoch_raw)
        last, before = window_buckets(now, interval_s)
        agg = clock.agg_key
        hashes = [f"{agg}:{b}" for b in last]
        pipe = client.pipeline(transaction=False)
        for key in hashes:
            pipe.hgetall(key)
        for state in AGG_STATES:
            pipe.execute_command("PFCOUNT", *[f"{key}:{state}" for key in hashes])
        pipe.execute_command("PFCOUNT", *[f"{key}:{state}" for key in hashes for state in AGG_STATES])
        pipe.execute_command("PFCOUNT", *[f"{agg}:{b}:{state}" for b in last + before for state in AGG_STATES])
        tier_keys = _tier_keys(quota)
        for stakes, tier in tier_keys:
            pipe.execute_command("PFCOUNT", *[f"{key}:tier:{stakes}:{tier}" for key in hashes])
        results = pipe.execute()
    fields: list[dict[Any, Any]] = results[:len(hashes)]
    at = len(hashes)
    counts = dict.fromkeys(STATES, 0)
    for state in AGG_STATES:
        counts[state] = int(results[at])
        at += 1
    reporting, both = int(results[at]), int(results[at + 1])
    counts["stale"] = max(0, both - reporting)
    at += 2
    tiers: dict[str, dict[int, int]] = {importance.value: {} for importance in MatchImportance}
    for (stakes, tier), n in zip(tier_keys, results[at:], strict=True):
        if n:
            tiers[stakes][tier] = int(n)
    beats = calls = fail_safe = 0
    epochs: dict[int, int] = {}
    skews_max, skews_min, panic_seen = [], [], []
    for values in fields:
        for name, value in values.items():
            name = _text(name)
            number = _float(value)
            if number is None:
                continue
            if name == "beats":
                beats += int(number)
            elif name.startswith("calls:"):
                calls += int(number)
            elif name == "fail_safe":
                fail_safe += int(number)
            elif name.startswith("epoch:"):
                with_epoch = _float(name[6:])
                if with_epoch is not None:
                    epochs[int(with_epoch)] = epochs.get(int(with_epoch), 0) + int(number)
            elif name == "skew_max":
                skews_max.append(number)
            elif name == "skew_min":
                skews_min.append(number)
            elif name == "panic_seen":
                panic_seen.append(number)
    since, until = min(last) * AGG_BUCKET_S, (max(last) + 1) * AGG_BUCKET_S
    slack = max(interval_s, 1.0)
    disagreeing = 0
    off_tiers: dict[str, dict[int, int]] = {}
    for stakes, per_tier in tiers.items():
        allowed = expected_tiers(reading, override, since, until, slack, stakes, quota)
        if allowed is not None:
            off = {tier: n for tier, n in per_tier.items() if tier not in allowed}
            disagreeing += sum(off.values())
            if off:
                off_tiers[stakes] = off
    return FleetSummary(
        now=now, reading=reading, override=override, counts=counts, reporting=reporting, tiers=tiers,
        answers_per_s=calls / (until - since), disagreeing=disagreeing, beats=beats, fail_safe_answers=fail_safe,
        epoch=int(epoch) if epoch is not None else None, epochs=epochs,
        skew_max=max(skews_max) if skews_max else None, skew_min=min(skews_min) if skews_min else None,
        panic_seen=min(max(panic_seen), now) if panic_seen else None, since=since, until=until,
        fields_total=int(total) if isinstance(total, int) else 0, off_tiers=off_tiers,
    )


def summary_doc(view: FleetSummary) -> dict[str, Any]:
    """The summary as JSON (``vix-breaker fleet --json``'s head, ``status``'s fleet)."""
    return {
        "now": view.now, "workers": view.reporting, "counts": view.counts, "answers_per_s": view.answers_per_s,
        "tiers": {stakes: {str(t): n for t, n in per.items()} for stakes, per in view.tiers.items()},
        "disagreeing": view.disagreeing, "fields_total": view.fields_total, "window": [view.since, view.until],
        "from_beats": view.from_beats, "complete": view.complete, "epoch": view.epoch,
        "epochs": {str(e): n for e, n in view.epochs.items()},
        "epoch_changed": view.epoch_changed, "skew_max_s": view.skew_max, "skew_min_s": view.skew_min,
    }


def aggregate_keys(clock: PanicClock, now: float, *, back_s: float = 120.0) -> list[str]:
    """Every aggregate key name the round trips may have written in the ``back_s`` seconds before ``now`` (and
    the current bucket): for deleting a scratch namespace by name, without a SCAN."""
    quota = AdaptivePanicQuota()
    current = math.floor(now / AGG_BUCKET_S)
    keys = []
    for bucket in range(current - math.ceil(back_s / AGG_BUCKET_S), current + 2):
        base = f"{clock.agg_key}:{bucket}"
        keys += [base, *(f"{base}:{state}" for state in AGG_STATES),
                 *(f"{base}:tier:{stakes}:{tier}" for stakes, tier in _tier_keys(quota))]
    return keys
