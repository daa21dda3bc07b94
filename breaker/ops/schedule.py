"""Planning override windows: schedule, cancel, approve and list, each write atomic with its audit entry.

The storage format and what workers do with it are in ``breaker.schedule``. Here the rules a write must keep:
a window has a reason, starts now or later (at most ``MAX_AHEAD_DAYS`` ahead), lasts at most ``max_minutes``
(``BREAKER_MAX_OVERRIDE_MIN``), overlaps no live window (planned or started), and at most ``MAX_PLANNED``
live windows exist. Under the two-person rule a ``force_calm`` window is stored unapproved; a second verified
operator approves it before it opens (``approve_window``), bound to the window's content (``Window.digest``).
Every write also prunes what nobody needs any more: windows over for ``PRUNE_AFTER_S`` and members that are
not windows. Times are the Redis server's.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..clock import PanicClock, server_time
from ..keyspace import queue_time
from ..override import OVERRIDE_KEY_NAME, OverrideMode
from ..schedule import SCHEDULE_KEY_NAME, InvalidWindow, Window, ms, parse_window
from .approvals import ApprovalRefused, require_second_person
from .audit import AuditTrail
from .audited_write import Planned, audited_write
from .overrides import DEFAULT_MAX_MINUTES, check_minutes
from .roles import SELF_DECLARED, WriteAccess, WriteRefused, canonical_name
from .tokens import TOKENS_KEY_NAME

MAX_PLANNED = 32
MAX_AHEAD_DAYS = 30
PRUNE_AFTER_S = 3600.0
#: A start this little in the past (a relative "+0s" resolved a round trip ago) means "now".
START_SLACK_S = 5.0
#: Members a reader takes at most (the writers keep far fewer; anyone with write access could add more).
READ_LIMIT = 256
MAX_WHY_CHARS = 500
LIVE_STATES = ("planned", "started")


class ScheduleRefused(WriteRefused):
    """A window the rules do not allow (overlap, too many, in the past, too far ahead); nothing was written."""


class NoSuchWindow(ScheduleRefused):
    """No window with that id is in the schedule (it was cancelled or pruned)."""


@dataclass(frozen=True)
class ScheduleReading:
    """The schedule at server time ``now``: windows by start, and members that are not windows."""

    now: float
    windows: tuple[Window, ...]
    invalid: tuple[str, ...]  # why each unreadable member is ignored

    def live(self) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if w.state in LIVE_STATES and w.until > self.now)

    def current(self) -> Window | None:
        """The window containing ``now`` (whatever its state), if any."""
        return next((w for w in self.windows if w.since <= self.now < w.until), None)


def schedule_key(clock: PanicClock) -> str:
    return f"{clock.key_prefix}{SCHEDULE_KEY_NAME}"


def _parse_members(rows: list[Any]) -> tuple[list[tuple[Any, Window]], list[tuple[Any, str]]]:
    windows, invalid = [], []
    for raw in rows:
        try:
            windows.append((raw, parse_window(raw)))
        except InvalidWindow as exc:
            invalid.append((raw, str(exc)))
    windows.sort(key=lambda pair: pair[1].since)
    return windows, invalid


def read_schedule(clock: PanicClock) -> ScheduleReading:
    """The schedule and the server's time in one round trip (at most ``READ_LIMIT`` members)."""
    key = schedule_key(clock)
    pipe = clock.client.pipeline(transaction=True)
    queue_time(pipe, key)
    pipe.zrange(key, 0, READ_LIMIT - 1)
    now, rows = pipe.execute(raise_on_error=False)
    if isinstance(now, Exception):
        raise now
    if isinstance(rows, Exception):
        if str(rows).startswith("WRONGTYPE"):
            return ScheduleReading(server_time(now), (), ("the schedule key holds another type than a sorted set",))
        raise rows
    windows, invalid = _parse_members(rows)
    return ScheduleReading(server_time(now), tuple(w for _, w in windows), tuple(why for _, why in invalid))


def _kind(pipe: Any, key: str) -> str:
    kind = pipe.type(key)
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def _stored(pipe: Any, key: str) -> tuple[list[tuple[Any, Window]], list[tuple[Any, str]]]:
    kind = _kind(pipe, key)
    if kind not in ("zset", "none"):
        raise ScheduleRefused(f"{key} holds a {kind}, not a sorted set: nothing written (delete it by hand)")
    return _parse_members(pipe.zrange(key, 0, READ_LIMIT - 1))


def _prunable(windows: list[tuple[Any, Window]], invalid: list[tuple[Any, str]], now: float) -> list[Any]:
    return [raw for raw, w in windows if w.until < now - PRUNE_AFTER_S] + [raw for raw, _ in invalid]


def _check_why(why: str) -> str:
    reason = (why or "").strip()
    if not reason:
        raise ValueError("a scheduled override needs a reason: it goes into the audit trail and onto the override")
    if len(reason) > MAX_WHY_CHARS:
        raise ValueError(f"the reason is longer than {MAX_WHY_CHARS} characters")
    return reason


def approval_text(window: Window) -> str:
    """A window's approval as the CLI and the console show it: "" for a force_full window (none needed)."""
    if window.mode is not OverrideMode.FORCE_CALM:
        return ""
    if window.approved_by:
        return f"approved by {window.approved_by}"
    return "not needed" if window.approved else "WAITING for a second approver (two-person rule)"


def schedule_override(
    clock: PanicClock,
    trail: AuditTrail,
    access: WriteAccess,
    *,
    mode: OverrideMode | str,
    minutes: float,
    why: str,
    start: float | None = None,
    after_s: float | None = None,
    two_person_rule: bool = False,
    max_minutes: float = DEFAULT_MAX_MINUTES,
) -> Window:
    """Plan ``mode`` for ``minutes`` from ``start`` (server time) or ``after_s`` seconds from now (exactly one).

    Refused (``ScheduleRefused``, nothing written) when it would overlap a live window, start in the past or
    more than ``MAX_AHEAD_DAYS`` ahead, or make more than ``MAX_PLANNED`` live windows; ``OverrideTooLong``
    above ``max_minutes``. A ``force_calm`` under the two-person rule is stored waiting for approval, bound to
    the requester's canonical name and credential kind; without the rule outside the sandbox it is break-glass.
    Role checks (``roles.WRITES``): ``override_schedule`` (force_full), ``override_schedule_calm`` (force_calm),
    ``break_glass`` (force_calm without a second person on a real target)."""
    mode = OverrideMode(mode)
    calm = mode is OverrideMode.FORCE_CALM
    break_glass = calm and not two_person_rule and access.auth != "sandbox"
    access.require("scheduling an override", "override_schedule_calm" if calm else "override_schedule")
    if break_glass:
        access.require("scheduling force_calm without a second person (break-glass)", "break_glass")
    length_s = check_minutes(minutes, max_minutes) * 60.0
    reason = _check_why(why)
    if (start is None) == (after_s is None):
        raise ValueError("give the window's start or the seconds until it (one of them)")
    for value in (start, after_s):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value != value or value in (float("inf"), float("-inf"))):
            raise ValueError(f"the start must be a finite number, got {value!r}")
    key = schedule_key(clock)

    def plan(pipe: Any) -> Planned[Window]:
        windows, invalid = _stored(pipe, key)
        now = clock.server_now()
        since = now + after_s if after_s is not None else float(start)
        if since < now - START_SLACK_S:
            raise ScheduleRefused(f"the window would start {now - since:.0f} s in the past (server time): "
                                  "scheduled windows start now or later; set an override for now instead")
        since = ms(max(since, now))
        if since > now + MAX_AHEAD_DAYS * 86400:
            raise ScheduleRefused(f"the window would start more than {MAX_AHEAD_DAYS} days ahead")
        until = ms(since + length_s)
        live = [w for _, w in windows if w.state in LIVE_STATES and w.until > now]
        clash = next((w for w in live if w.since < until and since < w.until), None)
        if clash is not None:
            raise ScheduleRefused(f"the window would overlap window {clash.id} ({clash.mode.value}, "
                                  f"{clash.since:.0f} to {clash.until:.0f} server time): windows may not overlap")
        if len(live) >= MAX_PLANNED:
            raise ScheduleRefused(f"{len(live)} windows are already planned: at most {MAX_PLANNED}; cancel one first")
        needs_approval = mode is OverrideMode.FORCE_CALM and two_person_rule
        window = Window(uuid.uuid4().hex[:12], mode, access.who, reason, since, until, at=ms(now),
                        requested_by=access.who if calm else None, approved=not needs_approval, approved_by=None,
                        extra={"requester_canonical": access.canonical, "requester_auth": access.auth} if calm else {})
        pruned = _prunable(windows, invalid, now)

        def queue(tx: Any) -> None:
            if pruned:
                tx.zrem(key, *pruned)
            tx.zadd(key, {window.to_json(): since})
            if break_glass:  # the loud entry alerts and notifiers listen for, as for an immediate break-glass
                trail.record_in(tx, who=access.who, action="break_glass", why=reason, at=now, window=window.id,
                                mode=mode.value, since=since, until=until, key=key, **access.audit())

        return Planned(dict(who=access.who, action="override_schedule", why=reason, at=now, window=window.id,
                            mode=mode.value, since=since, until=until, needs_approval=needs_approval,
                            digest=window.digest(), pruned=len(pruned), key=key,
                            **({"break_glass": True} if break_glass else {}), **access.audit()), queue, window)

    return audited_write(clock.client, trail, watch=(key,), plan=plan)


def _find(windows: list[tuple[Any, Window]], window_id: str) -> tuple[Any, Window]:
    for raw, window in windows:
        if window.id == window_id:
            return raw, window
    raise NoSuchWindow(f"no window {window_id!r} in the schedule (cancelled, or over and pruned)")


def cancel_window(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, window_id: str, why: str) -> Window:
    """Remove window ``window_id``; when the override in force is that window's, delete it too (workers go back
    to their own answers within one interval). One audit entry says whether an override was ended."""
    access.require("cancelling a scheduled override", "override_schedule_cancel")
    reason = _check_why(why)
    key, target = schedule_key(clock), f"{clock.key_prefix}{OVERRIDE_KEY_NAME}"

    def plan(pipe: Any) -> Planned[Window]:
        windows, invalid = _stored(pipe, key)
        raw, window = _find(windows, window_id)
        now = clock.server_now()
        ends_override = _materialized_id(pipe.get(target) if _kind(pipe, target) == "string" else None) == window.id
        pruned = [member for member in _prunable(windows, invalid, now) if member != raw]

        def queue(tx: Any) -> None:
            tx.zrem(key, raw, *pruned)
            if ends_override:
                tx.delete(target)

        return Planned(dict(who=access.who, action="override_schedule_cancel", why=reason, at=now, window=window.id,
                            mode=window.mode.value, since=window.since, until=window.until, state=window.state,
                            ended_override=ends_override, pruned=len(pruned), key=key, **access.audit()), queue,
                       window)

    return audited_write(clock.client, trail, watch=(key, target), plan=plan)


def _materialized_id(raw: Any) -> str | None:
    """The window id an override value was materialized from (None: a manual override, or none)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    value = data.get("window") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def approve_window(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, window_id: str,
                   digest: str) -> Window:
    """A second verified identity with the approver role (``override_window_approve``) approves the ``force_calm``
    window ``window_id`` before it opens. ``digest`` (``Window.digest`` of what the approver was shown) binds the
    approval to that content and to the requester's identity: a window changed since is refused. Refused for the
    requester (canonical names), for a pair in which one issued the other's API token, a window already open or
    not pending."""
    access.require("approving a scheduled force_calm", "override_window_approve")
    key, tokens = schedule_key(clock), f"{clock.key_prefix}{TOKENS_KEY_NAME}"

    def plan(pipe: Any) -> Planned[Window]:
        windows, _ = _stored(pipe, key)
        raw, window = _find(windows, window_id)
        now = clock.server_now()
        if window.mode is not OverrideMode.FORCE_CALM or window.approved or window.state != "planned":
            raise ScheduleRefused(f"window {window.id} is not waiting for approval")
        if window.since <= now:
            raise ScheduleRefused(f"window {window.id} has opened unapproved: it does not apply; schedule it again")
        requester = str(window.extra.get("requester_canonical") or canonical_name(
            (window.requested_by or window.who).removesuffix(SELF_DECLARED)))
        requester_auth = str(window.extra.get("requester_auth") or "")
        require_second_person(pipe, tokens, requester, requester_auth, access)
        if (digest or "").strip() != window.digest():
            raise ApprovalRefused(f"window {window.id} changed since you saw it: read it again before approving")
        approved = replace(window, approved=True, approved_by=access.who)

        def queue(tx: Any) -> None:
            tx.zrem(key, raw)
            tx.zadd(key, {approved.to_json(): approved.since})

        return Planned(dict(who=access.who, action="force_calm_approved", why=window.why, at=now, window=window.id,
                            mode=window.mode.value, since=window.since, until=window.until,
                            requested_by=window.requested_by, requested_by_auth=requester_auth,
                            approved_by=access.who, approved_by_auth=access.auth, digest=window.digest(), key=key,
                            **access.audit()), queue, approved)

    return audited_write(clock.client, trail, watch=(key, tokens), plan=plan)


UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_amount(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``1d`` in seconds; ``ValueError`` otherwise."""
    match = _AMOUNT.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not an amount of time like 90s, 15m or 2h")
    return float(match.group(1)) * UNITS_S[match.group(2)]


def parse_when(text: str) -> tuple[float | None, float | None]:
    """WHEN as (start, None) for ISO 8601 (no zone: UTC) or (None, seconds from now) for ``+30s`` / ``now``."""
    text = (text or "").strip()
    if text == "now":
        return None, 0.0
    if text.startswith("+"):
        return None, parse_amount(text[1:])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO 8601 (2026-06-14T20:45:00Z) nor relative (+30s, +2h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp(), None


#: Audit actions about windows, and what History calls each.
WINDOW_ACTIONS = {"override_schedule": "scheduled", "force_calm_approved": "approved",
                  "override_window_start": "started", "override_window_skipped": "skipped",
                  "override_window_end": "ended", "override_schedule_cancel": "cancelled"}


@dataclass(frozen=True)
class WindowStory:
    """One window's life as the audit trail tells it: ``events`` are (at, what, who) oldest first."""

    id: str
    mode: str
    who: str
    why: str
    since: float | None
    until: float | None
    events: tuple[tuple[float, str, str], ...]

    @property
    def outcome(self) -> str:
        """The last thing that happened to it: scheduled, approved, started, skipped, ended or cancelled."""
        return self.events[-1][1] if self.events else "?"


def window_stories(entries: Any) -> list[WindowStory]:
    """Windows from the audit trail (each entry names its window in ``detail.window``), in stream order (the order
    the writes happened), the window touched last first."""
    stories: dict[str, dict[str, Any]] = {}
    for position, entry in enumerate(entries):
        window_id = entry.detail.get("window") if entry.action in WINDOW_ACTIONS else None
        if not isinstance(window_id, str):
            continue
        story = stories.setdefault(window_id, {"mode": entry.detail.get("mode") or "?", "who": entry.who,
                                               "why": entry.why, "events": []})
        for name in ("since", "until"):
            value = entry.detail.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                story[name] = float(value)
        story["events"].append((entry.at, WINDOW_ACTIONS[entry.action], entry.who))
        story["last"] = position
    ordered = sorted(stories.items(), key=lambda item: item[1]["last"], reverse=True)
    return [WindowStory(wid, s["mode"], s["who"], s["why"], s.get("since"), s.get("until"), tuple(s["events"]))
            for wid, s in ordered]
