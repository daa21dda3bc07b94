"""Scheduled overrides on a real Valkey cluster: the schedule, the override and the audit stream share the
prefix's slot, so the ops writes (WATCH/MULTI) and the fragment (one script, keys declared) run there."""

from __future__ import annotations

import json

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal
from breaker.ops.schedule import cancel_window, read_schedule, schedule_override
from breaker.schedule import APPLIED, NONE, run_step

ALICE = Principal.of("alice", "admin")


def test_schedule_apply_and_cancel_on_a_cluster(cluster_redis):
    clock, trail = PanicClock(cluster_redis), AuditTrail(cluster_redis)
    assert clock.key_prefix == "{brain}:"
    window = schedule_override(clock, trail, ALICE, mode="force_full", minutes=5, why="cup final", after_s=0)
    assert [w.id for w in read_schedule(clock).windows] == [window.id]
    assert run_step(cluster_redis, key_prefix=clock.key_prefix, max_s=3600, now=window.since)[:2] == \
        (APPLIED, window.id)  # now=since: a window starting "now" may begin at the next millisecond
    assert json.loads(cluster_redis.get("{brain}:panic_override"))["window"] == window.id
    cancel_window(clock, trail, ALICE, window_id=window.id, why="over early")
    assert cluster_redis.get("{brain}:panic_override") is None
    assert run_step(cluster_redis, key_prefix=clock.key_prefix, max_s=3600)[:2] == (NONE, None)
    assert [e.action for e in trail.entries()] == ["override_schedule", "override_window_start",
                                                   "override_schedule_cancel"]
