"""The two-person rule: ``force_calm`` against a real target takes effect only when a second person approves it.

``force_calm`` makes every worker answer calm in a panic: the one override that can starve the backend of
fresh data. So one verified operator asks (``request_force_calm``), and a second verified identity with the
approver role approves (``approve_force_calm``). The pending request is one JSON value at
``{prefix}pending_force_calm`` with a 10-minute key expiry (an unanswered request lapses by itself). It binds
the requester (canonical name and credential kind) and its content (mode, minutes, reason); its ``digest``
hashes all of that with its id, and an approval names both the id and the digest it was shown, so any change
to the request voids the approval. The approval writes the override, deletes the request and audits both
identities in one MULTI/EXEC. On by default for a real target, off in the sandbox (``BREAKER_TWO_PERSON_RULE``).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from ..clock import PanicClock
from ..override import Override, OverrideMode
from .audit import AuditTrail
from .audited_write import Planned, audited_write
from .overrides import DEFAULT_MAX_MINUTES, PENDING_KEY_NAME, check_minutes, override_key, set_override
from .roles import WriteAccess, WriteRefused, canonical_name
from .tokens import TOKENS_KEY_NAME, token_creator

REQUEST_TTL_S = 600


class ApprovalRefused(WriteRefused):
    """An approval the rule does not allow (own request, changed request); nothing was written."""


class NoPendingRequest(LookupError):
    """There is no request to approve: none was made, it expired, or another operator answered it."""


@dataclass(frozen=True)
class PendingRequest:
    """A ``force_calm`` waiting for a second person; ``left_s`` until it lapses, ``digest`` names its content."""

    id: str
    requester: str  # as shown (the verified name)
    minutes: float
    why: str
    at: float
    left_s: float
    requester_canonical: str = ""
    requester_auth: str = ""
    mode: str = OverrideMode.FORCE_CALM.value

    @property
    def digest(self) -> str:
        return request_digest(self.id, self.mode, self.minutes, self.why, self.requester_canonical,
                              self.requester_auth)


def request_digest(request_id: str, mode: str, minutes: float, why: str, requester: str, auth: str) -> str:
    """16 hex digits of SHA-256 over what a request says and who made it: an approval names it."""
    content = json.dumps([request_id, mode, float(minutes), why, requester, auth], ensure_ascii=True)
    return hashlib.sha256(content.encode("ascii")).hexdigest()[:16]


def two_person_rule_applies(setting: bool | None, *, embedded: bool) -> bool:
    """``BREAKER_TWO_PERSON_RULE`` when set; otherwise on for a real target and off in the sandbox."""
    return (not embedded) if setting is None else setting


def pending_key(clock: PanicClock) -> str:
    return f"{clock.key_prefix}{PENDING_KEY_NAME}"


def same_person(a: str, b: str) -> bool:
    """One person as far as the rule is concerned: canonical names (NFKC, case-folded, trimmed) are equal."""
    return canonical_name(a) == canonical_name(b)


def _parse(raw: Any, left_ms: Any) -> PendingRequest | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return PendingRequest(str(data["id"]), str(data["requester"]), float(data["minutes"]), str(data["why"]),
                              float(data["at"]), max(0.0, (left_ms or 0) / 1000.0),
                              str(data["requester_canonical"]), str(data["requester_auth"]), str(data["mode"]))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None  # not ours to honour: an approval needs a request that parses, with its binding


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

    Needs a verified identity (a self-declared name cannot ask). A request pending from another person is
    not replaced (they may be about to get it approved); the requester's own may be replaced (a new id)."""
    access.require("requesting force_calm", "force_calm_request")
    length = check_minutes(minutes, max_minutes)
    reason = (why or "").strip()
    if not reason:
        raise ValueError("a force_calm request needs a reason: the approving operator reads it")
    key = pending_key(clock)

    def plan(pipe: Any) -> Planned[PendingRequest]:
        current = _parse(pipe.get(key), pipe.pttl(key))  # a value that does not parse is no request: replaced
        if current is not None and current.requester_canonical != access.canonical:
            raise ApprovalRefused(f"requesting force_calm refused: {current.requester} already has a force_calm "
                                  "request waiting for approval")
        now = clock.server_now()
        request = PendingRequest(uuid.uuid4().hex[:12], access.who, length, reason, now, float(REQUEST_TTL_S),
                                 access.canonical, access.auth)
        value = json.dumps({"id": request.id, "requester": request.requester, "requester_canonical": access.canonical,
                            "requester_auth": access.auth, "mode": request.mode, "minutes": length, "why": reason,
                            "at": now})
        return Planned(dict(who=access.who, action="force_calm_requested", why=reason, at=now, minutes=length,
                            request=request.id, digest=request.digest, expires_at=now + REQUEST_TTL_S, key=key,
                            **access.audit()),
                       lambda tx: tx.set(key, value, ex=REQUEST_TTL_S), request)

    return audited_write(clock.client, trail, watch=(key,), plan=plan)


def approve_force_calm(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, request_id: str, digest: str,
                       max_minutes: float = DEFAULT_MAX_MINUTES) -> Override:
    """A second verified identity with the approver role approves request ``request_id`` whose content has
    ``digest`` (what they were shown): the override, the request's removal and two audit entries
    (``override_set`` and ``force_calm_approved``) naming both people and their credential kinds land together.
    Refused for the requester, for a pair in which one issued the other's token, and for a changed request."""
    access.require("approving force_calm", "force_calm_approve")
    key, target, tokens = pending_key(clock), override_key(clock), f"{clock.key_prefix}{TOKENS_KEY_NAME}"

    def plan(pipe: Any) -> Planned[Override]:
        request = _parse(pipe.get(key), pipe.pttl(key))
        if request is None or request.id != request_id:
            raise NoPendingRequest("that force_calm request is no longer pending (expired, answered or withdrawn)")
        if request.digest != (digest or "").strip():
            raise ApprovalRefused("approving force_calm refused: the request changed since it was shown "
                                  f"(digest {request.digest}, approved {digest!r}); read it again")
        if request.requester_canonical == access.canonical:
            raise ApprovalRefused("approving force_calm refused: a request cannot be approved by its requester")
        issued = {auth: token_creator(pipe.hget(tokens, auth.removeprefix("token:")))
                  for auth in (request.requester_auth, access.auth) if auth.startswith("token:")}
        if issued.get(access.auth) == request.requester_canonical or \
                issued.get(request.requester_auth) == access.canonical:
            raise ApprovalRefused("approving force_calm refused: one of you issued the other's API token, so the "
                                  "two may be one person")
        length = check_minutes(request.minutes, max_minutes)
        now = clock.server_now()
        override = Override(OverrideMode.FORCE_CALM, f"{request.requester}, approved by {access.who}", request.why,
                            now, now + length * 60.0)

        both = dict(requested_by=request.requester, requested_by_auth=request.requester_auth,
                    approved_by=access.who, approved_by_auth=access.auth, request=request.id, digest=request.digest)

        def queue(tx: Any) -> None:
            trail.record_in(tx, who=access.who, action="force_calm_approved", why=request.why, at=now,
                            minutes=length, key=key, **both, **access.audit())
            tx.set(target, override.to_json(), px=max(1, math.ceil(length * 60_000)))
            tx.delete(key)

        return Planned(dict(who=override.who, action="override_set", why=request.why, at=now,
                            mode=override.mode.value, since=override.since, until=override.until, key=target,
                            **both, **access.audit()), queue, override)

    return audited_write(clock.client, trail, watch=(key, target, tokens), plan=plan)


def set_override_or_request(clock: PanicClock, trail: AuditTrail, access: WriteAccess, *, mode: OverrideMode | str,
                            minutes: float, why: str, two_person_rule: bool, max_minutes: float = DEFAULT_MAX_MINUTES,
                            sandbox: bool = False) -> Override | PendingRequest:
    """What an Overrides page or CLI calls: ``force_calm`` under the rule becomes a request; the rest is set
    (``force_calm`` without the rule outside the sandbox is break-glass, see ``set_override``). ``sandbox``: the
    console's embedded server, which no worker reads: no break-glass there, whoever is logged in."""
    calm = OverrideMode(mode) is OverrideMode.FORCE_CALM
    if calm and two_person_rule:
        return request_force_calm(clock, trail, access, minutes=minutes, why=why, max_minutes=max_minutes)
    return set_override(clock, trail, access, mode=mode, minutes=minutes, why=why, max_minutes=max_minutes,
                        break_glass=calm and not sandbox and access.auth != "sandbox")
