"""The audit trail: operator actions and breaker state changes in one bounded Redis stream.

Who did what, when and why lives next to the clock it is about (``{prefix}audit``), so
every console and every worker of a namespace sees the same history. The stream is
trimmed to ``maxlen`` entries on every write: history is for operators, not an archive.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..clock import AUDIT_KEY_NAME, client_key_prefix
from ..refresh import AUDIT_MAXLEN as DEFAULT_MAXLEN  # the workers' schedule step trims to the same length

KINDS = ("operator", "state_change", "login")
#: Operator actions after which no panic clock is left running.
CLOCK_ENDING_ACTIONS = ("panic_end", "zombie_clear")


@dataclass(frozen=True)
class AuditEntry:
    """One line of history; ``tier`` is the highest tier the entry reports, when it reports one."""

    id: str
    at: float
    kind: str
    who: str
    action: str
    why: str
    tier: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # what was wrong with the stored entry and left out of the history
    auth: str = ""  # the credential kind that verified ``who`` (password, oidc, token:<id>, shared, sandbox, worker)
    role: str = ""  # the actor's role (viewer, operator, approver, admin), "" when none


class AuditTrail:
    """Append to and read the ``{prefix}audit`` stream."""

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str | None = None,  # None: the client's production prefix ({brain}: on a cluster)
        maxlen: int = DEFAULT_MAXLEN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"maxlen must be a whole number >= 1, got {maxlen!r}")
        self.client = client
        self.key = f"{client_key_prefix(client) if key_prefix is None else key_prefix}{AUDIT_KEY_NAME}"
        self.maxlen = maxlen
        self.clock = clock

    def record(
        self,
        *,
        who: str,
        action: str,
        why: str = "",
        kind: str = "operator",
        tier: int | None = None,
        at: float | None = None,
        auth: str | None = None,
        role: str | None = None,
        **detail: Any,
    ) -> str:
        """Append one entry (one XADD, trimmed to ``maxlen``) and return its stream id."""
        fields = self.entry_fields(who=who, action=action, why=why, kind=kind, tier=tier, at=at, auth=auth,
                                   role=role, **detail)
        entry_id = self.client.xadd(self.key, fields, maxlen=self.maxlen, approximate=False)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def record_in(self, pipe: Any, **entry: Any) -> None:
        """Queue the entry's XADD on ``pipe`` (a MULTI): the write it records and the entry land together."""
        pipe.xadd(self.key, self.entry_fields(**entry), maxlen=self.maxlen, approximate=False)

    def entry_fields(
        self,
        *,
        who: str,
        action: str,
        why: str = "",
        kind: str = "operator",
        tier: int | None = None,
        at: float | None = None,
        auth: str | None = None,
        role: str | None = None,
        **detail: Any,
    ) -> dict[str, str]:
        """The stream fields of one entry; raises ``ValueError`` for an entry nobody could read back.

        ``auth`` and ``role`` (SPEC section 12) are top-level fields, written when given."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not who or not action:
            raise ValueError(f"an audit entry needs who and action, got who={who!r} action={action!r}")
        fields = {
            "at": repr(float(self.clock() if at is None else at)),
            "kind": kind,
            "who": who,
            "action": action,
            "why": why,
            "detail": json.dumps(detail, default=str, sort_keys=True),
        }
        if tier is not None:
            fields["tier"] = str(int(tier))
        if auth is not None:
            fields["auth"] = str(auth)
        if role is not None:
            fields["role"] = str(role)
        return fields

    def entries(self, count: int = 1000) -> list[AuditEntry]:
        """The newest ``count`` entries, oldest first."""
        rows = self.client.xrevrange(self.key, count=count)
        return [_entry(entry_id, fields) for entry_id, fields in reversed(rows)]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


#: Latest time an entry may carry: the last second of year 9999, the end of Python's calendar.
MAX_ENTRY_TS = 253_402_300_799.0
#: Detail fields that history computes with (panic episodes; override episodes' since/until): each must be a
#: timestamp when present.
TIMESTAMP_DETAILS = ("panic_start", "hold_until", "since", "until")


def _timestamp(value: Any) -> float | None:
    """A usable point in time (finite, after 1970, before year 10000), or None."""
    if isinstance(value, bool):
        return None
    try:
        ts = float(value)
    except (TypeError, ValueError):
        return None
    return ts if math.isfinite(ts) and 0 < ts <= MAX_ENTRY_TS else None


def _entry(entry_id: Any, raw_fields: dict[Any, Any]) -> AuditEntry:
    """One stored entry as history uses it. Anyone who can write the stream can write anything to it: a
    value history cannot use is left out and named in ``problems``, never raised for every viewer."""
    fields = {_text(k): _text(v) for k, v in raw_fields.items()}
    problems = []
    try:
        detail = json.loads(fields.get("detail", "{}"))
    except (ValueError, RecursionError):  # RecursionError: brackets nested deeper than json follows
        detail = {"unparsed": fields.get("detail")}
        problems.append("detail is not JSON")
    detail = detail if isinstance(detail, dict) else {"value": detail}
    for name in TIMESTAMP_DETAILS:
        if name in detail and detail[name] is not None and _timestamp(detail[name]) is None:
            problems.append(f"{name} {_short(detail.pop(name))} is not a timestamp")
    at = _timestamp(fields.get("at"))
    if at is None:
        problems.append(f"at {_short(fields.get('at'))} is not a timestamp: the stream id's time is shown")
        at = _timestamp(int(_text(entry_id).split("-")[0]) / 1000.0) or 0.0
    tier = fields.get("tier")
    return AuditEntry(
        id=_text(entry_id),
        at=at,
        kind=fields.get("kind", "operator"),
        who=fields.get("who", "?"),
        action=fields.get("action", "?"),
        why=fields.get("why", ""),
        tier=int(tier) if tier is not None and tier.lstrip("-").isdigit() and len(tier) < 4 else None,
        detail=detail,
        problems=tuple(problems),
        auth=fields.get("auth", ""),
        role=fields.get("role", ""),
    )


def parse_entry(entry_id: Any, raw_fields: dict[Any, Any]) -> AuditEntry:
    """One stream entry (raw fields) as History reads it; what was wrong with it is in ``problems``."""
    return _entry(entry_id, raw_fields)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def worker_id() -> str:
    """``host:pid``: enough to tell workers apart in the history."""
    return f"{socket.gethostname()}:{os.getpid()}"


def state_change_listener(trail: AuditTrail, who: str | None = None) -> Callable[[dict[str, Any]], None]:
    """An ``on_state_change`` hook for ``VIXCircuitBreaker``: the breaker calls it only on a change,
    so a worker adds one entry per mode/tier change, not one per call."""
    name = who or worker_id()

    def on_state_change(event: dict[str, Any]) -> None:
        detail = dict(event)
        tier = detail.pop("tier", None)
        previous = detail.get("previous_mode") or "none"
        trail.record(
            who=name,
            action="state_change",
            kind="state_change",
            auth="worker",
            why=f"{detail.get('match_importance')}: {previous} -> {detail.get('mode')}",
            tier=tier,
            **detail,
        )

    return on_state_change


@dataclass(frozen=True)
class PanicEpisode:
    """A stretch of history with some tier above 0: from the first raise until the last fall."""

    start: float
    end: float | None
    peak_tier: int

    @property
    def ongoing(self) -> bool:
        return self.end is None

    def duration_s(self, now: float) -> float:
        return max(0.0, (now if self.end is None else self.end) - self.start)


class TierStep(NamedTuple):
    """From ``at`` on, the fleet was at ``tier``; ``panic_start`` is a back-dated start a drill reported."""

    at: float
    tier: int
    panic_start: float | None = None


CLOCK_UNKNOWN = object()


def fleet_tier_steps(
    entries: Iterable[AuditEntry], now: float, clock_start: Any = CLOCK_UNKNOWN
) -> list[TierStep]:
    """The fleet tier over time: the highest tier any worker last reported for any stakes class.

    A drill entry reports the tier its back-dated clock implies until its hold runs out
    (``hold_until``); an operator ending or clearing the clock brings every source back to 0.
    Workers log only panic answers (calm markets say nothing about the global clock), so a
    worker's tier ends when a report names a newer panic start, or, given ``clock_start`` (the
    clock's start now, None when there is none), at ``now`` once its panic's clock is gone.
    One step per change, oldest first.
    """
    sources: dict[tuple[str, str], tuple[int, float | None]] = {}
    source_start: dict[tuple[str, str], float] = {}
    steps: list[TierStep] = []

    def emit(at: float, panic_start: float | None = None) -> None:
        tier = max((t for t, _ in sources.values()), default=0)
        if not steps or steps[-1].tier != tier:
            steps.append(TierStep(at, tier, panic_start))

    def expire(until_now: float) -> None:
        while True:
            due = [(until, key) for key, (_, until) in sources.items() if until is not None and until <= until_now]
            if not due:
                return
            until, key = min(due)
            del sources[key]
            emit(until)

    for entry in sorted(entries, key=lambda e: e.at):
        expire(entry.at)
        if entry.action in CLOCK_ENDING_ACTIONS:
            sources.clear()
        elif entry.tier is not None:
            if entry.kind == "state_change":
                reported = entry.detail.get("panic_start")
                if reported is not None:
                    ended = [k for k, s in source_start.items() if s != float(reported)]
                    for key in ended:
                        sources.pop(key, None)  # that panic is over: a newer one has started
                        source_start.pop(key)
                    if ended:
                        emit(entry.at)
                    source_start[(entry.who, str(entry.detail.get("match_importance", "")))] = float(reported)
                sources[(entry.who, str(entry.detail.get("match_importance", "")))] = (entry.tier, None)
            else:
                until = entry.detail.get("hold_until")
                sources[(entry.who, "drill")] = (entry.tier, float(until) if until is not None else None)
        start = entry.detail.get("panic_start")
        emit(entry.at, float(start) if start is not None else None)
    expire(now)
    if clock_start is not CLOCK_UNKNOWN:
        gone = [k for k, s in source_start.items() if clock_start is None or s != float(clock_start)]
        for key in gone:
            sources.pop(key, None)
        if gone:
            emit(now)
    return steps


def panic_episodes(entries: Iterable[AuditEntry], now: float, clock_start: Any = CLOCK_UNKNOWN) -> list[PanicEpisode]:
    """Episodes derived from the history, oldest first: a stretch with the fleet tier above 0.

    An episode starts when the fleet tier rises above 0 (at a drill's back-dated start when a
    drill raised it) and ends when it falls back to 0: the workers calmed down, an operator
    ended or cleared the clock, or a drill's hold ran out.
    """
    episodes: list[PanicEpisode] = []
    start: float | None = None
    peak = 0
    for step in fleet_tier_steps(entries, now, clock_start):
        if step.tier > 0 and start is None:
            start, peak = (step.panic_start if step.panic_start is not None else step.at), step.tier
        elif step.tier > 0:
            peak = max(peak, step.tier)
        elif start is not None:
            episodes.append(PanicEpisode(start, step.at, peak))
            start, peak = None, 0
    if start is not None:
        episodes.append(PanicEpisode(start, None, peak))
    return episodes


class EpochChange(NamedTuple):
    """Workers began answering from panic epoch ``epoch`` (``previous`` before it) at ``at``: a new start. Without
    an operator's end or clear in between, the previous start was lost (a failover) or replaced as unusable."""

    at: float
    previous: int
    epoch: int
    who: str


def epoch_changes(entries: Iterable[AuditEntry]) -> list[EpochChange]:
    """The changes of panic epoch the workers' state changes report, oldest first (issue 24)."""
    changes: list[EpochChange] = []
    last: int | None = None
    for entry in entries:
        epoch = _epoch(entry.detail.get("epoch")) if entry.kind == "state_change" else None
        if epoch is None:
            continue
        if last is not None and epoch != last:
            changes.append(EpochChange(entry.at, last, epoch, entry.who))
        last = epoch
    return changes


def _epoch(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


OVERRIDE_ACTIONS = ("override_set", "override_extend", "override_clear")
OVERRIDE_MODES = ("force_full", "force_calm")


class OverrideEvent(NamedTuple):
    """One moment of an override's life: ``set``, ``extended``, ``cleared`` or ``expired`` (derived from
    ``until``: nobody writes an entry when an override runs out); ``entry`` is None for an expiry."""

    at: float
    what: str
    mode: str
    entry: AuditEntry | None = None


@dataclass(frozen=True)
class OverrideEpisode:
    """An override from the entry that set it until it was cleared, replaced or ran out.

    ``end`` is None while it is still on at ``now``; ``ended_by`` is ``cleared``, ``replaced``, ``expired``
    or ``on``. ``mode`` is ``unknown`` when the entry named no mode this version knows.
    """

    mode: str
    who: str
    why: str
    start: float
    until: float | None
    end: float | None
    ended_by: str
    events: tuple[OverrideEvent, ...]


def _override_mode(entry: AuditEntry) -> str:
    mode = entry.detail.get("mode")
    return mode if mode in OVERRIDE_MODES else "unknown"


def _number_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def override_episodes(entries: Iterable[AuditEntry], now: float) -> list[OverrideEpisode]:
    """Override episodes from the audit trail, oldest first.

    ``override_set`` opens one (closing a running one as ``replaced``); ``override_extend`` moves its end;
    ``override_clear`` closes it; an episode whose ``until`` passed before the next entry (or before ``now``)
    ended ``expired`` at ``until``. An extend or clear with no episode open (its set was trimmed from the
    stream) starts from that entry.
    """
    episodes: list[OverrideEpisode] = []
    current: dict[str, Any] | None = None

    def close(at: float, ended_by: str, event: OverrideEvent | None = None) -> None:
        nonlocal current
        if current is None:
            return
        events = (*current["events"], event) if event is not None else tuple(current["events"])
        episodes.append(OverrideEpisode(current["mode"], current["who"], current["why"], current["start"],
                                        current["until"], at, ended_by, events))
        current = None

    def expire_before(at: float) -> None:
        if current is not None and current["until"] is not None and current["until"] <= at:
            until = current["until"]
            close(until, "expired", OverrideEvent(until, "expired", current["mode"]))

    for entry in sorted((e for e in entries if e.action in OVERRIDE_ACTIONS), key=lambda e: e.at):
        expire_before(entry.at)
        mode = _override_mode(entry)
        until = _number_or_none(entry.detail.get("until"))
        if entry.action == "override_set":
            close(entry.at, "replaced")
            current = {"mode": mode, "who": entry.who, "why": entry.why, "start": entry.at, "until": until,
                       "events": [OverrideEvent(entry.at, "set", mode, entry)]}
        elif entry.action == "override_extend":
            if current is None:
                since = _number_or_none(entry.detail.get("since"))
                current = {"mode": mode, "who": entry.who, "why": entry.why,
                           "start": since if since is not None else entry.at, "until": until, "events": []}
            current["until"] = until
            current["events"].append(OverrideEvent(entry.at, "extended", current["mode"], entry))
        elif current is not None:
            close(entry.at, "cleared", OverrideEvent(entry.at, "cleared", current["mode"], entry))
        elif entry.detail.get("mode") is not None:  # the set was trimmed away: the clear still ends something
            episodes.append(OverrideEpisode(mode, entry.who, entry.why, entry.at, until, entry.at, "cleared",
                                            (OverrideEvent(entry.at, "cleared", mode, entry),)))
    expire_before(now)
    if current is not None:
        episodes.append(OverrideEpisode(current["mode"], current["who"], current["why"], current["start"],
                                        current["until"], None, "on", tuple(current["events"])))
    return episodes
