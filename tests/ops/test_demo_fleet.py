"""The demo fleet alone against a real server: heartbeats, the tiers each class climbs, backend load falling."""

import os
import subprocess
import sys
import time
from pathlib import Path

from breaker import PanicClock
from breaker.ops.demo.load import read_points
from breaker.ops.demo.marker import read_marker
from breaker.ops.fleet import read_fleet

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "fleettest:"
SCENARIO = """
title = "short long panic"
speed = 900

[[phase]]
name = "calm"
minutes = 2

[[phase]]
name = "long panic"
minutes = 480
panic_share = 0.15

[[phase]]
name = "recovery"
minutes = 30
"""


def _first_appearances(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def test_fleet_plays_a_long_panic_with_heartbeats_tiers_and_falling_load(real_redis, redis_url, tmp_path):
    """2 processes × 3 identities: 6 heartbeating workers; every class climbs from tier 1 to 4 on the heartbeats
    and on the clock; the backend load at tier 1 is over twice the load at tier 4 (per class, and in total)."""
    scenario = tmp_path / "short.toml"
    scenario.write_text(SCENARIO)
    env = {**os.environ, "REDIS_URL": redis_url, "BREAKER_KEY_PREFIX": PREFIX}
    fleet = subprocess.Popen(
        [sys.executable, "-m", "breaker.ops.demo", "--scenario", str(scenario), "--processes", "2",
         "--identities", "3", "--per-class", "12", "--once"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    clock = PanicClock(real_redis, key_prefix=PREFIX)
    workers, states, tiers = set(), set(), {c: [] for c in ("high_stakes", "medium_stakes", "low_stakes")}
    runs = set()
    try:
        deadline = time.monotonic() + 180
        while fleet.poll() is None and time.monotonic() < deadline:
            view = read_fleet(clock)
            workers.update(w.worker_id for w in view.workers if w.state not in ("stale", "gone"))
            states.update(w.state for w in view.workers)
            for stakes, seq in tiers.items():
                top = max((w.tiers.get(stakes, 0) for w in view.workers), default=0)
                if top:
                    seq.append(top)
            marker = read_marker(real_redis, PREFIX)
            if marker is not None and marker.run:
                runs.add(marker.run)
            time.sleep(0.2)  # polling a running fleet, not waiting for simulated time
    finally:
        if fleet.poll() is None:
            fleet.kill()
        output = fleet.communicate()[0].decode(errors="replace")
    assert fleet.returncode == 0, output
    assert len(workers) == 6, (workers, output)
    assert {"panic", "calm"} <= states
    for stakes, seq in tiers.items():  # beats say the last tier answered: a short tier may fall between polls
        climbed = _first_appearances(seq)
        assert climbed[0] == 1 and climbed[-1] == 4 and climbed == sorted(climbed), (stakes, climbed)
    (run,) = runs
    points = read_points(real_redis, PREFIX, run=run)
    for stakes in tiers:  # one point a second: low stakes' tier 1 (15 min) lasts one second at 900×
        clock_tiers = _first_appearances(p.tiers[stakes] for p in points if p.tiers[stakes])
        assert clock_tiers in ([1, 2, 3, 4], [2, 3, 4]), (stakes, clock_tiers)
    for stakes in ("high_stakes", "medium_stakes"):
        at = {tier: [p.ours[stakes] for p in points if p.tiers[stakes] == tier] for tier in (1, 4)}
        assert at[1] and at[4], (stakes, at)
        assert sum(at[1]) / len(at[1]) > 2 * sum(at[4]) / len(at[4]), (stakes, at)
    early = [p.ours_total for p in points if 0 < p.tiers["high_stakes"] == 1]
    late = [p.ours_total for p in points if p.tiers["high_stakes"] == 4]
    assert sum(early) / len(early) > 2 * sum(late) / len(late), (early, late)
    seed_panic = [p.seed_total for p in points if p.tiers["high_stakes"] == 4]
    ours_panic = [p.ours_total for p in points if p.tiers["high_stakes"] == 4]
    assert sum(seed_panic) > 2 * sum(ours_panic)  # the seed's clock never left tier 1
    assert read_marker(real_redis, PREFIX) is None and not real_redis.exists(f"{PREFIX}panic_start_ts")
