"""The audit stream: bounded, readable, fed by the breaker only on change; episodes derived from it."""

import pytest

from breaker import VIXCircuitBreaker
from breaker.ops import AuditTrail, panic_episodes, state_change_listener
from breaker.ops.audit import AuditEntry, fleet_tier_steps


def test_record_and_read_back(real_redis, fake_clock):
    """An entry keeps who, when, what, why, tier and details."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    trail.record(who="alice", action="panic_start", why="drill", tier=2, backdate_s=1800)
    [entry] = trail.entries()
    assert (entry.who, entry.action, entry.why, entry.tier, entry.at) == ("alice", "panic_start", "drill", 2,
                                                                           fake_clock())
    assert entry.detail == {"backdate_s": 1800}
    assert real_redis.exists("brain:audit")


def test_stream_is_bounded(real_redis):
    """The stream never holds more than maxlen entries; the newest are kept."""
    trail = AuditTrail(real_redis, key_prefix="t:", maxlen=20)
    for i in range(50):
        trail.record(who="w", action=f"a{i}")
    assert real_redis.xlen("t:audit") == 20
    assert [e.action for e in trail.entries()][-1] == "a49"


@pytest.mark.parametrize("kwargs", [{"who": "", "action": "x"}, {"who": "a", "action": ""},
                                    {"who": "a", "action": "x", "kind": "gossip"}])
def test_incomplete_entries_are_rejected(real_redis, kwargs):
    """An entry without who/action or with an unknown kind is an error, not a silent line."""
    with pytest.raises(ValueError):
        AuditTrail(real_redis).record(**kwargs)


def test_breaker_writes_only_on_change(real_redis, fake_clock):
    """A worker with the listener adds one entry per mode/tier change, not one per call."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    breaker = VIXCircuitBreaker(
        real_redis, clock=fake_clock, on_state_change=state_change_listener(trail, "w1"), server_time=False,
    )
    for _ in range(50):
        breaker.get_ttl(60, "panic")
    fake_clock.advance(16 * 60)
    for _ in range(50):
        breaker.get_ttl(60, "panic")
        fake_clock.advance(1)
    entries = trail.entries()
    assert [(e.kind, e.who, e.tier) for e in entries] == [("state_change", "w1", 1), ("state_change", "w1", 2)]
    assert entries[1].why == "low_stakes: PANIC_FULL -> PANIC_PARTIAL"


def _entry(at, action, tier=None, kind="operator", who="ops", **detail):
    return AuditEntry(id=f"{int(at * 1000)}-0", at=at, kind=kind, who=who, action=action, why="", tier=tier,
                      detail=detail)


def test_episode_from_worker_state_changes():
    """Workers raising and then dropping their tiers make one closed episode with its peak."""
    entries = [
        _entry(100, "state_change", 1, "state_change", "w1", match_importance="low_stakes"),
        _entry(200, "state_change", 1, "state_change", "w2", match_importance="high_stakes"),
        _entry(1000, "state_change", 2, "state_change", "w1", match_importance="low_stakes"),
        _entry(2000, "state_change", 0, "state_change", "w1", match_importance="low_stakes"),
        _entry(2100, "state_change", 0, "state_change", "w2", match_importance="high_stakes"),
    ]
    [episode] = panic_episodes(entries, now=5000)
    assert (episode.start, episode.end, episode.peak_tier, episode.duration_s(5000)) == (100, 2100, 2, 2000)


def test_drill_episode_is_backdated_and_ends_with_its_hold():
    """A back-dated drill starts its episode at the back-dated start and ends when its hold runs out."""
    entries = [_entry(10_000, "panic_start", 3, panic_start=10_000 - 46 * 60, hold_until=10_900)]
    [episode] = panic_episodes(entries, now=20_000)
    assert (episode.start, episode.end, episode.peak_tier) == (10_000 - 46 * 60, 10_900, 3)
    assert fleet_tier_steps(entries, now=20_000) == [(10_000, 3, 10_000 - 46 * 60), (10_900, 0, None)]


def test_operator_end_closes_an_ongoing_episode():
    """Ending or clearing the clock ends the episode; without it the episode is ongoing."""
    start = _entry(100, "panic_start", 1, panic_start=100, hold_until=100_000)
    assert panic_episodes([start], now=500)[0].ongoing
    [episode] = panic_episodes([start, _entry(400, "zombie_clear")], now=500)
    assert (episode.end, episode.ongoing) == (400, False)


def test_no_tiers_no_episodes():
    """Logins and drills that report no tier make no episode."""
    assert panic_episodes([_entry(1, "login", kind="login"), _entry(2, "failsafe_drill")], now=10) == []


def test_worker_episode_ends_when_a_newer_panic_starts():
    """Workers log panic answers only: a report naming a newer panic start ends the previous episode."""
    entries = [
        _entry(100, "state_change", 1, "state_change", "w1", match_importance="low_stakes", panic_start=90),
        _entry(1000, "state_change", 3, "state_change", "w1", match_importance="low_stakes", panic_start=90),
        _entry(9000, "state_change", 1, "state_change", "w2", match_importance="high_stakes", panic_start=8990),
    ]
    first, second = panic_episodes(entries, now=9500)
    assert (first.start, first.end, first.peak_tier) == (90, 9000, 3)
    assert (second.start, second.ongoing, second.peak_tier) == (8990, True, 1)


def test_worker_episode_ends_when_its_clock_is_gone():
    """Given the live clock (none now), a worker-reported panic is over; with its clock still there it is ongoing."""
    entries = [_entry(100, "state_change", 2, "state_change", "w1", match_importance="low_stakes", panic_start=90)]
    [ongoing] = panic_episodes(entries, now=5000, clock_start=90.0)
    assert ongoing.ongoing
    [over] = panic_episodes(entries, now=5000, clock_start=None)
    assert (over.start, over.end, over.peak_tier) == (90, 5000, 2)


def test_breaker_reports_the_panic_start(real_redis, fake_clock):
    """The breaker's state-change entries carry the clock's start, so history can tell episodes apart."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    breaker = VIXCircuitBreaker(
        real_redis, clock=fake_clock, on_state_change=state_change_listener(trail, "w1"), server_time=False,
    )
    breaker.get_ttl(60, "panic")
    [entry] = trail.entries()
    assert entry.detail["panic_start"] == fake_clock()


MALFORMED = [
    {"at": "nan", "kind": "operator", "who": "x", "action": "panic_start", "tier": "1", "detail": "{}"},
    {"at": "1e20", "kind": "operator", "who": "x", "action": "panic_start", "tier": "2", "detail": "{}"},
    {"at": "1800000000.0", "kind": "operator", "who": "x", "action": "panic_start", "tier": "1",
     "detail": '{"panic_start": "abc"}'},
    {"at": "1800000000.0", "kind": "operator", "who": "x", "action": "panic_start", "tier": "1",
     "detail": '{"hold_until": "soon"}'},
    {"at": "1800000001.0", "kind": "state_change", "who": "w", "action": "state_change", "tier": "1",
     "detail": '{"panic_start": "inf", "match_importance": "low_stakes"}'},
    {"at": "1800000002.0", "kind": "operator", "who": "x", "action": "panic_end",
     "detail": "[" * 5000 + "]" * 5000},  # deeper than json's recursion limit
]


def test_malformed_entries_are_flagged_not_fatal(real_redis):
    """at=nan/1e20, panic_start="abc", hold_until="soon": read back flagged, and episodes still compute."""
    trail = AuditTrail(real_redis)
    for fields in MALFORMED:
        real_redis.xadd(trail.key, fields)
    entries = trail.entries()
    assert len(entries) == len(MALFORMED) and all(entry.problems for entry in entries)
    assert all(0 < entry.at < 1e11 for entry in entries)
    panic_episodes(entries, now=1_800_000_100.0, clock_start=None)
    fleet_tier_steps(entries, now=1_800_000_100.0)
