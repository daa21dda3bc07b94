"""The two-person rule: ``force_calm`` against a real target takes effect only when a second operator approves.

``force_calm`` makes every worker answer calm in a panic: the one override that can starve the backend of
fresh data. So one operator asks (``request_force_calm``), and a second, verified operator who is not the
requester approves (``approve_force_calm``). The pending request is one JSON value at
``{prefix}pending_force_calm`` with a 10-minute key expiry (an unanswered request lapses by itself); the
approval writes the override, deletes the request and audits both names in one MULTI/EXEC. On by default
for a real target, off in the sandbox (``BREAKER_TWO_PERSON_RULE``).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from ..clock import PanicClock
from ..override import Override, OverrideMode
from .access import SELF_DECLARED, WriteAccess, WriteRefused
from .audit import AuditTrail
from .audited_write import Planned, audited_write
from .overrides import DEFAULT_MAX_MINUTES, check_minutes, override_key, set_override

PENDING_KEY_NAME = "pending_force_calm"
REQUEST_TTL_S = 600


class ApprovalRefused(WriteRefused):
    """An approval the rule does not allow (own request, unverified approver); nothing was written."""


class NoPendingRequest(LookupError):
    """There is no request to approve: none was made, it expired, or another operator answered it."""


@dataclass(frozen=True)
class PendingRequest:
    """A ``force_calm`` waiting for a second operator; ``left_s`` until it lapses."""

    id: str
    requester: str
    minutes: float
    why: str
    at: float
    left_s: float


def two_person_rule_applies(setting: bool | None, *, embedded: bool) -> bool:
    """``BREAKER_TWO_PERSON_RULE`` when set; otherwise on for a real target and off in the sandbox."""
    return (not embedded) if setting is None else setting


def pending_key(clock: PanicClock) -> str:
    return f"{clock.key_prefix}{PENDING_KEY_NAME}"


def same_person(a: str, b: str) -> bool:
    """``bob (self-declared)`` and a verified ``Bob`` are one person as far as the rule is concerned."""
    def base(name: str) -> str:
        return name.removesuffix(SELF_DECLARED).strip().casefold()

    return base(a) == base(b)


def _parse(raw: Any, left_ms: Any) -> PendingRequest | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return PendingRequest(str(data["id"]), str(data["requester"]), float(data["minutes"]), str(data["why"]),
                              float(data["at"]), max(0.0, (left_ms or 0) / 1000.0))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None  # not ours to honour: an approval needs a request that parses


def pending_request(clock: PanicClock) -> PendingRequest | None:
    """The request waiting for approval, if any (one round trip)."""
    pipe = clock.client.pipeline(transaction=True)
    pipe.get(pending_key(clock))
    pipe.pttl(pending_key(clock))
    raw, left_ms = pipe.execute()
    return _parse(raw, left_ms)


def request_force_calm(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, minutes: float, why: str,
                       max_minutes: float = DEFAULT_MAX_MINUTES) -> PendingRequest:
    """Ask for ``force_calm`` for ``minutes``: stored for 10 minutes and audited, nothing else changes.

    A request pending from another operator is not replaced (they may be about to get it approved)."""
    access.require("requesting force_calm")
    length = check_minutes(minutes, max_minutes)
    reason = (why or "").strip()
    if not reason:
        raise ValueError("a force_calm request needs a reason: the approving operator reads it")
    key = pending_key(clock)

    def plan(pipe: Any) -> Planned[PendingRequest]:
        current = _parse(pipe.get(key), pipe.pttl(key))
        if current is not None and not same_person(current.requester, access.who):
            raise ApprovalRefused(f"{current.requester} already has a force_calm request waiting for approval")
        now = clock.server_now()
        request = PendingRequest(uuid.uuid4().hex[:12], access.who, length, reason, now, float(REQUEST_TTL_S))
        value = json.dumps({"id": request.id, "requester": request.requester, "minutes": length, "why": reason,
                            "at": now})
        return Planned(dict(who=access.who, action="force_calm_requested", why=reason, at=now, minutes=length,
                            request=request.id, expires_at=now + REQUEST_TTL_S, key=key),
                       lambda tx: tx.set(key, value, ex=REQUEST_TTL_S), request)

    return audited_write(clock.client, trail, watch=(key,), plan=plan)


def approve_force_calm(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, request_id: str,
                       max_minutes: float = DEFAULT_MAX_MINUTES) -> Override:
    """A second, verified operator approves request ``request_id``: the override, the request's removal and
    one audit entry naming both operators land together. Refused for the requester themselves."""
    access.require("approving force_calm")
    if not access.verified:
        raise ApprovalRefused("approving force_calm refused: it needs a verified operator (own password or SSO), "
                              f"not {access.who}")
    key, target = pending_key(clock), override_key(clock)

    def plan(pipe: Any) -> Planned[Override]:
        request = _parse(pipe.get(key), pipe.pttl(key))
        if request is None or request.id != request_id:
            raise NoPendingRequest("that force_calm request is no longer pending (expired or answered)")
        if same_person(request.requester, access.who):
            raise ApprovalRefused("approving force_calm refused: a request cannot be approved by its requester")
        length = check_minutes(request.minutes, max_minutes)
        now = clock.server_now()
        override = Override(OverrideMode.FORCE_CALM, f"{request.requester}, approved by {access.who}", request.why,
                            now, now + length * 60.0)

        def queue(tx: Any) -> None:
            tx.set(target, override.to_json(), px=max(1, math.ceil(length * 60_000)))
            tx.delete(key)

        return Planned(dict(who=override.who, action="override_set", why=request.why, at=now,
                            mode=override.mode.value, since=override.since, until=override.until, key=target,
                            requested_by=request.requester, approved_by=access.who, request=request.id), queue,
                       override)

    return audited_write(clock.client, trail, watch=(key, target), plan=plan)


def set_override_or_request(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, mode: OverrideMode | str,
                            minutes: float, why: str, two_person_rule: bool,
                            max_minutes: float = DEFAULT_MAX_MINUTES) -> Override | PendingRequest:
    """What an Overrides page or CLI calls: ``force_calm`` under the rule becomes a request; the rest is set."""
    if OverrideMode(mode) is OverrideMode.FORCE_CALM and two_person_rule:
        return request_force_calm(clock, trail, access, minutes=minutes, why=why, max_minutes=max_minutes)
    return set_override(clock, trail, access, mode=mode, minutes=minutes, why=why, max_minutes=max_minutes)
