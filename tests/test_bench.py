"""The benchmark's own parts: a faithful seed baseline, honest counters, a table that shows misses."""

import structlog

from bench.console import counting_round_trips
from bench.harness import configure_bench_logging, server_commands
from bench.seed_protocol import SeedBreaker
from bench.table import Row, render, times
from breaker import PanicClock, VIXCircuitBreaker


def calls_by_command(client, before):
    after = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {"calls": 0})["calls"]
        for name, stats in after.items()
        if name != "cmdstat_info" and stats["calls"] != before.get(name, {"calls": 0})["calls"]
    }


def test_seed_panic_call_is_set_get_expire_and_one_info_line(real_redis, fake_clock):
    """A seed panic call sends SET, GET, EXPIRE as three commands and writes one INFO line."""
    counter = configure_bench_logging("INFO")
    seed = SeedBreaker(real_redis, clock=fake_clock)
    before = real_redis.info("commandstats")
    assert seed.get_ttl(60, "panic", {"league": "Ligue 2"}) == (0, "PANIC_FULL")
    assert calls_by_command(real_redis, before) == {"set": 1, "get": 1, "expire": 1}
    assert counter.counts == {"info:VIX_TTL_DECISION": 1}


def test_seed_calm_call_is_one_del(real_redis, fake_clock):
    """A seed calm call sends one DEL and answers the base TTL."""
    seed = SeedBreaker(real_redis, clock=fake_clock)
    before = real_redis.info("commandstats")
    assert seed.get_ttl(60, "normal") == (60, "NORMAL")
    assert calls_by_command(real_redis, before) == {"del": 1}


def test_seed_and_ours_agree_on_the_tier(real_redis, fake_clock):
    """Twenty minutes into a low-stakes panic both answer tier 2 (5 s, PANIC_PARTIAL)."""
    seed = SeedBreaker(real_redis, key_prefix="seed:", clock=fake_clock)
    ours = VIXCircuitBreaker(real_redis, key_prefix="ours:", clock=fake_clock, server_time=False)
    seed.get_ttl(60, "panic")
    ours.get_ttl(60, "panic")
    fake_clock.advance(20 * 60)
    assert seed.get_ttl(60, "panic") == ours.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")


def test_line_counter_sees_only_lines_that_are_written(fake_clock):
    """At INFO, DEBUG lines never reach the counter; INFO lines do, by event name."""
    counter = configure_bench_logging("INFO")
    log = structlog.get_logger("t")
    log.debug("HIDDEN")
    log.info("SHOWN")
    assert counter.counts == {"info:SHOWN": 1}


def test_round_trip_counter_counts_a_pipeline_once(real_redis, fake_clock):
    """A MULTI/EXEC read is one round trip however many commands it carries."""
    PanicClock(real_redis).observe(fake_clock())
    before = server_commands(real_redis)
    with counting_round_trips() as trips:
        PanicClock(real_redis).read(fake_clock())
    assert trips.count == 1
    assert server_commands(real_redis) - before == 6


def test_table_shows_a_missed_goal():
    """A missed goal is spelled out in the table; small ratios read as 1/N."""
    table = render([Row("1", "x", "1/s", "2/s", times(0.5), "≥ 2×", False), Row("2", "y", "0")])
    assert "**MISSED**" in table and table.count("\n") == 3
    assert times(1 / 440) == "1/440" and times(286.4) == "286×" and times(4.666) == "4.67×"


def test_bench_heartbeats_are_a_readable_fleet_of_1000(real_redis):
    """The Fleet bench reads 1000 beats the reader accepts, stale and failing ones among them, in one round trip."""
    from bench.console import write_heartbeats
    from breaker.ops.fleet import read_fleet

    write_heartbeats(real_redis)
    with counting_round_trips() as trips:
        view = read_fleet(PanicClock(real_redis))
    assert trips.count == 1
    assert len(view.workers) == 1000 and not view.invalid
    assert (view.counts["stale"], view.counts["fail_safe"]) == (100, 40)


def test_the_schedule_bench_measures_the_old_and_new_round_trip(valkey_server, monkeypatch):
    """Figure S runs (few trips): the pre-issue-23 script loads under its own sha and every kind has a figure."""
    from types import SimpleNamespace

    from bench import schedule

    monkeypatch.setattr(schedule, "TRIPS", 5)
    assert "schedule_step_safe" not in schedule.script_without_fragment()
    rows = schedule.schedule_step(SimpleNamespace(url=valkey_server.connection_url))
    assert len(rows) == len(schedule.KINDS) and all(row.ours.endswith("µs") for row in rows)
