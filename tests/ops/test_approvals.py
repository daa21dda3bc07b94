"""The two-person rule for force_calm: request, refused self-approval, approval by a second person, expiry,
binding to the requester and the content (issue 19 findings 1 and 2)."""

import json
import time

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal, RoleRefused, write_access
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
from breaker.ops.overrides import OverrideTooLong, clear_override, override_key, read_override
from breaker.override import OverrideMode, parse_override

ALICE = Principal.of("alice", "approver")
BOB = Principal.of("bob", "approver", "oidc")
ALICE_SELF_DECLARED = Principal.of("Alice", "operator", "shared")
CAROL_SELF_DECLARED = Principal.of("carol", "operator", "shared")
BOB_SELF_DECLARED = Principal.of("bob", "operator", "shared")
ADMIN = Principal.of("root", "admin")


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
        approve_force_calm(clock, trail, ALICE, request_id=request.id, digest=request.digest)
    for alias in ("ALICE", " alice ", "ａｌｉｃｅ"):  # canonical names: NFKC, case-folded, trimmed
        with pytest.raises(ApprovalRefused, match="cannot be approved by its requester"):
            approve_force_calm(clock, trail, Principal.of(alias, "admin", "token:abc"), request_id=request.id,
                               digest=request.digest)
    assert read_override(clock).override is None and pending_request(clock) is not None


def test_finding_1_one_person_cannot_approve_their_own_request_through_a_self_declared_alias(real_redis):
    """Issue 19 finding 1: a self-declared name can neither request (so no alias request for verified alice to
    approve) nor approve (so no alias approval of verified alice's request); nothing is written or audited."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    with pytest.raises(RoleRefused, match="self-declared"):
        request_force_calm(clock, trail, Principal.of("zed", "operator", "shared"), minutes=5, why="alias")
    assert real_redis.keys("*") == []
    request = request_force_calm(clock, trail, ALICE, minutes=5, why="signal stuck")
    for alias in (CAROL_SELF_DECLARED, ALICE_SELF_DECLARED, Principal.of("zed", "admin", "shared")):
        with pytest.raises(RoleRefused, match="self-declared"):
            approve_force_calm(clock, trail, alias, request_id=request.id, digest=request.digest)
    assert read_override(clock).override is None and pending_request(clock).id == request.id
    assert [e.action for e in trail.entries()] == ["force_calm_requested"]


def test_finding_2_a_self_declared_name_cannot_replace_a_verified_request(real_redis):
    """Issue 19 finding 2: self-declared "bob" cannot replace verified bob's pending request (nor can anyone
    else); the request keeps its id, content and requester."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, BOB, minutes=5, why="signal stuck")
    with pytest.raises(RoleRefused, match="self-declared"):
        request_force_calm(clock, trail, BOB_SELF_DECLARED, minutes=60, why="replaced")
    with pytest.raises(ApprovalRefused, match="already has a force_calm request"):
        request_force_calm(clock, trail, ALICE, minutes=60, why="replaced")
    pending = pending_request(clock)
    assert (pending.id, pending.minutes, pending.why, pending.requester_auth) == (request.id, 5, "signal stuck",
                                                                                 "oidc")


def test_a_changed_request_voids_the_approval(real_redis):
    """The approval names the id and the digest the approver was shown: a request edited in Redis (longer, or
    another reason), or restated by its requester, is refused; approving what is stored now works."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=5, why="signal stuck")
    raw = json.loads(real_redis.get(pending_key(clock)))
    real_redis.set(pending_key(clock), json.dumps({**raw, "minutes": 60}), keepttl=True)
    with pytest.raises(ApprovalRefused, match="changed"):
        approve_force_calm(clock, trail, BOB, request_id=request.id, digest=request.digest)
    restated = request_force_calm(clock, trail, ALICE, minutes=5, why="signal stuck")
    with pytest.raises(NoPendingRequest):
        approve_force_calm(clock, trail, BOB, request_id=request.id, digest=request.digest)
    assert read_override(clock).override is None
    approve_force_calm(clock, trail, BOB, request_id=restated.id, digest=restated.digest)
    assert read_override(clock).override.who == "alice, approved by bob"


def test_approving_needs_the_approver_role(real_redis):
    """A verified operator (not approver) may request but not approve."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, Principal.of("dave", "operator"), minutes=5, why="stuck")
    with pytest.raises(RoleRefused, match="approver"):
        approve_force_calm(clock, trail, Principal.of("erin", "operator"), request_id=request.id,
                           digest=request.digest)
    approve_force_calm(clock, trail, ADMIN, request_id=request.id, digest=request.digest)


def test_second_verified_operator_approves_with_both_names_in_one_transaction(real_redis):
    """bob approves alice's request: force_calm set, request gone, one audit entry naming both."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck in panic")
    override = approve_force_calm(clock, trail, BOB, request_id=request.id, digest=request.digest)
    stored = parse_override(real_redis.get(override_key(clock)))
    assert stored.mode is OverrideMode.FORCE_CALM and stored.who == "alice, approved by bob"
    assert stored == override and abs((stored.until - stored.since) - 20 * 60) < 1e-6
    assert 1195 < real_redis.pttl(override_key(clock)) / 1000 <= 1200
    assert pending_request(clock) is None
    entry, approved = trail.entries()[-2:]
    assert (entry.action, entry.detail["requested_by"], entry.detail["approved_by"]) == ("override_set", "alice",
                                                                                        "bob")
    assert (approved.action, approved.who, approved.auth, approved.role) == ("force_calm_approved", "bob", "oidc",
                                                                              "approver")
    assert (approved.detail["requested_by_auth"], approved.detail["approved_by_auth"]) == ("password", "oidc")
    with pytest.raises(NoPendingRequest):
        approve_force_calm(clock, trail, BOB, request_id=request.id, digest=request.digest)


def test_expired_request_cannot_be_approved(real_redis):
    """Once the request's key expires (10 min; here shortened on the server), approving finds nothing."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck")
    real_redis.pexpire(pending_key(clock), 1)
    time.sleep(0.05)  # the server's own expiry, not simulated minutes
    assert pending_request(clock) is None
    with pytest.raises(NoPendingRequest):
        approve_force_calm(clock, trail, BOB, request_id=request.id, digest=request.digest)
    assert read_override(clock).override is None


def test_another_operators_pending_request_is_not_replaced(real_redis):
    """carol cannot overwrite alice's waiting request; alice may restate hers."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request_force_calm(clock, trail, ALICE, minutes=20, why="signal stuck")
    with pytest.raises(ApprovalRefused, match="already has a force_calm request"):
        request_force_calm(clock, trail, BOB, minutes=5, why="mine instead")
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
    with pytest.raises(RoleRefused, match="admin"):
        set_override_or_request(clock, trail, ALICE, mode="force_calm", minutes=5, why="alone", two_person_rule=False)
    calm = set_override_or_request(clock, trail, Principal.sandbox(), mode="force_calm", minutes=5, why="sandbox",
                                   two_person_rule=False)
    assert read_override(clock).override == calm
    assert [e.action for e in trail.entries()][-1] == "override_set"


def test_break_glass_is_an_admins_alone_bounded_and_loudly_audited(real_redis):
    """Without the rule outside the sandbox, force_calm by one person needs a verified admin, is bounded by the
    maximum length, and leaves a break_glass entry beside override_set in the same transaction."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    with pytest.raises(OverrideTooLong):
        set_override_or_request(clock, trail, ADMIN, mode="force_calm", minutes=61, why="x", two_person_rule=False)
    with pytest.raises(RoleRefused, match="self-declared"):
        set_override_or_request(clock, trail, Principal.of("root", "admin", "shared"), mode="force_calm", minutes=5,
                                why="x", two_person_rule=False)
    set_override_or_request(clock, trail, ADMIN, mode="force_calm", minutes=5, why="pager storm, nobody else up",
                            two_person_rule=False)
    entries = trail.entries()
    assert [(e.action, e.who, e.auth, e.role) for e in entries] == [("override_set", "root", "password", "admin"),
                                                                      ("break_glass", "root", "password", "admin")]


def test_clearing_the_override_withdraws_a_pending_request(real_redis):
    """Issue 20 item 5: override clear also withdraws a waiting force_calm request, audited force_calm_withdrawn."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    request = request_force_calm(clock, trail, ALICE, minutes=5, why="stuck")
    assert clear_override(clock, trail, BOB_SELF_DECLARED, why="signal recovered") is False
    assert pending_request(clock) is None
    withdrawn = trail.entries()[-1]
    assert (withdrawn.action, withdrawn.who, withdrawn.detail["request"]) == ("force_calm_withdrawn",
                                                                              "bob (self-declared)", request.id)
    with pytest.raises(NoPendingRequest):
        approve_force_calm(clock, trail, BOB, request_id=request.id, digest=request.digest)


def test_an_admin_cannot_be_their_own_second_person_through_a_token_they_issued(real_redis):
    """An admin could mint a token under another name and approve their own request with it (or request with it
    and approve as themselves): refused both ways; a token someone else issued counts as another person."""
    from breaker.ops.tokens import TokenStore

    clock, trail, store = PanicClock(real_redis), AuditTrail(real_redis), TokenStore(real_redis)
    root = Principal.of("root", "admin")
    puppet = store.verify(store.create(trail, root, name="sock", role="approver", expires_s=None, why="x")[0])
    request = request_force_calm(clock, trail, root, minutes=5, why="stuck")
    with pytest.raises(ApprovalRefused, match="issued the other's API token"):
        approve_force_calm(clock, trail, puppet, request_id=request.id, digest=request.digest)
    clear_override(clock, trail, root, why="withdraw")
    request = request_force_calm(clock, trail, puppet, minutes=5, why="stuck")
    with pytest.raises(ApprovalRefused, match="issued the other's API token"):
        approve_force_calm(clock, trail, root, request_id=request.id, digest=request.digest)
    other = store.verify(store.create(trail, Principal.of("admin2", "admin"), name="eve", role="approver",
                                      expires_s=None, why="x")[0])
    approve_force_calm(clock, trail, other, request_id=request.id, digest=request.digest)
    assert read_override(clock).override.who == "sock, approved by eve"


def test_an_admin_cannot_be_both_people_through_two_tokens_they_issued(real_redis):
    """Review (identity): root mints two tokens under made-up names, requests with one and approves with the other:
    neither issued the other, yet one person holds both. Tokens with a common issuer count as one person, also
    down a chain (root mints an admin token, which mints the approver's): only the loud break-glass is one person."""
    from breaker.ops.tokens import TokenStore

    clock, trail, store = PanicClock(real_redis), AuditTrail(real_redis), TokenStore(real_redis)
    root = Principal.of("root", "admin")

    def mint(by, name, role):
        return store.verify(store.create(trail, by, name=name, role=role, expires_s=None, why="x")[0])

    asker, approver = mint(root, "sock one", "operator"), mint(root, "sock two", "approver")
    request = request_force_calm(clock, trail, asker, minutes=5, why="stuck")
    with pytest.raises(ApprovalRefused, match="same person"):
        approve_force_calm(clock, trail, approver, request_id=request.id, digest=request.digest)
    clear_override(clock, trail, root, why="withdraw")
    deputy = mint(root, "deputy", "admin")
    grandchild = mint(deputy, "sock three", "approver")
    request = request_force_calm(clock, trail, root, minutes=5, why="stuck")
    with pytest.raises(ApprovalRefused, match="same person"):
        approve_force_calm(clock, trail, grandchild, request_id=request.id, digest=request.digest)
    assert read_override(clock).override is None
    assert "force_calm_approved" not in [e.action for e in trail.entries()]


def test_extending_a_break_glass_force_calm_is_break_glass_too(real_redis):
    """Review (identity): without the rule on a real target only a verified admin may set force_calm (loudly), but
    any operator, even a self-declared name, could extend it, quietly: more calm without the admin's say. An
    extension of force_calm there is break-glass as well: an admin alone, with its break_glass entry."""
    from breaker.ops.overrides import extend_override

    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    set_override_or_request(clock, trail, ADMIN, mode="force_calm", minutes=5, why="pager storm", two_person_rule=False)
    until = read_override(clock).override.until
    for who in (CAROL_SELF_DECLARED, Principal.of("olga", "operator"), ALICE):
        with pytest.raises(RoleRefused, match="break-glass"):
            extend_override(clock, trail, who, minutes=10, why="longer", two_person_rule=False)
    assert read_override(clock).override.until == until and len(trail.entries()) == 2
    extend_override(clock, trail, ADMIN, minutes=10, why="still storming", two_person_rule=False)
    assert [e.action for e in trail.entries()][2:] == ["override_extend", "break_glass"]
    extend_override(clock, trail, CAROL_SELF_DECLARED, minutes=1, why="x", two_person_rule=False, sandbox=True)
