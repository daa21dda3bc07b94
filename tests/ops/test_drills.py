"""Drills on a real server: fail-safe answers, first writer wins across threads and processes, replays."""

import pytest

from breaker import PanicClock
from breaker.ops import fail_safe_drill, multi_worker_drill, replay_scenario
from breaker.ops.drills import SCENARIOS, scenario_signal


def test_fail_safe_drill_answers_panic_full():
    """Against a loopback port nobody listens on, every panic call answers (0, PANIC_FULL)."""
    drill = fail_safe_drill(5)
    assert drill.all_fail_safe and len(drill.calls) == 5
    assert drill.target.startswith("redis://127.0.0.1:")


def test_multi_worker_drill_agrees_on_one_start(real_redis, redis_url):
    """4 threads and 3 processes racing: one writer, one start, scratch namespace deleted afterwards."""
    drill = multi_worker_drill(redis_url, real_redis, key_prefix="brain:", threads=4, processes=3)
    assert drill.agreed, drill.workers
    assert [w.kind for w in drill.workers].count("process") == 3
    assert real_redis.keys("*") == []


def test_multi_worker_drill_reports_unreachable_workers():
    """Workers that cannot connect report their error; the drill does not claim agreement."""
    from breaker.ops.drills import MultiWorkerDrill, WorkerStart

    drill = MultiWorkerDrill("ns:", (WorkerStart("thread-1", "thread", None, False, "ConnectionError()"),
                                     WorkerStart("thread-2", "thread", 5.0, True)))
    assert not drill.agreed


@pytest.mark.parametrize(("threads", "processes"), [(1, 0), (-1, 3), (17, 0), (True, 2)])
def test_multi_worker_drill_rejects_bad_counts(real_redis, redis_url, threads, processes):
    """Worker counts out of range name the argument."""
    with pytest.raises(ValueError, match=r"threads|processes|at least 2"):
        multi_worker_drill(redis_url, real_redis, key_prefix="x:", threads=threads, processes=processes)


def test_sustained_replay_climbs_all_tiers_without_touching_the_live_key(real_redis, fake_clock):
    """A sustained panic reaches tier 4 (low stakes at 90 min); the live key is never written."""
    live = PanicClock(real_redis)
    live.start_drill(fake_clock(), backdate_s=60)
    before = real_redis.get(live.start_key)
    replay = replay_scenario(real_redis, "sustained", key_prefix="brain:", minutes=120,
                             match_context={"stakes": "low"})
    tiers = [p.tier for p in replay.points]
    assert tiers[0] == 1 and tiers[15] == 2 and tiers[45] == 3 and tiers[90] == 4
    assert real_redis.get(live.start_key) == before
    assert sorted(real_redis.keys("*")) == [b"brain:panic_last_seen_ts", b"brain:panic_start_ts"]


def test_flickering_signal_advances_only_in_default_mode(real_redis):
    """Calm every third minute: the default clock keeps running, seed mode resets it and stays at tier 1."""
    default = replay_scenario(real_redis, "flickering", key_prefix="r:", minutes=120)
    seed = replay_scenario(real_redis, "flickering", key_prefix="r:", minutes=120, end_on_normal=True)
    panic_tiers = lambda r: {p.tier for p in r.points if p.status == "panic"}  # noqa: E731
    assert max(panic_tiers(default)) == 4
    assert panic_tiers(seed) == {1}


def test_recovering_signal_expires_after_the_calm_period(real_redis):
    """Default mode: the clock outlives the panic by the 15-min calm period; seed mode ends it at once."""
    default = replay_scenario(real_redis, "recovering", key_prefix="r:", minutes=100)
    seed = replay_scenario(real_redis, "recovering", key_prefix="r:", minutes=100, end_on_normal=True)
    # the signal turns calm at 60 % of 100 minutes: the last panic observation is at minute 59
    assert default.points[59 + 14].clock_min is not None and default.points[59 + 15].clock_min is None
    assert seed.points[60].clock_min is None


def test_unknown_scenario_is_rejected():
    """A scenario name outside the list is an error naming the choices."""
    assert set(SCENARIOS) == {"sustained", "flickering", "recovering"}
    with pytest.raises(ValueError, match="sustained, flickering, recovering"):
        scenario_signal("chaotic", 10)


def test_replay_refuses_to_draw_an_outage_as_a_scenario():
    """A replay whose Redis fails stops with the error instead of drawing fail-safe answers as the scenario."""
    from breaker import redis_client
    from breaker.ops.drills import unreachable_loopback_url

    client = redis_client(unreachable_loopback_url())
    with pytest.raises(RuntimeError, match="replay stopped at minute 0: "):
        replay_scenario(client, "sustained", key_prefix="r:", minutes=5)


def test_multi_worker_drill_keeps_the_password_off_the_command_line(monkeypatch, acl_user, client_for):
    """Issue 14 finding 9: worker processes get the Redis URL (password included) by environment, not argv."""
    import subprocess

    from breaker.ops import drills

    url = acl_user("drill", "s3cret-drill-pw", "+@all")
    spawned = []
    real_popen = subprocess.Popen

    def recording_popen(args, **kwargs):
        spawned.append(args)
        return real_popen(args, **kwargs)

    monkeypatch.setattr(drills.subprocess, "Popen", recording_popen)
    drill = multi_worker_drill(url, client_for(url), key_prefix="brain:", threads=1, processes=2)
    assert drill.agreed, drill.workers
    assert len(spawned) == 2 and not any("s3cret-drill-pw" in arg for args in spawned for arg in args)


def test_a_failed_seed_mode_replay_leaves_no_long_lived_scratch_keys(real_redis, monkeypatch):
    """A seed-mode replay (simulated key TTL 86 400 s) that fails mid-way and cannot clean up (Redis gone):
    its scratch keys expire within REPLAY_KEY_TTL_S on their own, not after a day (issue 20)."""
    from breaker.ops import drills

    real_signal = drills.scenario_signal

    def failing_signal(name, steps):
        for step, status in enumerate(real_signal(name, steps)):
            if step == 5:
                raise ConnectionError("Redis went away mid-replay")
            yield status

    monkeypatch.setattr(drills, "scenario_signal", failing_signal)
    monkeypatch.setattr(drills, "_cleanup_quietly", lambda client, namespace: None)  # the cleanup fails too
    with pytest.raises(ConnectionError):
        replay_scenario(real_redis, "sustained", key_prefix="r:", minutes=30, end_on_normal=True)
    left = list(real_redis.scan_iter(match="r:replay:*"))
    assert left, "the replay wrote its scratch clock before failing"

    def expires_soon(key):
        if real_redis.type(key) == b"hash" and real_redis.ttl(key) == -1:  # the heartbeats: per-field expiry
            fields = real_redis.hkeys(key)
            return all(0 < ttl <= drills.REPLAY_KEY_TTL_S for ttl in real_redis.httl(key, *fields))
        return 0 < real_redis.ttl(key) <= drills.REPLAY_KEY_TTL_S

    assert all(expires_soon(key) for key in left), {key: real_redis.ttl(key) for key in left}
