"""The two-person rule for force_calm: request, refused self-approval, approval by a second operator, expiry."""

import time

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, Operator, write_access
from breaker.ops.approvals import (
    REQUEST_TTL_S,
    ApprovalRefused,
    NoPendingRequest,
    approve_force_calm,
    pending_key,
    pending_request,
    request_force_calm,
    set_override_or_request,
    two_person_rule_applies,
)
from breaker.ops.overrides import OverrideTooLong, override_key, read_override
from breaker.override import OverrideMode, parse_override

ALICE = write_access(embedded=False, operator=Operator("alice", "password"))
BOB = write_access(embedded=False, operator=Operator("bob", "oidc"))
ALICE_SELF_DECLARED = write_access(embedded=False, operator=Operator("Alice", "shared"))
CAROL_SELF_DECLARED = write_access(embedded=False, operator=Operator("carol", "shared"))


def test_rule_defaults_on_for_a_real_target_and_off_in_the_sandbox():
    """BREAKER_TWO_PERSON_RULE unset: on against REDIS_URL, off in the sandbox; set, it wins."""
    assert two_person_rule_applies(None, embedded=False) and not two_person_rule_applies(None, embedded=True)
    assert two_person_rule_applies(True, embedded=True) and not two_person_rule_applies(False, embedded=False)


def test_request_is_pending_audited_and_changes_nothing_else(real_redis):
    """A request stores itself for 10 min with an audit entry; no override is set yet."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck in panic")
    pending = pending_request(clock)
    assert (pending.id, pending.requester, pending.minutes, pending.why) == (request.id, "alice", 20,
                                                                             "signal stuck in panic")
    assert REQUEST_TTL_S - 5 < pending.left_s <= REQUEST_TTL_S
    assert read_override(clock).override is None
    [entry] = trail.entries()
    assert (entry.who, entry.action, entry.detail["request"]) == ("alice", "force_calm_requested", request.id)


def test_requester_cannot_approve_their_own_request(real_redis):
    """alice's request is refused to alice, also when she logs in again under a self-declared name."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck")
    with pytest.raises(ApprovalRefused, match="cannot be approved by its requester"):
        approve_force_calm(clock, trail, ALICE, request_id=request.id)
    assert read_override(clock).override is None and pending_request(clock) is not None


def test_unverified_operator_cannot_approve(real_redis):
    """A self-declared name (the shared password) cannot be the second person."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE_SELF_DECLARED, minutes=5, why="signal stuck")
    with pytest.raises(ApprovalRefused, match="verified operator"):
        approve_force_calm(clock, trail, CAROL_SELF_DECLARED, request_id=request.id)
    with pytest.raises(ApprovalRefused, match="cannot be approved by its requester"):
        approve_force_calm(clock, trail, ALICE, request_id=request.id)  # verified alice is still alice


def test_second_verified_operator_approves_with_both_names_in_one_transaction(real_redis):
    """bob approves alice's request: force_calm set, request gone, one audit entry naming both."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck in panic")
    override = approve_force_calm(clock, trail, BOB, request_id=request.id)
    stored = parse_override(real_redis.get(override_key(clock)))
    assert stored.mode is OverrideMode.FORCE_CALM and stored.who == "alice, approved by bob"
    assert stored == override and abs((stored.until - stored.since) - 20 * 60) < 1e-6
    assert 1195 < real_redis.pttl(override_key(clock)) / 1000 <= 1200
    assert pending_request(clock) is None
    entry = trail.entries()[-1]
    assert (entry.action, entry.detail["requested_by"], entry.detail["approved_by"]) == ("override_set", "alice",
                                                                                        "bob")
    with pytest.raises(NoPendingRequest):
        approve_force_calm(clock, trail, BOB, request_id=request.id)


def test_expired_request_cannot_be_approved(real_redis):
    """Once the request's key expires (10 min; here shortened on the server), approving finds nothing."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck")
    real_redis.pexpire(pending_key(clock), 1)
    time.sleep(0.05)  # the server's own expiry, not simulated minutes
    assert pending_request(clock) is None
    with pytest.raises(NoPendingRequest):
        approve_force_calm(clock, trail, BOB, request_id=request.id)
    assert read_override(clock).override is None


def test_another_operators_pending_request_is_not_replaced(real_redis):
    """carol cannot overwrite alice's waiting request; alice may restate hers."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck")
    with pytest.raises(ApprovalRefused, match="already has a force_calm request"):
        request_force_calm(clock, trail, CAROL_SELF_DECLARED, minutes=5, why="mine instead")
    again = request_force_calm(clock, trail, ALICE, minutes=30, why="longer")
    assert pending_request(clock).id == again.id


def test_requests_are_checked_like_overrides(real_redis):
    """Too long, no reason, or read-only: refused before anything is written."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    with pytest.raises(OverrideTooLong):
        request_force_calm(clock, trail, ALICE, minutes=61, why="x")
    with pytest.raises(ValueError, match="reason"):
        request_force_calm(clock, trail, ALICE, minutes=5, why=" ")
    with pytest.raises(PermissionError):
        request_force_calm(clock, trail, write_access(embedded=False, operator=None), minutes=5, why="x")
    assert real_redis.keys("*") == []


def test_set_override_or_request_routes_force_calm_under_the_rule(real_redis):
    """Under the rule force_calm becomes a request and force_full is set at once; without it both are set."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    pending = set_override_or_request(clock, trail, ALICE, mode="force_calm", minutes=5, why="stuck",
                                      two_person_rule=True)
    assert pending.requester == "alice" and read_override(clock).override is None
    full = set_override_or_request(clock, trail, ALICE, mode="force_full", minutes=5, why="incident",
                                   two_person_rule=True)
    assert full.mode is OverrideMode.FORCE_FULL
    calm = set_override_or_request(clock, trail, ALICE, mode="force_calm", minutes=5, why="sandbox",
                                   two_person_rule=False)
    assert read_override(clock).override == calm
