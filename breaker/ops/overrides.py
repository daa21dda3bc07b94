"""Setting, extending and clearing the operator override, each atomic with its audit entry.

Times are the Redis server's (``PanicClock.server_now``), as workers measure in it. Every override has an
end of at most ``max_minutes`` (``BREAKER_MAX_OVERRIDE_MIN``); the key expires with it, so a forgotten
override ends by itself. Each write and its audit XADD go in one MULTI: both or neither.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from redis.exceptions import ResponseError, WatchError

from ..clock import PanicClock, server_time
from ..keyspace import queue_time
from ..override import (
    DEFAULT_MAX_OVERRIDE_MIN,
    OVERRIDE_KEY_NAME,
    InvalidOverride,
    Override,
    OverrideMode,
    future_since,
    parse_override,
)
from .audit import AuditTrail
from .audited_write import RETRY_BUDGET_S, AuditUnavailable, attempts
from .roles import WriteAccess, WriteRefused

DEFAULT_MAX_MINUTES = 60.0
#: The pending force_calm request (breaker.ops.approvals); clearing the override withdraws it too.
PENDING_KEY_NAME = "pending_force_calm"
T = TypeVar("T")


class OverrideTooLong(ValueError):
    """An override longer than the allowed maximum was asked for; nothing was written."""


class NoActiveOverride(LookupError):
    """Extending needs an override in force; there is none (or it does not parse)."""


@dataclass(frozen=True)
class OverrideReading:
    """What is stored at the override key, read at server time ``now``."""

    override: Override | None  # None: none stored, or one that is invalid or over
    raw: Any
    invalid_reason: str | None  # why a stored value is ignored (None when absent or valid)
    left_s: float
    #: the stored ``until`` when workers stop honouring the override earlier, at ``since`` plus their maximum
    #: (``override`` then ends there); None when they honour it to its stored end
    stored_until: float | None = None


def override_key(clock: PanicClock) -> str:
    return f"{clock.key_prefix}{OVERRIDE_KEY_NAME}"


#: What a reader shows as the raw value when the override key holds a list, a hash... (GET answers WRONGTYPE).
OTHER_TYPE_RAW = b"<not a string>"


def is_wrong_type(reply: Any) -> bool:
    """A command's error reply saying the key holds another type (a reader flags that, it is no outage)."""
    return isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE")


#: Workers' own cap in seconds when a reader is not told theirs (``BREAKER_MAX_OVERRIDE_MIN``'s default).
DEFAULT_MAX_OVERRIDE_S = DEFAULT_MAX_OVERRIDE_MIN * 60


def override_reading(raw: Any, now: float, max_s: float = DEFAULT_MAX_OVERRIDE_S) -> OverrideReading:
    """Judge a stored value the way workers do: invalid or over means ignored, never ``force_calm``. ``raw`` may be
    GET's error reply: a key of another type is an unusable override too (workers log INVALID_PANIC_OVERRIDE).
    ``max_s`` is the workers' cap (SPEC section 12, ``BREAKER_MAX_OVERRIDE_MIN``): a value written by hand that
    lasts longer reads as ending at ``since + max_s`` (its stored end in ``stored_until``), and as ignored after."""
    if isinstance(raw, Exception):
        if is_wrong_type(raw):
            return OverrideReading(None, OTHER_TYPE_RAW, "the key holds another type than a string", 0.0)
        raise raw
    if raw is None:
        return OverrideReading(None, None, None, 0.0)
    try:
        override = parse_override(raw)
    except InvalidOverride as exc:
        return OverrideReading(None, raw, str(exc), 0.0)
    if not override.active(now):
        return OverrideReading(None, raw, "expired", 0.0)
    future = future_since(override, now)
    if future:
        return OverrideReading(None, raw, future, 0.0)
    stored_until = None
    if override.until - override.since > max_s:  # as HonouredOverride.adopt: honoured up to since + max_s
        stored_until, override = override.until, replace(override, until=override.since + max_s)
        if not override.active(now):
            return OverrideReading(None, raw, f"past the workers' BREAKER_MAX_OVERRIDE_MIN ({max_s / 60:g} min) "
                                              "from its since: they ignore it", 0.0)
    return OverrideReading(override, raw, None, override.left_s(now), stored_until)


def read_override(clock: PanicClock, max_s: float = DEFAULT_MAX_OVERRIDE_S) -> OverrideReading:
    """The override and the server's time in one round trip (``max_s``: the workers' cap, ``override_reading``)."""
    pipe = clock.client.pipeline(transaction=True)
    queue_time(pipe, override_key(clock))
    pipe.get(override_key(clock))
    now, raw = pipe.execute(raise_on_error=False)
    if isinstance(now, Exception):
        raise now
    return override_reading(raw, server_time(now), max_s)


def check_minutes(minutes: Any, max_minutes: float) -> float:
    """Minutes of an override (or a request for one): a finite number > 0, at most ``max_minutes``."""
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not math.isfinite(minutes) \
            or minutes <= 0:
        raise ValueError(f"minutes must be a finite number > 0, got {minutes!r}")
    if minutes > max_minutes:
        raise OverrideTooLong(f"an override lasts at most {max_minutes:g} minutes, asked for {minutes:g}")
    return float(minutes)


#: The audit stream cannot take an entry (its key holds another type); nothing was written. The same error
#: as the clock writes' (a RedisError, which the CLI reports as a failed command, exit 1).
AuditUnwritable = AuditUnavailable


def _audited(clock: PanicClock, trail: AuditTrail, change: Callable[[Any, OverrideReading, float], T],
             *also_watch: str, max_s: float = DEFAULT_MAX_OVERRIDE_S) -> T:
    """Run ``change(pipe, current, now)`` under WATCH of the override and the audit keys; it queues its write
    and its audit entry after ``pipe.multi()``. A stream that cannot take the entry stops the write before it
    is sent (MULTI does not roll back a failed command); a concurrent change retries."""
    key = override_key(clock)
    for _ in attempts():
        with clock.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key, trail.key, *also_watch)
                kind = pipe.type(trail.key)
                if (kind.decode() if isinstance(kind, bytes) else kind) not in ("stream", "none"):
                    raise AuditUnwritable(f"{trail.key} holds a {kind!r}, not a stream: nothing written")
                now = clock.server_now()
                result = change(pipe, override_reading(pipe.get(key), now, max_s), now)
                pipe.execute()
                return result
            except WatchError:
                continue
    raise RuntimeError(f"{key}: changed by someone else during {RETRY_BUDGET_S:g} s of attempts; nothing written")


def _write(clock: PanicClock, trail: AuditTrail, override: Override, now: float, action: str, pipe: Any,
           access: WriteAccess, **extra: Any) -> None:
    pipe.multi()
    pipe.set(override_key(clock), override.to_json(), px=max(1, math.ceil((override.until - now) * 1000)))
    trail.record_in(pipe, who=override.who, action=action, why=override.why, at=now, mode=override.mode.value,
                    until=override.until, since=override.since, key=override_key(clock), **access.audit(), **extra)



def set_override(
    clock: PanicClock,
    trail: AuditTrail,
    access: WriteAccess,
    *,
    mode: OverrideMode | str,
    minutes: float,
    why: str,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    break_glass: bool = False,
) -> Override:
    """Pin the fleet to ``mode`` for ``minutes`` from now (server time), replacing any override.

    ``break_glass``: ``force_calm`` set by one person where a second one would be needed (the two-person rule is
    off outside the sandbox, ``approvals.set_override_or_request``): a verified admin only, and a ``break_glass``
    audit entry beside the ``override_set`` one, in the same transaction."""
    mode = OverrideMode(mode)
    access.require("setting force_calm without a second person (break-glass)" if break_glass
                   else "setting an override", "break_glass" if break_glass else "override_set")
    length = check_minutes(minutes, max_minutes)

    def change(pipe: Any, current: OverrideReading, now: float) -> Override:
        override = Override(mode, access.who, why or "", now, now + length * 60.0)
        _write(clock, trail, override, now, "override_set", pipe, access,
               **({"break_glass": True} if break_glass else {}))
        if break_glass:
            trail.record_in(pipe, who=access.who, action="break_glass", why=override.why, at=now,
                            mode=mode.value, since=override.since, until=override.until, key=override_key(clock),
                            **access.audit())
        return override

    return _audited(clock, trail, change)


def extend_override(
    clock: PanicClock,
    trail: AuditTrail,
    access: WriteAccess,
    *,
    minutes: float,
    why: str,
    max_minutes: float = DEFAULT_MAX_MINUTES,
    two_person_rule: bool = False,
    sandbox: bool = False,
) -> Override:
    """Move the end of the override in force ``minutes`` later; it may then end at most ``max_minutes`` from
    now. Its ``since`` stays, unless ``until - since`` would then exceed ``max_minutes`` (past the cap workers
    apply from ``since``): it then moves up to ``until - max_minutes``. Raises ``NoActiveOverride`` when none is
    in force. Under the ``two_person_rule`` a ``force_calm`` is not extended (``WriteRefused``): a second
    operator approved its length, so a longer one is a new request.
    Without the rule outside the ``sandbox``, extending a ``force_calm`` is break-glass, as setting one is
    (``set_override``): a verified admin only, with a ``break_glass`` entry in the same transaction."""
    access.require("extending an override", "override_extend")
    added = check_minutes(minutes, max_minutes)

    def change(pipe: Any, current: OverrideReading, now: float) -> Override:
        if current.override is None:
            raise NoActiveOverride("no override in force to extend")
        if two_person_rule and current.override.mode is OverrideMode.FORCE_CALM:
            raise WriteRefused("extending force_calm refused under the two-person rule: a second operator approved "
                               "its length; request force_calm again for longer (BREAKER_TWO_PERSON_RULE)")
        break_glass = current.override.mode is OverrideMode.FORCE_CALM and not sandbox and access.auth != "sandbox"
        if break_glass:
            access.require("extending force_calm without a second person (break-glass)", "break_glass")
        until = current.override.until + added * 60.0
        if until - now > max_minutes * 60.0:
            raise OverrideTooLong(
                f"an override lasts at most {max_minutes:g} minutes from now; extending by {added:g} would "
                f"leave {(until - now) / 60.0:.1f}"
            )
        # Workers honour an override up to since + their maximum (SPEC section 12): an extension that would pass
        # it moves since up to until minus the maximum (never after now: until is at most the maximum from now).
        since = max(current.override.since, until - max_minutes * 60.0)
        extended = Override(current.override.mode, access.who, why or "", since, until)
        _write(clock, trail, extended, now, "override_extend", pipe, access,
               **({"break_glass": True} if break_glass else {}))
        if break_glass:
            trail.record_in(pipe, who=access.who, action="break_glass", why=extended.why, at=now,
                            mode=extended.mode.value, since=extended.since, until=extended.until,
                            key=override_key(clock), **access.audit())
        return extended

    return _audited(clock, trail, change, max_s=max_minutes * 60.0)  # extends what the workers honour


def clear_override(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, why: str) -> bool:
    """Remove the override (workers go back to their own answers within one interval); True when a value
    was stored. The audit entry names what was cleared. A pending ``force_calm`` request is withdrawn in the
    same transaction (``force_calm_withdrawn``): "clear" means no calm is coming either."""
    access.require("clearing an override", "override_clear")
    key, pending = override_key(clock), f"{clock.key_prefix}{PENDING_KEY_NAME}"

    def change(pipe: Any, current: OverrideReading, now: float) -> bool:
        cleared = current.override
        request = pipe.get(pending)
        pipe.multi()
        pipe.delete(key)
        trail.record_in(
            pipe, who=access.who, action="override_clear", why=why or "", at=now,
            mode=cleared.mode.value if cleared else None, until=cleared.until if cleared else None,
            existed=current.raw is not None, key=key, **access.audit(),
        )
        if request is not None:
            pipe.delete(pending)
            trail.record_in(pipe, who=access.who, action="force_calm_withdrawn", why=why or "", at=now,
                            request=_request_id(request), key=pending, **access.audit())
        return current.raw is not None

    return _audited(clock, trail, change, pending)


def _request_id(raw: Any) -> str | None:
    try:
        return str(json.loads(raw)["id"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
