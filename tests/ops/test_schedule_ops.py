"""Planning override windows against a real server: each rule a refusal, each write atomic with its audit entry,
the two-person rule for scheduled force_calm, cancel mid-window, and what the worker's fragment then does."""

from __future__ import annotations

import json

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, OverrideTooLong, WriteRefused
from breaker.ops.approvals import ApprovalRefused
from breaker.ops.audited_write import AuditUnavailable
from breaker.ops.roles import Principal
from breaker.ops.schedule import (
    MAX_AHEAD_DAYS,
    MAX_PLANNED,
    PRUNE_AFTER_S,
    NoSuchWindow,
    ScheduleRefused,
    approve_window,
    cancel_window,
    read_schedule,
    schedule_key,
    schedule_override,
)
from breaker.override import parse_override
from breaker.schedule import APPLIED, NONE, SKIPPED, Window, ms, run_step

ALICE = Principal.of("alice", "operator")
BOB = Principal.of("bob", "approver")
SKEY, OKEY = "brain:override_schedule", "brain:panic_override"


@pytest.fixture
def tools(real_redis):
    return PanicClock(real_redis), AuditTrail(real_redis)


def plan(tools, mode="force_full", *, who=ALICE, minutes=5.0, why="cup final", **when):
    clock, trail = tools
    when = when or {"after_s": 60}
    return schedule_override(clock, trail, who, mode=mode, minutes=minutes, why=why, **when)


def members(client) -> list[dict]:
    return [json.loads(raw) for raw in client.zrange(SKEY, 0, -1)]


def actions(trail) -> list[str]:
    return [e.action for e in trail.entries()]


def step(client, now=None):
    return run_step(client, key_prefix="brain:", max_s=3600, now=now)[:2]


def test_schedule_stores_one_window_scored_by_since_and_audits_it(real_redis, tools):
    clock, trail = tools
    now = clock.server_now()
    window = plan(tools, after_s=120, minutes=15)
    [stored] = members(real_redis)
    assert stored == {"v": 1, "id": window.id, "mode": "force_full", "who": "alice", "why": "cup final",
                      "since": window.since, "until": window.until, "at": window.at, "requested_by": None,
                      "approved": True, "approved_by": None, "state": "planned"}
    assert real_redis.zscore(SKEY, real_redis.zrange(SKEY, 0, 0)[0]) == window.since
    assert window.since == pytest.approx(now + 120, abs=2) and window.until - window.since == pytest.approx(900)
    assert window.since == ms(window.since)  # milliseconds: what the fragment's cjson re-encodes exactly
    [entry] = trail.entries()
    assert (entry.action, entry.who, entry.why) == ("override_schedule", "alice", "cup final")
    assert entry.detail["window"] == window.id and entry.detail["until"] == window.until
    assert schedule_key(clock) == SKEY


def test_an_absolute_start_in_server_time(real_redis, tools):
    clock, _ = tools
    start = clock.server_now() + 3600
    window = plan(tools, start=start)
    assert window.since == ms(start)


@pytest.mark.parametrize("start, length", [(30, 5), (90, 5), (0, 2), (59, 10), (61, 1)])
def test_an_overlapping_window_is_refused_and_nothing_is_written(real_redis, tools, start, length):
    """Against a window from +60 s to +6 min: any overlap is refused (ScheduleRefused, CLI exit 3)."""
    clock, trail = tools
    t0 = clock.server_now()
    first = plan(tools, start=t0 + 60)
    with pytest.raises(ScheduleRefused, match="overlap"):
        plan(tools, start=first.since + start - 60, minutes=length)
    assert len(members(real_redis)) == 1 and actions(trail) == ["override_schedule"]


def test_back_to_back_windows_are_allowed(real_redis, tools):
    clock, _ = tools
    first = plan(tools, start=clock.server_now() + 60)
    second = plan(tools, start=first.until, minutes=5)
    assert second.since == first.until and len(members(real_redis)) == 2


def test_a_too_long_window_is_refused(real_redis, tools):
    clock, trail = tools
    with pytest.raises(OverrideTooLong):
        plan(tools, minutes=61)
    with pytest.raises(OverrideTooLong):
        schedule_override(clock, trail, ALICE, mode="force_full", minutes=20, why="x", after_s=60, max_minutes=15)
    assert members(real_redis) == [] and trail.entries() == []


def test_too_many_windows_are_refused(real_redis, tools):
    clock, _ = tools
    t0 = clock.server_now()
    for i in range(MAX_PLANNED):
        plan(tools, start=t0 + 60 + i * 120, minutes=1)
    with pytest.raises(ScheduleRefused, match=f"at most {MAX_PLANNED}"):
        plan(tools, start=t0 + 60 + MAX_PLANNED * 120, minutes=1)
    assert len(members(real_redis)) == MAX_PLANNED


def test_a_start_in_the_past_is_refused_and_a_moment_ago_means_now(real_redis, tools):
    clock, _ = tools
    now = clock.server_now()
    with pytest.raises(ScheduleRefused, match="past"):
        plan(tools, start=now - 60)
    window = plan(tools, start=now - 1)
    assert window.since >= now - 0.001  # milliseconds


def test_a_start_too_far_ahead_is_refused(real_redis, tools):
    with pytest.raises(ScheduleRefused, match="days ahead"):
        plan(tools, after_s=MAX_AHEAD_DAYS * 86400 + 3600)


@pytest.mark.parametrize("why", ["", "   ", "x" * 501])
def test_a_reason_is_required_and_bounded(real_redis, tools, why):
    with pytest.raises(ValueError):
        plan(tools, why=why)
    assert members(real_redis) == []


def test_bad_start_arguments_are_refused(real_redis, tools):
    with pytest.raises(ValueError):
        plan(tools, start=1.0, after_s=1.0)
    with pytest.raises(ValueError):
        plan(tools, after_s=float("nan"))


def test_without_the_right_to_write_nothing_is_written(real_redis, tools):
    clock, trail = tools
    reader = Principal.anonymous()
    with pytest.raises(WriteRefused):
        plan(tools, who=reader)
    window = plan(tools)
    with pytest.raises(WriteRefused):
        cancel_window(clock, trail, reader, window_id=window.id, why="x")
    assert len(members(real_redis)) == 1


def test_an_audit_stream_of_another_type_stops_the_write(real_redis, tools):
    real_redis.set("brain:audit", "not a stream")
    with pytest.raises(AuditUnavailable):
        plan(tools)
    assert members(real_redis) == []


def test_a_schedule_key_of_another_type_is_refused_and_read_as_invalid(real_redis, tools):
    clock, _ = tools
    real_redis.set(SKEY, "oops")
    with pytest.raises(ScheduleRefused, match="not a sorted set"):
        plan(tools)
    reading = read_schedule(clock)
    assert reading.windows == () and reading.invalid


def test_read_schedule_lists_windows_by_start_and_names_invalid_members(real_redis, tools):
    clock, _ = tools
    t0 = clock.server_now()
    late, early = plan(tools, start=t0 + 3600), plan(tools, start=t0 + 600)
    real_redis.zadd(SKEY, {b"garbage": t0})
    reading = read_schedule(clock)
    assert [w.id for w in reading.windows] == [early.id, late.id]
    assert [why.startswith("not JSON") for why in reading.invalid] == [True]
    assert reading.now == pytest.approx(t0, abs=2)
    assert [w.id for w in reading.live()] == [early.id, late.id] and reading.current() is None


def test_writes_prune_old_windows_and_invalid_members(real_redis, tools):
    clock, trail = tools
    t0 = clock.server_now()
    old = Window("old", parse_override(json.dumps({"mode": "force_full", "since": 1, "until": 2})).mode, "x", "y",
                 ms(t0 - PRUNE_AFTER_S - 600), ms(t0 - PRUNE_AFTER_S - 1), state="ended")
    recent = Window("recent", old.mode, "x", "y", ms(t0 - 600), ms(t0 - 300), state="ended")
    real_redis.zadd(SKEY, {old.to_json(): old.since, recent.to_json(): recent.since, b"garbage": t0})
    plan(tools)
    assert sorted(m["id"] for m in members(real_redis))[1:] == ["recent"]
    assert trail.entries()[-1].detail["pruned"] == 2


def test_cancel_before_the_window_removes_it_and_audits(real_redis, tools):
    clock, trail = tools
    window = plan(tools)
    cancelled = cancel_window(clock, trail, BOB, window_id=window.id, why="match postponed")
    assert cancelled.id == window.id and members(real_redis) == []
    entry = trail.entries()[-1]
    assert (entry.action, entry.who, entry.why) == ("override_schedule_cancel", "bob", "match postponed")
    assert entry.detail["ended_override"] is False and entry.detail["window"] == window.id


def test_cancel_mid_window_deletes_that_windows_override_atomically(real_redis, tools):
    """The fragment materialized the window; cancel removes the window and its override in one MULTI, and the
    next round trip finds nothing to apply."""
    clock, trail = tools
    window = plan(tools, after_s=0)
    assert step(real_redis, now=window.since) == (APPLIED, window.id)  # "now" may round up to the next ms
    assert json.loads(real_redis.get(OKEY))["window"] == window.id
    cancel_window(clock, trail, BOB, window_id=window.id, why="feed fixed early")
    assert real_redis.get(OKEY) is None and members(real_redis) == []
    assert trail.entries()[-1].detail["ended_override"] is True
    assert step(real_redis) == (NONE, None)


def test_cancel_leaves_a_manual_override_alone(real_redis, tools):
    clock, trail = tools
    window = plan(tools, after_s=0)
    manual = json.dumps({"mode": "force_full", "who": "carol", "why": "drill", "since": 1.0, "until": 9e9})
    real_redis.set(OKEY, manual)
    cancel_window(clock, trail, BOB, window_id=window.id, why="not needed")
    assert real_redis.get(OKEY).decode() == manual


def test_cancel_of_an_unknown_window_is_refused(real_redis, tools):
    clock, trail = tools
    with pytest.raises(NoSuchWindow):
        cancel_window(clock, trail, BOB, window_id="nope", why="x")
    assert trail.entries() == []


def test_force_calm_under_the_rule_waits_for_a_second_operator(real_redis, tools):
    """Stored unapproved; another verified operator approves it (bound to its digest) and the fragment applies it,
    naming both; the audit trail has the request and the approval."""
    clock, trail = tools
    window = plan(tools, "force_calm", after_s=1, two_person_rule=True)
    assert (window.approved, window.requested_by) == (False, "alice")
    approved = approve_window(clock, trail, BOB, window_id=window.id, digest=window.digest())
    assert approved.approved and approved.approved_by == "bob"
    [stored] = members(real_redis)
    assert stored["approved"] is True and stored["approved_by"] == "bob"
    assert step(real_redis, now=window.since + 0.5) == (APPLIED, window.id)
    assert parse_override(real_redis.get(OKEY)).who == "alice, approved by bob"
    assert actions(trail) == ["override_schedule", "force_calm_approved", "override_window_start"]
    assert trail.entries()[1].detail["requested_by"] == "alice"


def test_an_unapproved_scheduled_force_calm_is_skipped_at_its_start(real_redis, tools):
    window = plan(tools, "force_calm", after_s=1, two_person_rule=True)
    assert step(real_redis, now=window.since) == (SKIPPED, window.id)
    assert real_redis.get(OKEY) is None
    assert AuditTrail(real_redis).entries()[-1].action == "override_window_skipped"


def test_force_calm_without_the_rule_needs_no_approval(real_redis, tools):
    window = plan(tools, "force_calm", after_s=1, two_person_rule=False, who=Principal.sandbox())
    assert window.approved and step(real_redis, now=window.since) == (APPLIED, window.id)


def test_approval_refusals(real_redis, tools):
    """The requester, an unverified operator, a stale digest, a window not waiting: each refused, nothing written."""
    clock, trail = tools
    window = plan(tools, "force_calm", after_s=60, two_person_rule=True)
    with pytest.raises(ApprovalRefused, match="requester"):
        approve_window(clock, trail, Principal.of(" ALICE", "admin"), window_id=window.id,
                       digest=window.digest())
    with pytest.raises(WriteRefused, match="self-declared"):
        approve_window(clock, trail, Principal.of("bob", "admin", "shared"), window_id=window.id,
                       digest=window.digest())
    with pytest.raises(ApprovalRefused, match="changed"):
        approve_window(clock, trail, BOB, window_id=window.id, digest="0" * 16)
    with pytest.raises(NoSuchWindow):
        approve_window(clock, trail, BOB, window_id="nope", digest="0" * 16)
    full = plan(tools, "force_full", start=window.until)
    with pytest.raises(ScheduleRefused, match="not waiting"):
        approve_window(clock, trail, BOB, window_id=full.id, digest=full.digest())
    assert actions(trail) == ["override_schedule", "override_schedule"]
    assert members(real_redis)[0]["approved"] is False


def test_a_window_already_open_cannot_be_approved(real_redis, tools):
    clock, trail = tools
    window = plan(tools, "force_calm", after_s=0, two_person_rule=True)
    with pytest.raises(ScheduleRefused, match="opened unapproved"):
        approve_window(clock, trail, BOB, window_id=window.id, digest=window.digest())


def test_a_skipped_window_does_not_block_its_slot(real_redis, tools):
    """An unapproved force_calm skipped at its start no longer counts for overlap: its slot can be planned again."""
    window = plan(tools, "force_calm", after_s=0, minutes=10, two_person_rule=True)
    assert step(real_redis, now=window.since) == (SKIPPED, window.id)
    again = plan(tools, "force_full", after_s=1, minutes=5)
    assert again.since < window.until


def test_window_stories_tell_each_windows_life_from_the_audit_trail(real_redis, tools):
    """Scheduled, started and ended by the fragment; another scheduled and cancelled; newest first."""
    from breaker.ops.schedule import window_stories

    clock, trail = tools
    ran = plan(tools, after_s=0, minutes=1)
    step(real_redis, now=ran.since)
    step(real_redis, now=ran.until + 1)
    dropped = plan(tools, after_s=600)
    cancel_window(clock, trail, BOB, window_id=dropped.id, why="postponed")
    first, second = window_stories(trail.entries())
    assert (first.id, first.outcome, [what for _, what, _ in first.events]) == \
        (dropped.id, "cancelled", ["scheduled", "cancelled"])
    assert (second.id, second.outcome, [what for _, what, _ in second.events]) == \
        (ran.id, "ended", ["scheduled", "started", "ended"])
    assert (second.since, second.until, second.mode) == (ran.since, ran.until, "force_full")


def test_an_approval_is_bound_to_the_requesters_identity(real_redis, tools):
    """The window stores who asked (canonical name, credential kind) and its digest covers them: a member rewritten
    to name someone else is refused as changed; the requester under another spelling is refused as the requester;
    every entry carries the writer's auth and role."""
    clock, trail = tools
    window = plan(tools, "force_calm", after_s=600, two_person_rule=True)
    [stored] = members(real_redis)
    assert (stored["requester_canonical"], stored["requester_auth"]) == ("alice", "password")
    forged = {**stored, "requester_canonical": "mallory"}
    real_redis.zrem(SKEY, real_redis.zrange(SKEY, 0, -1)[0])
    real_redis.zadd(SKEY, {json.dumps(forged): window.since})
    with pytest.raises(ApprovalRefused, match="changed"):
        approve_window(clock, trail, BOB, window_id=window.id, digest=window.digest())
    real_redis.zrem(SKEY, json.dumps(forged))
    real_redis.zadd(SKEY, {json.dumps(stored): window.since})
    with pytest.raises(ApprovalRefused, match="requester"):
        approve_window(clock, trail, Principal.of("ＡＬＩＣＥ", "approver"), window_id=window.id,
                       digest=window.digest())
    approve_window(clock, trail, BOB, window_id=window.id, digest=window.digest())
    entries = [e for e in trail.entries() if e.action in ("override_schedule", "force_calm_approved")]
    assert [(e.action, e.auth, e.role) for e in entries] == [("override_schedule", "password", "operator"),
                                                             ("force_calm_approved", "password", "approver")]


def test_a_window_cannot_be_approved_through_two_tokens_of_one_issuer(real_redis, tools):
    """Review (identity): as for a request (test_approvals), two tokens one admin minted are one person."""
    from breaker.ops.tokens import TokenStore

    clock, trail = tools
    store, root = TokenStore(real_redis), Principal.of("root", "admin")
    asker, approver = (store.verify(store.create(trail, root, name=name, role=role, expires_s=None, why="x")[0])
                       for name, role in (("sock one", "operator"), ("sock two", "approver")))
    window = schedule_override(clock, trail, asker, mode="force_calm", minutes=5, why="migration", after_s=600,
                               two_person_rule=True)
    with pytest.raises(ApprovalRefused, match="same person"):
        approve_window(clock, trail, approver, window_id=window.id, digest=window.digest())
    assert not members(real_redis)[0]["approved"]


def test_a_break_glass_window_writes_its_break_glass_entry(real_redis, tools):
    """Review (identity): a force_calm window planned alone (no two-person rule, real target) is break-glass, but it
    was audited only as override_schedule with a break_glass field, so a notifier or alert listening for the
    break_glass action (docs/notifications.md's example) missed it. It now writes the break_glass entry beside
    override_schedule, in the same transaction, as an immediate break-glass does."""
    clock, trail = tools
    admin = Principal.of("root", "admin")
    window = schedule_override(clock, trail, admin, mode="force_calm", minutes=5, why="feed migration", after_s=600)
    entries = trail.entries()
    assert [(e.action, e.who, e.auth, e.role) for e in entries] == [("override_schedule", "root", "password", "admin"),
                                                                      ("break_glass", "root", "password", "admin")]
    assert entries[1].detail["window"] == window.id
    with pytest.raises(WriteRefused, match="break-glass"):
        schedule_override(clock, trail, BOB, mode="force_calm", minutes=5, why="x", after_s=1200)
    assert len(trail.entries()) == 2
