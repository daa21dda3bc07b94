"""The demo fleet's parts: scenarios, synthetic odds, the seed model, caches, marker, load, clock moves."""

import os
import random
from pathlib import Path

import pytest

from breaker import MatchImportance, PanicClock, PanicMode, VIXCalculator, VIXCircuitBreaker
from breaker.ops.demo.accelerate import end_if_unobserved, move_start
from breaker.ops.demo.backend import SimulatedBackend
from breaker.ops.demo.conductor import Conductor, FleetShape, Playback
from breaker.ops.demo.load import LoadPoint, append_point, read_points, take_pending, tier_changes
from breaker.ops.demo.marker import pop_commands, read_marker, send_command
from breaker.ops.demo.market import MarketFeed, make_markets
from breaker.ops.demo.scenario import InvalidScenario, load_scenario, parse_scenario, scenario_names
from breaker.ops.demo.seed_model import SeedModel

HIGH, MEDIUM, LOW = MatchImportance.HIGH_STAKES, MatchImportance.MEDIUM_STAKES, MatchImportance.LOW_STAKES


def test_every_shipped_scenario_loads_and_ends_calm():
    """Each scenario file parses, and its last phase is calm long enough for the clock to end (15 min)."""
    assert {"calm", "market_panic", "long_panic", "flickering", "recovery", "tour"} <= set(scenario_names())
    for name in scenario_names():
        scenario = load_scenario(name)
        last = scenario.phases[-1]
        assert not any(last.panic_share.values()) and last.minutes >= 15, name


def test_long_panic_lasts_long_enough_for_high_stakes_tier_4():
    """The long panic holds a panic share for more than 360 scenario minutes (high stakes' tier 4)."""
    scenario = load_scenario("long_panic")
    assert sum(p.minutes for p in scenario.phases if any(p.panic_share.values())) > 360


def test_phase_shares_and_flicker():
    """A phase's share applies per class; flicker turns it off for the second half of each period."""
    scenario = parse_scenario({"phase": [
        {"minutes": 10},
        {"minutes": 40, "panic_share": {"low_stakes": 0.2}, "flicker_min": 10},
    ]}, name="t")
    assert scenario.at(5)[1][LOW] == 0.0
    phase, shares = scenario.at(12)
    assert phase.minutes == 40 and shares[LOW] == 0.2 and shares[HIGH] == 0.0
    assert scenario.at(17)[1][LOW] == 0.0  # 7 minutes into a 10-minute flicker: the calm half
    assert scenario.at(60) == (None, {s: 0.0 for s in MatchImportance})


@pytest.mark.parametrize("data, word", [
    ({}, "phase"),
    ({"phase": [{"minutes": 0}]}, "minutes"),
    ({"phase": [{"minutes": 1, "panic_share": 2}]}, "0 to 1"),
    ({"phase": [{"minutes": 1, "panic_share": {"vip": 0.1}}]}, "vip"),
    ({"speed": 0, "phase": [{"minutes": 1}]}, "speed"),
])
def test_invalid_scenarios_are_refused_naming_the_field(data, word):
    """A scenario that cannot be played raises InvalidScenario naming what is wrong."""
    with pytest.raises(InvalidScenario, match=word):
        parse_scenario(data, name="bad")


def test_unknown_scenario_name_lists_the_shipped_ones():
    """An unknown name says which scenarios exist."""
    with pytest.raises(InvalidScenario, match="long_panic"):
        load_scenario("nope")


class StepClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _feed(per_class=12, seed=1):
    clock = StepClock()
    rng = random.Random(seed)
    return clock, MarketFeed(make_markets(per_class, rng), VIXCalculator(window_s=30, clock=clock), rng, rest_ticks=64)


def test_calm_markets_never_read_panic():
    """With no panic share the synthetic odds never make VIXCalculator say panic."""
    clock, feed = _feed(per_class=4)
    for _ in range(200):
        clock.now += 0.5
        feed.tick({})
        assert not [m for m in feed.markets if m.status == "panic"]


def test_panic_share_is_held_by_real_signal():
    """A 15 % share keeps about that share of each class reading panic through VIXCalculator, and only that."""
    clock, feed = _feed()
    panicking = {s: 0 for s in MatchImportance}
    ticks = 240
    for _ in range(ticks):
        clock.now += 0.5
        feed.tick({HIGH: 0.15, MEDIUM: 0.15, LOW: 0.0})
        for market in feed.markets:
            panicking[market.stakes] += market.status == "panic"
    for stakes in (HIGH, MEDIUM):
        assert 0.08 < panicking[stakes] / (ticks * 12) < 0.2
    assert panicking[LOW] == 0


def test_odds_stay_near_home():
    """Shocks go towards the home odds, so a long panic does not walk the odds away."""
    clock, feed = _feed(per_class=2)
    for _ in range(600):
        clock.now += 0.5
        feed.tick({s: 1.0 for s in MatchImportance})
    assert all(abs(m.level / m.home - 1) <= 0.09 for m in feed.markets)


def test_seed_model_resets_on_every_calm_answer():
    """The seed's clock restarts at each calm answer, so its tiers never advance under a mixed signal."""
    seed = SeedModel()
    assert seed.get_ttl(60, "panic", {"stakes": "low"}, 0.0) == (0, PanicMode.PANIC_FULL)
    assert seed.get_ttl(60, "panic", {"stakes": "low"}, 20 * 60.0) == (5, PanicMode.PANIC_PARTIAL)
    assert seed.get_ttl(60, "warning", {"stakes": "low"}, 20 * 60.0) == (60, PanicMode.NORMAL)
    assert seed.get_ttl(60, "panic", {"stakes": "low"}, 21 * 60.0) == (0, PanicMode.PANIC_FULL)


def test_cache_miss_is_one_get_ttl_and_a_signal_change_invalidates():
    """A backend read misses when its entry expired or the market's signal changed; TTL 0 misses every read."""
    market = make_markets(1, random.Random(0))[0]
    market.base_ttl = 60
    backend = SimulatedBackend(VIXCircuitBreaker(None), SeedModel(), random.Random(0))  # first entry: 51 s left
    backend.read(market, 0.0, 0.0)
    backend.read(market, 1.0, 0.0)
    assert backend.take_counts() == {"ours:high_stakes": 1, "seed:high_stakes": 1, "answers": 1}
    market.status = "panic"  # no Redis: the breaker fails safe to TTL 0, the seed model starts its clock
    for t in (2.0, 3.0, 4.0):
        backend.read(market, t, t)
    assert backend.take_counts() == {"ours:high_stakes": 3, "seed:high_stakes": 3, "answers": 3}


def test_first_entries_expire_at_spread_moments():
    """A fresh backend's first entries expire at random moments of their TTL, not all in the same second."""
    markets = make_markets(8, random.Random(1))
    backend = SimulatedBackend(VIXCircuitBreaker(None), SeedModel(), random.Random(2))
    for market in markets:
        backend.read(market, 0.0, 0.0)
    backend.take_counts()
    missed_by_second = []
    for second in range(1, 61):
        for market in markets:
            backend.read(market, float(second), 0.0)
        missed_by_second.append(backend.take_counts().get("answers", 0))
    assert sum(missed_by_second) >= len(markets) and max(missed_by_second) < len(markets) / 2


def test_marker_commands_and_load_round_trip(real_redis):
    """Commands queue and pop in order; pending counts empty atomically; load points read back by run."""
    send_command(real_redis, "d:", "play", scenario="tour", speed=120.0)
    send_command(real_redis, "d:", "pause")
    real_redis.rpush("d:demo:commands", "not json")
    assert [c["action"] for c in pop_commands(real_redis, "d:")] == ["play", "pause"]
    assert pop_commands(real_redis, "d:") == []
    with pytest.raises(ValueError):
        send_command(real_redis, "d:", "explode")
    real_redis.hincrby("d:demo:load:pending", "ours:low_stakes", 7)
    assert take_pending(real_redis, "d:") == {"ours:low_stakes": 7.0}
    assert take_pending(real_redis, "d:") == {}
    for i, (run, tier) in enumerate([("a", 1), ("b", 1), ("b", 2)]):
        append_point(real_redis, "d:", LoadPoint(at=float(i), run=run, minute=float(i), phase="p",
                                                 ours={"low_stakes": 3.0}, tiers={"low_stakes": tier}))
    points = read_points(real_redis, "d:", run="b")
    assert [p.minute for p in points] == [1.0, 2.0] and points[0].ours_total == 3.0
    assert [(c.stakes, c.tier_from, c.tier_to) for c in tier_changes(points)] == [("low_stakes", 1, 2)]
    assert read_marker(real_redis, "d:") is None


def test_move_start_back_keeps_expiry_and_leaves_no_clock_alone(real_redis):
    """The accelerator moves an existing start back with its expiry kept, and creates no clock."""
    clock = PanicClock(real_redis, key_prefix="d:")
    assert move_start(clock, 60.0) is None and not real_redis.exists("d:panic_start_ts")
    real_redis.set("d:panic_start_ts", "1000.0", ex=900)
    assert move_start(clock, 60.0) == 940.0
    assert float(real_redis.get("d:panic_start_ts")) == 940.0 and 0 < real_redis.ttl("d:panic_start_ts") <= 900
    assert move_start(clock, -10.0) == 950.0


def test_accelerated_calm_period_ends_an_unobserved_clock(real_redis):
    """The clock ends once its last observation is older than the (accelerated) calm period, not before."""
    clock = PanicClock(real_redis, key_prefix="d:")
    real_redis.set("d:panic_start_ts", "1000.0", ex=900)
    real_redis.set("d:panic_last_seen_ts", "2000.0", ex=900)
    assert not end_if_unobserved(clock, 2007.0, 8.0)
    assert end_if_unobserved(clock, 2008.0, 8.0)
    assert not real_redis.exists("d:panic_start_ts")


def test_playback_advances_at_speed_pauses_and_loops():
    """Scenario time runs at speed, stands still while paused, and a looping scenario starts a new run."""
    scenario = parse_scenario({"speed": 60, "loop": True, "phase": [{"minutes": 2, "panic_share": 0.1}]}, name="t")
    playback = Playback()
    playback.play(scenario, None, 0.0)
    playback.advance(1.0, 1.0)
    assert playback.scenario_s == 60.0 and playback.shares()[1][LOW] == 0.1
    playback.state = "paused"
    playback.advance(1.0, 2.0)
    assert playback.scenario_s == 60.0
    playback.state, run = "playing", playback.run
    playback.advance(1.0, 3.0)
    assert playback.scenario_s == 0.0 and playback.run != run and not playback.finished


def test_conductor_tick_accelerates_the_clock_and_writes_marker_and_load(real_redis):
    """One conductor tick at 120×: the start moves 119 s back, the marker says playing, a load point lands."""
    clock = StepClock()
    conductor = Conductor(real_redis, "d:", FleetShape(processes=1, identities=1), clock=clock, server_clock=clock)
    send_command(real_redis, "d:", "play", scenario="long_panic", speed=120)
    conductor.tick(0.0)
    real_redis.set("d:panic_start_ts", repr(clock.now), ex=900)
    real_redis.set("d:panic_last_seen_ts", repr(clock.now), ex=900)
    real_redis.hincrby("d:demo:load:pending", "ours:low_stakes", 30)
    clock.now += 1.0
    conductor.tick(1.0)
    assert float(real_redis.get("d:panic_start_ts")) == pytest.approx(clock.now - 1.0 - 119.0)
    marker = read_marker(real_redis, "d:")
    assert marker.state == "playing" and marker.scenario == "long_panic" and marker.minute == pytest.approx(2.0)
    assert 0 < real_redis.ttl("d:demo") <= 10
    point = read_points(real_redis, "d:")[-1]
    assert point.ours["low_stakes"] == pytest.approx(30.0) and point.tiers["low_stakes"] == 1
    send_command(real_redis, "d:", "stop")
    conductor.tick(0.25)
    assert read_marker(real_redis, "d:").state == "stopped" and not real_redis.exists("d:panic_start_ts")


def test_demo_workers_record_state_changes_for_history(real_redis):
    """One identity per demo process records its state changes in the audit trail: History shows the demo's
    tiers while it plays (issue 20); the others stay quiet."""
    from breaker.ops import AuditTrail
    from breaker.ops.demo.worker import SimulatedWorkerProcess

    process = SimulatedWorkerProcess(real_redis, "demo:", index=0, identities=3, per_class=1, tick_s=0.5,
                                     window_s=5.0)
    for backend in process.backends:
        backend.breaker.get_ttl(60, "panic", {"league": "Ligue 1"})
    entries = AuditTrail(real_redis, key_prefix="demo:").entries()
    assert [e.kind for e in entries] == ["state_change"]
    assert entries[0].tier == 1


def test_a_sigterm_while_the_process_exits_prints_no_traceback(tmp_path):
    """Ctrl-C on make demo: a SIGTERM that lands in an atexit callback (logging's shutdown) must not raise
    SystemExit there, which Python reports as a traceback."""
    import subprocess
    import sys

    script = tmp_path / "child.py"
    script.write_text(
        "import atexit, os, signal\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))  # registered first: runs last, like logging's\n"
        "from breaker.ops.demo.lifetime import exit_on_sigterm\n"
        "exit_on_sigterm()\n"
    )
    root = Path(__file__).resolve().parents[2]
    # The script lives in tmp_path, so its own directory (not the cwd) is sys.path[0]: the project must be on
    # PYTHONPATH, or a clean clone without `pip install -e .` fails on the import instead of on the signal.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30,
                          cwd=str(root), env=env)
    assert "ModuleNotFoundError" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
