"""The fleet reader: every heartbeat, the clock and the override in one round trip; states, counts, pruning."""

import pytest

from breaker import PanicClock
from breaker.heartbeat import beat_json
from breaker.ops import read_fleet


def _now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _beat(seen, *, calls=None, fail_safe=0, tiers=None, interval_s=1.0):
    return beat_json(host="h", pid=1, started=seen - 100, interval_s=interval_s, calls=calls or {"NORMAL": 5},
                     fail_safe=fail_safe, tiers=tiers or {}, override=None, error=None, version="0.1.0", seen=seen)


@pytest.fixture
def fleet(real_redis):
    now = _now(real_redis)
    real_redis.set("brain:panic_start_ts", repr(now - 20 * 60), ex=900)  # 20 min: low stakes tier 2
    real_redis.hset("brain:workers", mapping={
        "h:1:aaaa": _beat(now, calls={"NORMAL": 3}),
        "h:2:bbbb": _beat(now, calls={"PANIC_PARTIAL": 4}, tiers={"low_stakes": 2, "high_stakes": 1}),
        "h:3:cccc": _beat(now, calls={"PANIC_FULL": 2}, fail_safe=2),
        "h:4:dddd": _beat(now - 10),
        "h:5:eeee": _beat(now - 120),
        "h:6:ffff": _beat(now, calls={"NEW_NORMAL": 1}, tiers={"low_stakes": 4}),  # disagrees with the clock
        "junk": "not json",
    })
    return now


def test_one_round_trip_returns_workers_clock_and_override(real_redis, fleet):
    """read_fleet makes one MULTI round trip (plus an HDEL only when a gone worker is pruned)."""
    real_redis.config_resetstat()
    view = read_fleet(PanicClock(real_redis), prune=False)
    stats = real_redis.info("commandstats")
    assert stats["cmdstat_multi"]["calls"] == 1 and stats["cmdstat_exec"]["calls"] == 1
    assert "cmdstat_hdel" not in stats
    assert view.reading.start is not None and view.override.override is None
    assert len(view.workers) == 6 and set(view.invalid) == {"junk"}
    assert abs(view.now - fleet) < 5


def test_states_counts_and_tiers(real_redis, fleet):
    """Each worker's state comes from its age and answers; tiers are tallied per stakes class."""
    view = read_fleet(PanicClock(real_redis))
    states = {w.worker_id: w.state for w in view.workers}
    assert states == {"h:1:aaaa": "calm", "h:2:bbbb": "panic", "h:3:cccc": "fail_safe", "h:4:dddd": "stale",
                      "h:5:eeee": "gone", "h:6:ffff": "panic"}
    assert view.counts == {"panic": 2, "calm": 1, "fail_safe": 1, "stale": 1, "gone": 1}
    assert view.tiers["low_stakes"] == {2: 1, 4: 1} and view.tiers["high_stakes"] == {1: 1}
    assert view.answers_per_s == 3 + 4 + 2 + 1


def test_workers_disagreeing_with_the_clock_are_named(real_redis, fleet):
    """A worker answering tier 4 on a 20-minute clock is listed as disagreeing; one at tier 2 is not."""
    view = read_fleet(PanicClock(real_redis))
    assert [w.worker_id for w in view.disagreeing] == ["h:6:ffff"]


def test_gone_workers_are_pruned_by_the_reader(real_redis, fleet):
    """A beat older than 60 s is deleted from the hash after the read (servers without HEXPIRE)."""
    read_fleet(PanicClock(real_redis))
    assert not real_redis.hexists("brain:workers", "h:5:eeee")
    assert real_redis.hexists("brain:workers", "h:4:dddd")


HOSTILE_BEATS = {
    "nested": '{"v":1,"x":' + "[" * 4000 + "]" * 4000 + "}",  # under 8 KiB, deeper than json's recursion limit
    "overflowing": '{"v":1,"seen":1e9,"calls":{"NORMAL":1e308,"PANIC_FULL":1e308}}',  # sum beyond a float
    "negative": '{"v":1,"seen":1e9,"calls":{"NORMAL":-5},"fail_safe":-1}',
    "enormous": '{"v":1,"seen":1e9,"pid":1' + "0" * 40 + ',"fail_safe":1e300}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BEATS))
def test_a_hostile_beat_is_listed_apart_never_failing_the_read(real_redis, fleet, name):
    """One field too deeply nested or with counts no worker can have is an invalid beat; the rest still read."""
    real_redis.hset("brain:workers", f"x:{name}", HOSTILE_BEATS[name])
    view = read_fleet(PanicClock(real_redis), prune=False)
    assert f"x:{name}" in view.invalid
    assert len(view.workers) == 6 and view.counts["panic"] == 2


def test_keys_of_another_type_are_flagged_not_raised(real_redis, fleet):
    """An override key holding a list (workers ignore it, INVALID_PANIC_OVERRIDE) and a workers key holding a
    string are flagged in the view; the clock and the rest are still read."""
    real_redis.rpush("brain:panic_override", "force_calm")
    view = read_fleet(PanicClock(real_redis), prune=False)
    assert view.override.override is None and "type" in view.override.invalid_reason
    assert len(view.workers) == 6 and view.reading.start is not None
    real_redis.delete("brain:workers")
    real_redis.set("brain:workers", "not a hash")
    view = read_fleet(PanicClock(real_redis), prune=False)
    assert view.workers == [] and "type" in view.invalid["brain:workers"] and view.reading.start is not None
