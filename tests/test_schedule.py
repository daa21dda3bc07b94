"""The schedule fragment (breaker/schedule.py) run with EVAL on real servers, checked against its Python twin.

Times are relative to the server's TIME; the fragment takes ``now`` explicitly, so minutes pass without
sleeping. Where the real expiry matters, short real waits are polled up to a deadline.
"""

from __future__ import annotations

import json
import time

import pytest

from breaker.ops.audit import AuditTrail
from breaker.override import parse_override
from breaker.schedule import (
    APPLIED,
    IN_FORCE,
    INVALID,
    MANUAL,
    MAX_WINDOW_BYTES,
    NONE,
    SCHEDULE_KEY_NAME,
    SKIPPED,
    STANDALONE_SCRIPT,
    InvalidWindow,
    Window,
    ms,
    parse_window,
    plan_step,
    run_step,
)

PREFIX = "brain:"
SKEY, OKEY = f"{PREFIX}{SCHEDULE_KEY_NAME}", f"{PREFIX}panic_override"
HOUR = 3600.0


@pytest.fixture
def real_redis(server_redis):
    """Every test here runs on Valkey 9 and on Redis 7.0 (ZRANGE BYSCORE REV and SET PXAT need 6.2+)."""
    return server_redis


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def window(t0: float, start: float, length: float, *, wid: str = "w1", mode: str = "force_full",
           approved: bool = True, approved_by: str | None = None, state: str = "planned") -> Window:
    from breaker.override import OverrideMode

    return Window(wid, OverrideMode(mode), "alice", "cup final", ms(t0 + start), ms(t0 + start + length),
                  at=ms(t0), requested_by="alice" if mode == "force_calm" else None, approved=approved,
                  approved_by=approved_by, state=state)


def plan(client, *windows: Window) -> None:
    for w in windows:
        client.zadd(SKEY, {w.to_json(): w.since})


def step(client, now: float, max_s: float = HOUR):
    """Run the fragment, and check its Python twin decides the same on the state the fragment saw."""
    rows = client.zrange(SKEY, f"{now:.6f}", "-inf", byscore=True, desc=True, offset=0, num=2) \
        if client.type(SKEY) in (b"zset", b"none") else []
    expected = plan_step(rows, client.get(OKEY) if client.type(OKEY) == b"string" else None, now, max_s)
    status, window_id, _ = run_step(client, key_prefix=PREFIX, max_s=max_s, now=now)
    assert (status, window_id) == (expected.status, expected.window_id), "the Python twin disagrees"
    if expected.override is not None:
        assert json.loads(client.get(OKEY)) == expected.override
    return status, window_id


def states(client) -> dict[str, str]:
    return {w.id: w.state for w in (parse_window(raw) for raw in client.zrange(SKEY, 0, -1))}


def window_actions(client) -> list[tuple[str, str]]:
    return [(e.action, e.detail.get("window")) for e in AuditTrail(client).entries()]


def test_a_window_from_plus_3s_for_5s_applies_exactly_inside_it(real_redis):
    """Before +3 s: nothing; at +3 s: the override is written (v2 JSON + window id), started, audited once; inside:
    in force without another write; at +8 s: ended, audited."""
    t0 = server_now(real_redis)
    w = window(t0, 3, 5)
    plan(real_redis, w)
    assert step(real_redis, t0 + 2.9) == (NONE, None)
    assert real_redis.get(OKEY) is None
    assert step(real_redis, w.since) == (APPLIED, "w1")
    override = parse_override(real_redis.get(OKEY))
    assert (override.mode.value, override.who, override.why, override.since, override.until) == \
        ("force_full", "alice", "cup final", w.since, w.until)
    assert json.loads(real_redis.get(OKEY))["window"] == "w1"
    assert abs(real_redis.pexpiretime(OKEY) - w.until * 1000) <= 1  # expires at until, in server time
    assert step(real_redis, t0 + 5) == (IN_FORCE, "w1")
    assert step(real_redis, t0 + 7.99) == (IN_FORCE, "w1")
    assert window_actions(real_redis) == [("override_window_start", "w1")]
    assert step(real_redis, w.until) == (NONE, None)
    assert states(real_redis) == {"w1": "ended"}
    assert window_actions(real_redis) == [("override_window_start", "w1"), ("override_window_end", "w1")]
    step(real_redis, w.until + 1)
    assert len(window_actions(real_redis)) == 2  # once each


def test_audit_entries_carry_the_contract_fields(real_redis):
    """The start entry: who/why of the window, kind operator, auth worker, role empty, detail with times."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 5)
    plan(real_redis, w)
    step(real_redis, t0 + 1.5)
    [(_entry_id, fields)] = real_redis.xrange(f"{PREFIX}audit")
    assert fields[b"auth"] == b"worker" and fields[b"role"] == b"" and fields[b"kind"] == b"operator"
    [entry] = AuditTrail(real_redis).entries()
    assert (entry.who, entry.why, entry.action) == ("alice", "cup final", "override_window_start")
    assert entry.detail["since"] == w.since and entry.detail["until"] == w.until and not entry.problems
    assert entry.at == pytest.approx(t0 + 1.5, abs=1e-3)


def test_the_real_expiry_ends_the_override_on_server_time(real_redis):
    """With the server's own TIME (no now passed): a window 0.1 s ahead lasting 0.3 s is applied once its start
    passes and its override key is gone by itself after its end (polled, no long sleep)."""
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 0.1, 0.3))
    deadline, seen = time.monotonic() + 2.0, []
    while time.monotonic() < deadline and APPLIED not in seen:
        seen.append(run_step(real_redis, key_prefix=PREFIX, max_s=HOUR)[0])
        time.sleep(0.02)
    assert APPLIED in seen and seen[0] == NONE
    assert real_redis.get(OKEY) is not None or server_now(real_redis) >= t0 + 0.4
    while time.monotonic() < deadline and real_redis.get(OKEY) is not None:
        time.sleep(0.02)
    assert real_redis.get(OKEY) is None and server_now(real_redis) >= t0 + 0.4 - 0.002


def test_back_to_back_windows_hand_over_at_the_edge(real_redis):
    """Two windows, the second starting where the first ends: each applies in turn, the first's end is audited
    at the second's start (the fragment looks at the two latest windows)."""
    t0 = server_now(real_redis)
    first, second = window(t0, 3, 5, wid="a"), window(t0, 8, 5, wid="b", mode="force_full")
    plan(real_redis, first, second)
    assert step(real_redis, first.since) == (APPLIED, "a")
    assert step(real_redis, second.since) == (APPLIED, "b")
    assert json.loads(real_redis.get(OKEY))["window"] == "b"
    assert states(real_redis) == {"a": "ended", "b": "started"}
    assert window_actions(real_redis) == [("override_window_start", "a"), ("override_window_end", "a"),
                                          ("override_window_start", "b")]
    assert step(real_redis, second.until) == (NONE, None)
    assert states(real_redis) == {"a": "ended", "b": "ended"}


def test_an_unapproved_force_calm_does_not_apply_and_that_is_audited_once(real_redis):
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 5, mode="force_calm", approved=False))
    assert step(real_redis, t0 + 1.5) == (SKIPPED, "w1")
    assert step(real_redis, t0 + 2) == (SKIPPED, "w1")
    assert real_redis.get(OKEY) is None
    assert states(real_redis) == {"w1": "skipped"}
    assert window_actions(real_redis) == [("override_window_skipped", "w1")]
    [entry] = AuditTrail(real_redis).entries()
    assert "not approved" in entry.detail["reason"]


def test_an_approved_force_calm_applies_naming_both_operators(real_redis):
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 5, mode="force_calm", approved=True, approved_by="bob"))
    assert step(real_redis, t0 + 1.5) == (APPLIED, "w1")
    override = parse_override(real_redis.get(OKEY))
    assert override.mode.value == "force_calm" and override.who == "alice, approved by bob"


def test_a_manual_override_takes_precedence_and_the_window_applies_after_it(real_redis):
    """A valid manual override in force: the window waits (nothing written); once it is gone the window applies
    for what is left of it (since = the window's since)."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 10)
    plan(real_redis, w)
    manual = json.dumps({"mode": "force_calm", "who": "carol", "why": "stuck", "since": t0, "until": t0 + 4})
    real_redis.set(OKEY, manual, ex=60)
    assert step(real_redis, t0 + 2) == (MANUAL, "w1")
    assert real_redis.get(OKEY).decode() == manual and window_actions(real_redis) == []
    assert step(real_redis, t0 + 4.5) == (APPLIED, "w1")  # the manual one's until has passed
    assert json.loads(real_redis.get(OKEY))["since"] == w.since


def test_an_unusable_value_at_the_override_key_does_not_hold_a_window_back(real_redis):
    """Garbage (or another type) at the override key is no override: the window replaces it."""
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 10))
    real_redis.hset(OKEY, "x", "y")
    assert step(real_redis, t0 + 2) == (APPLIED, "w1")
    assert json.loads(real_redis.get(OKEY))["window"] == "w1"


def test_clearing_a_started_windows_override_by_hand_ends_it(real_redis):
    """Once started, the override key is the truth: deleted by hand, the window is not re-applied."""
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 10))
    step(real_redis, t0 + 1.5)
    real_redis.delete(OKEY)
    assert step(real_redis, t0 + 2) == (IN_FORCE, "w1")
    assert real_redis.get(OKEY) is None


def test_a_removed_window_no_longer_applies(real_redis):
    """What cancel does to storage (ZREM + DEL of that window's override): the next step finds nothing."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 10)
    plan(real_redis, w)
    step(real_redis, t0 + 1.5)
    [raw] = real_redis.zrange(SKEY, 0, -1)
    real_redis.zrem(SKEY, raw)
    real_redis.delete(OKEY)
    assert step(real_redis, t0 + 2) == (NONE, None)
    assert real_redis.get(OKEY) is None


def test_a_worker_honours_a_window_at_most_its_own_maximum(real_redis):
    """A 90-minute window (written by anything) is honoured 60 minutes from its since by a worker with max 60."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 90 * 60)
    plan(real_redis, w)
    step(real_redis, t0 + 1.5, max_s=HOUR)
    assert json.loads(real_redis.get(OKEY))["until"] == w.since + HOUR
    assert step(real_redis, w.since + HOUR - 1, max_s=HOUR) == (IN_FORCE, "w1")
    assert step(real_redis, w.since + HOUR, max_s=HOUR) == (NONE, None)
    assert states(real_redis) == {"w1": "ended"}


def test_a_window_no_round_trip_saw_is_audited_as_missed(real_redis):
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 2))
    assert step(real_redis, t0 + 10) == (NONE, None)
    assert states(real_redis) == {"w1": "missed"}
    assert window_actions(real_redis) == [("override_window_skipped", "w1")]
    assert real_redis.get(OKEY) is None


@pytest.mark.parametrize("member", [
    b"not json", b"[1, 2]", b'{"id": "x"}',
    b'{"id": "x", "mode": "force_sleepy", "who": "a", "why": "b", "since": 1, "until": 2}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": 2, "until": 1}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": 1, "until": "2"}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": 1, "until": 1e999}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": 1, "until": 2, "state": "odd"}',
    b'{"id": "", "mode": "force_full", "who": "a", "why": "b", "since": 1, "until": 2}',
    b'{"id": "x", "mode": "force_full", "who": 7, "why": "b", "since": 1, "until": 2}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "' + b"y" * MAX_WINDOW_BYTES + b'", "since": 1, "until": 2}',
    b"[" * 3000 + b"]" * 3000,
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": 1, "until": NaN}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": NaN, "until": 2}',
    b'{"id": "x", "mode": "force_full", "who": "a", "why": "b", "since": 1, "until": 2, "extra": -Infinity}',
])
def test_a_member_that_is_not_a_window_is_ignored(real_redis, member):
    """Whatever else sits in the schedule: status invalid, nothing written, and the twin refuses it too."""
    t0 = server_now(real_redis)
    real_redis.zadd(SKEY, {member: t0})
    assert step(real_redis, t0 + 1) == (INVALID, None)
    assert real_redis.get(OKEY) is None and window_actions(real_redis) == []
    with pytest.raises(InvalidWindow):
        parse_window(member)


def test_a_schedule_key_of_another_type_is_invalid_not_an_error(real_redis):
    real_redis.set(SKEY, "oops")
    assert run_step(real_redis, key_prefix=PREFIX, max_s=HOUR)[0] == INVALID
    assert real_redis.get(SKEY) == b"oops"


def test_the_reply_is_bounded_whatever_is_stored(real_redis):
    """The fragment returns a status and an id (at most 64 characters), never a stored member."""
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 5, wid="i" * 64))
    reply = real_redis.eval(STANDALONE_SCRIPT, 3, SKEY, OKEY, f"{PREFIX}audit", f"{t0 + 2:.6f}", "3600", "100")
    assert len(reply) == 3 and sum(len(part) for part in reply) < 100


def test_a_member_round_trips_through_the_fragments_rewrite(real_redis):
    """After the fragment rewrites a member (cjson), Python reads back the same window (times in ms survive)."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 5, mode="force_calm", approved=True, approved_by="bob")
    plan(real_redis, w)
    step(real_redis, t0 + 1.5)
    [raw] = real_redis.zrange(SKEY, 0, -1)
    back = parse_window(raw)
    assert back == Window(**{**w.__dict__, "state": "started"})
    assert back.digest() == w.digest()


def test_a_write_the_server_refuses_changes_nothing_and_the_next_round_trip_applies(server_factory):
    """Out of memory (maxmemory reached, noeviction): the step answers error without marking the window or auditing
    (no half-done window), and the next round trip, memory back, applies it once."""
    from breaker import redis_client
    from breaker.schedule import ERROR

    server = server_factory()
    client = redis_client(server.connection_url, timeout_ms=1000)
    try:
        t0 = server_now(client)
        plan(client, window(t0, 1, 5))
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        assert run_step(client, key_prefix=PREFIX, max_s=HOUR, now=t0 + 1.5)[:2] == (ERROR, "w1")
        client.config_set("maxmemory", 0)
        assert client.get(OKEY) is None and states(client) == {"w1": "planned"} and window_actions(client) == []
        assert step(client, t0 + 2) == (APPLIED, "w1")
        assert window_actions(client) == [("override_window_start", "w1")]
    finally:
        client.close()


def test_a_window_whose_own_override_was_written_but_not_marked_is_no_manual_override(real_redis):
    """The override key holding this window's own override (state still planned) does not hold the window back."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 5)
    plan(real_redis, w)
    real_redis.set(OKEY, json.dumps(w.override_doc(HOUR)))
    assert step(real_redis, t0 + 2) == (APPLIED, "w1")
    assert states(real_redis) == {"w1": "started"}


@pytest.mark.parametrize("spelling", ["compact", "spaced"])
def test_a_window_marked_over_stays_over(real_redis, spelling):
    """A window another worker (with a lower maximum) already ended is not applied again by one with a higher one,
    whether the member is in the compact form the fragment skips undecoded or spelled otherwise."""
    t0 = server_now(real_redis)
    w = window(t0, 1, 90 * 60, state="ended")
    member = w.to_json() if spelling == "compact" else json.dumps(w.to_dict(), indent=1)
    real_redis.zadd(SKEY, {member: w.since})
    assert step(real_redis, w.since + HOUR + 60, max_s=2 * HOUR) == (NONE, None)
    assert real_redis.get(OKEY) is None and window_actions(real_redis) == []


def test_the_fragment_fits_in_the_one_round_trip(real_redis):
    """In the round-trip script (breaker/refresh.py), one EVAL observes the clock, materializes the window, reads the
    override it just wrote and beats: the round trip count stays one, and the reply carries the window's status."""
    from breaker import refresh

    t0 = server_now(real_redis)
    w = window(t0, -1, 5)  # opened a second ago: the script's own TIME is inside it
    plan(real_redis, w)
    keys = tuple(f"{PREFIX}{name}".encode() for name in ("panic_start_ts", "panic_last_seen_ts", "panic_override",
                                                         "workers", "fleet_agg", "panic_epoch", SCHEDULE_KEY_NAME,
                                                         "audit"))
    assert keys[2] == OKEY.encode() and keys[6] == SKEY.encode()
    args = refresh.arguments(keys, observe=True, now="", ttl_s=900, worker_id="w:1:aaaa", beat='{"v":1,"seen":',
                             beat_ttl_s=60, hexpire=False, ascii_only=False, max_age_s=48 * 3600,
                             max_override_s=3600)
    before = real_redis.info("commandstats").get("cmdstat_eval", {"calls": 0})["calls"]
    reply = real_redis.eval(refresh.SCRIPT, *args)
    assert real_redis.info("commandstats")["cmdstat_eval"]["calls"] == before + 1
    parsed = refresh.parse_reply(reply)
    assert parse_override(parsed.override_raw).mode.value == "force_full"  # read in the same round trip
    assert json.loads(parsed.override_raw)["window"] == "w1"
    assert parsed.initialized and parsed.beat == refresh.BEAT_WRITTEN
    assert (parsed.schedule, parsed.window_id) == (APPLIED, "w1")
    assert window_actions(real_redis) == [("override_window_start", "w1")]


def test_an_error_inside_the_fragment_does_not_fail_the_round_trip(real_redis):
    """schedule_step_safe catches what the step raises (here: a function of the fragment broken on purpose) and
    answers error, so the round trip around it goes on."""
    sabotage = "local function schedule_step(x) error('boom') end\nlocal function schedule_step_unused("
    broken = STANDALONE_SCRIPT.replace("local function schedule_step(", sabotage, 1)
    t0 = server_now(real_redis)
    plan(real_redis, window(t0, 1, 5))
    reply = real_redis.eval(broken, 3, SKEY, OKEY, f"{PREFIX}audit", f"{t0 + 2:.6f}", "3600", "100")
    assert reply[:2] == [b"error", None]
