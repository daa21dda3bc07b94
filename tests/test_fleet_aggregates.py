"""Issue 24, the round-trip half: per-bucket aggregates written by the round trip, O(1) summaries, epochs, skew
and the panic-start burst spread. All on a real server."""

from __future__ import annotations

import json
import time

import pytest

from breaker import VIXCircuitBreaker, refresh
from breaker.clock import PanicClock
from breaker.heartbeat import parse_beat
from breaker.ops import fleet_summary
from breaker.ops.fleet_summary import read_summary
from breaker.policy import PanicMode

PREFIX = "brain:"


@pytest.fixture
def one_second_buckets(monkeypatch):
    """Buckets of one second, so that a test waits at most a second (polling) for its bucket to complete."""
    monkeypatch.setattr(refresh, "AGG_BUCKET_S", 1)
    monkeypatch.setattr(fleet_summary, "AGG_BUCKET_S", 1)


def calls(client, command: str) -> int:
    return client.info("commandstats").get(f"cmdstat_{command}", {"calls": 0})["calls"]


def summary_after_bucket(client, **options) -> fleet_summary.FleetSummary:
    """read_summary once the bucket the test's beats fell in is complete (polled, short sleeps)."""
    clock = PanicClock(client)
    first = clock.server_now()
    deadline = time.monotonic() + 5
    while clock.server_now() < int(first) + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return read_summary(clock, **options)


def test_beats_add_to_the_aggregates_in_the_round_trip_they_already_make(real_redis, one_second_buckets):
    """Three workers (two calm, one in a panic): one script call each (no extra round trip), and the bucket's
    aggregate holds their beats, answers, and distinct workers by state and tier."""
    workers = [VIXCircuitBreaker(real_redis) for _ in range(3)]
    real_redis.script_load(refresh.SCRIPT)  # no NOSCRIPT retry in the count
    before = calls(real_redis, "evalsha") + calls(real_redis, "eval")
    workers[0].get_ttl(60, "normal")
    workers[1].get_ttl(60, "normal")
    workers[2].get_ttl(60, "panic", {"league": "Champions League"})
    assert calls(real_redis, "evalsha") + calls(real_redis, "eval") == before + 3
    for w in workers:  # the next round trips carry the answers counted above
        w._sync = w._sync._replace(at=-1e18)
        w._beat_at = -1e18
        w._unsteady()
        w.get_ttl(60, "panic" if w is workers[2] else "normal", {"league": "Champions League"})
    view = summary_after_bucket(real_redis)
    assert view.reporting == 3
    assert view.counts["calm"] == 2 and view.counts["panic"] == 1  # a first beat counts the call it is made for
    assert view.tiers["high_stakes"] == {1: 1}
    assert view.beats == 6
    assert view.epoch == 1 and view.epochs == {1: 1}
    assert view.disagreeing == 0


@pytest.mark.parametrize(("status", "state"), [("panic", "panic"), ("normal", "calm")])
def test_a_first_beat_counts_in_the_state_of_the_call_it_is_made_for(real_redis, one_second_buckets, status, state):
    """A worker's first round trip has no answer counted yet: it counts in the state of the call it is made for
    (a fleet that starts in a panic shows as panicking from its first beats, not as calm for a bucket; the
    browser's Fleet test saw "Panic 0" for 10 s when workers started at a bucket's end). An override is read in
    that same round trip, so a first beat cannot know it yet: it counts by the signal."""
    VIXCircuitBreaker(real_redis).get_ttl(60, status, {"league": "Champions League"})
    view = summary_after_bucket(real_redis)
    assert view.reporting == 1
    assert {s: n for s, n in view.counts.items() if n} == {state: 1}


def test_the_summary_reads_no_heartbeat_whatever_the_fleet_size(real_redis, one_second_buckets):
    """5 000 heartbeats in the hash: read_summary counts from the aggregates (before: every summary parsed up to
    10 000 beats); of the hash it reads one HSCAN page, the pruning walk's (tests/ops/test_fleet_prune.py)."""
    pipe = real_redis.pipeline(transaction=False)
    for i in range(5000):
        pipe.hset(f"{PREFIX}workers", f"h:{i}:0000", json.dumps({"v": 1, "seen": 1.0, "interval": 1.0}))
    pipe.execute()
    VIXCircuitBreaker(real_redis).get_ttl(60, "normal")
    scans = [calls(real_redis, c) for c in ("hscan", "hgetall", "hvals")]
    view = summary_after_bucket(real_redis)
    assert [calls(real_redis, c) for c in ("hscan", "hgetall", "hvals")] == [scans[0] + 1, scans[1] + 1, scans[2]]
    assert view.reporting == 1 and view.counts["calm"] == 1
    assert view.fields_total == 5001


def test_stale_is_who_beat_in_the_window_before_and_not_in_the_last(real_redis, one_second_buckets):
    clock = PanicClock(real_redis)
    keys = clock._keys
    now = clock.server_now()
    current = int(now)
    for bucket, ids in ((current - 2, ["a", "b", "c"]), (current - 1, ["a"])):
        for worker in ids:
            real_redis.pfadd(f"{PREFIX}fleet_agg:{bucket}:calm", worker)
    assert keys[4] == f"{PREFIX}fleet_agg".encode()
    view = read_summary(clock)
    assert view.reporting == 1 and view.counts["stale"] == 2


def test_a_worker_an_hour_ahead_shows_its_skew(real_redis, one_second_buckets):
    """The beat carries skew_s (the worker's clock minus the server's, measured by the script), the aggregate its
    max and min over workers."""
    ahead = VIXCircuitBreaker(real_redis, clock=lambda: time.time() + 3600)
    on_time = VIXCircuitBreaker(real_redis)
    ahead.get_ttl(60, "normal")
    on_time.get_ttl(60, "normal")
    raw = real_redis.hget(f"{PREFIX}workers", ahead.worker_id)
    beat = parse_beat(ahead.worker_id, raw, time.time())
    assert beat.skew_s == pytest.approx(3600, abs=5)
    assert parse_beat(on_time.worker_id, real_redis.hget(f"{PREFIX}workers", on_time.worker_id),
                      time.time()).skew_s == pytest.approx(0, abs=5)
    view = summary_after_bucket(real_redis)
    assert view.skew_max == pytest.approx(3600, abs=5)
    assert view.skew_min == pytest.approx(0, abs=5)


def test_each_new_start_gets_a_new_epoch(real_redis, fake_clock):
    """The first writer bumps {prefix}panic_epoch in the same step; observers learn it; beats report it."""
    worker = VIXCircuitBreaker(real_redis, clock=fake_clock)
    worker.get_ttl(60, "panic")
    assert worker._epoch == 1 and real_redis.get(f"{PREFIX}panic_epoch") == b"1"
    other = VIXCircuitBreaker(real_redis, clock=fake_clock)
    other.get_ttl(60, "panic")
    assert other._epoch == 1 and real_redis.get(f"{PREFIX}panic_epoch") == b"1"  # an observer does not bump
    fake_clock.advance(2)
    worker.get_ttl(60, "panic")  # this beat reports what the worker answered from
    assert json.loads(real_redis.hget(f"{PREFIX}workers", worker.worker_id))["epoch"] == 1
    real_redis.delete(f"{PREFIX}panic_start_ts")  # the panic ended (expired); a new one starts
    fake_clock.advance(2)
    worker.get_ttl(60, "panic")
    assert worker._epoch == 2 and real_redis.get(f"{PREFIX}panic_epoch") == b"2"


def test_an_unusable_start_replaced_is_a_new_epoch_and_a_garbage_counter_is_replaced(real_redis, fake_clock):
    real_redis.set(f"{PREFIX}panic_start_ts", "garbage")
    real_redis.set(f"{PREFIX}panic_epoch", "not a number")
    worker = VIXCircuitBreaker(real_redis, clock=fake_clock)
    worker.get_ttl(60, "panic")
    assert worker._epoch == 1 and real_redis.get(f"{PREFIX}panic_epoch") == b"1"


def test_a_counter_set_back_still_gives_the_next_start_a_new_epoch(real_redis, fake_clock):
    """A failover can lose the INCR with the start: the counter is back at 3 while workers saw 4. A worker that
    knows epoch 4 and starts the next panic makes it 5, never 4 again (the lost start stays visible)."""
    worker = VIXCircuitBreaker(real_redis, clock=fake_clock)
    real_redis.set(f"{PREFIX}panic_epoch", "3")
    worker._epoch = 4
    worker.get_ttl(60, "panic")
    assert worker._epoch == 5 and real_redis.get(f"{PREFIX}panic_epoch") == b"5"


def test_a_calm_worker_meeting_a_panic_observes_at_its_turn_not_at_once(real_redis, fake_clock):
    """The panic-start burst spread: after a calm round trip, a panic call answers tier 1 (0, PANIC_FULL) from
    local state, not counted fail-safe, and the worker observes the clock once its share of the interval has
    passed (before: every calm worker made a round trip at the panic's first call)."""
    worker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=10)
    worker._observe_after_s = 4.0
    worker.get_ttl(60, "normal")
    trips = calls(real_redis, "evalsha") + calls(real_redis, "eval")
    assert worker.get_ttl(60, "panic") == (0, PanicMode.PANIC_FULL)
    fake_clock.advance(3.9)
    assert worker.get_ttl(60, "panic") == (0, PanicMode.PANIC_FULL)
    assert calls(real_redis, "evalsha") + calls(real_redis, "eval") == trips
    assert real_redis.get(f"{PREFIX}panic_start_ts") is None
    fake_clock.advance(0.2)
    worker.get_ttl(60, "panic")
    assert calls(real_redis, "evalsha") + calls(real_redis, "eval") == trips + 1
    assert real_redis.get(f"{PREFIX}panic_start_ts") is not None
    taken = worker._answers.take()
    assert taken[1] == 0  # no fail-safe answer counted: tier 1 is what a new panic answers


def test_the_spread_stays_within_one_interval_and_is_off_at_interval_zero(real_redis, fake_clock):
    delays = [VIXCircuitBreaker(real_redis, refresh_interval_s=5)._observe_after_s for _ in range(200)]
    assert all(0 <= d < 5 for d in delays) and max(delays) - min(delays) > 2.5
    worker = VIXCircuitBreaker(real_redis, clock=fake_clock, refresh_interval_s=0)
    worker.get_ttl(60, "normal")
    worker.get_ttl(60, "panic")
    assert real_redis.get(f"{PREFIX}panic_start_ts") is not None  # refresh_interval_s=0: every panic call observes


def force_trip(worker: VIXCircuitBreaker) -> None:
    """Make the worker's next call a round trip with a beat (as one interval later)."""
    worker._sync = worker._sync._replace(at=-1e18)
    worker._beat_at = -1e18
    worker._unsteady()


def test_the_exporter_shows_skew_epochs_and_counts_from_the_aggregates(real_redis, one_second_buckets):
    from breaker.ops.exporter import FleetCollector

    ahead = VIXCircuitBreaker(real_redis, clock=lambda: time.time() + 3600)
    ahead.get_ttl(60, "panic")
    force_trip(ahead)
    ahead.get_ttl(60, "panic")
    clock = PanicClock(real_redis)
    first = clock.server_now()
    while clock.server_now() < int(first) + 1:
        time.sleep(0.05)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in FleetCollector(clock).collect() for s in family.samples}
    assert samples[("vix_breaker_worker_clock_skew_max_seconds", ())] == pytest.approx(3600, abs=5)
    assert samples[("vix_breaker_workers_reporting", ())] == 1
    assert samples[("vix_breaker_workers", (("state", "panic"),))] == 1
    assert samples[("vix_breaker_panic_epoch", ())] == 1
    assert samples[("vix_breaker_panic_epochs_reported", ())] == 1


def test_status_shows_an_epoch_change(real_redis, redis_url, one_second_buckets):
    """Workers still answering from epoch 1 while the counter says 2 (a new start, or one lost in a failover):
    `vix-breaker status` says so."""
    from click.testing import CliRunner

    from breaker.ops.cli import cli

    old = VIXCircuitBreaker(real_redis)
    old.get_ttl(60, "panic")
    real_redis.delete(f"{PREFIX}panic_start_ts")
    VIXCircuitBreaker(real_redis).get_ttl(60, "panic")  # the next start: epoch 2
    force_trip(old)
    old.get_ttl(60, "panic")  # its beat reports epoch 1, what it answered from
    clock = PanicClock(real_redis)
    first = clock.server_now()
    while clock.server_now() < int(first) + 1:
        time.sleep(0.05)
    result = CliRunner().invoke(cli, ["status"], env={"REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output
    assert "EPOCH CHANGED" in result.output and "epoch     2" in result.output
    doc = json.loads(CliRunner().invoke(cli, ["status", "--json"], env={"REDIS_URL": redis_url}).output)
    assert doc["fleet"]["epoch"] == 2 and doc["fleet"]["epochs"] == {"1": 1}
