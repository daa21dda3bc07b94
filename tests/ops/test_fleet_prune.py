"""Pruning with bounded work per read (issue 21 finding 12, issue 24): 200 000 garbage fields neither make one read
touch them all nor survive many reads; future-dated beats are invalid, never live workers."""

from __future__ import annotations

import json

import pytest

from breaker import PanicClock
from breaker.heartbeat import beat_json
from breaker.ops import read_fleet
from breaker.ops.fleet import PAGE_FIELDS, READ_MAX_FIELDS
from breaker.ops.fleet_prune import PRUNE_BATCH, PRUNE_WALK_FIELDS, prune_cursor_key

GARBAGE = 200_000
LIVE = 50


def _now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _beat(seen: float, pid: int = 1, interval_s: float = 1.0) -> str:
    return beat_json(host="h", pid=pid, started=seen - 100, interval_s=interval_s, calls={"NORMAL": 1}, fail_safe=0,
                     tiers={}, override=None, error=None, version="0.1.0", seen=seen)


def _commands(client) -> dict[str, int]:
    return {name[len("cmdstat_"):]: int(s["calls"]) for name, s in client.info("commandstats").items()}


@pytest.fixture
def flooded(real_redis):
    """LIVE live workers among GARBAGE garbage, long-dead and future-dated fields, written in pipelined batches."""
    now = _now(real_redis)
    kinds = ("not json", _beat(now - 7200), _beat(now + 3600), '{"v":1}')  # garbage, dead 2 h, 1 h ahead, no seen
    pipe = real_redis.pipeline(transaction=False)
    for batch in range(0, GARBAGE, 10_000):
        pipe.hset("brain:workers", mapping={f"junk:{i}": kinds[i % 4] for i in range(batch, batch + 10_000)})
        pipe.execute()
    real_redis.hset("brain:workers", mapping={f"h:{i}:abcd": _beat(now, i, 60.0) for i in range(LIVE)})  # calm 3 min
    return real_redis


def test_each_read_touches_a_bounded_number_of_fields_and_the_hash_shrinks(flooded):
    """No HGETALL; each read scans at most READ_MAX_FIELDS (+ the walk) in HSCAN pages and deletes what is dead;
    after a bounded number of reads the hash fits one read, the live workers are all shown, none of the rest
    counted, and what is left of the rest expires within 60 s."""
    clock = PanicClock(flooded)
    sizes = [flooded.hlen("brain:workers")]
    reads = 0
    per_read_limit = READ_MAX_FIELDS + PRUNE_WALK_FIELDS
    while True:
        flooded.config_resetstat()
        view = read_fleet(clock)
        reads += 1
        commands = _commands(flooded)
        assert "hgetall" not in commands and "hkeys" not in commands and "hvals" not in commands
        pages = -(-READ_MAX_FIELDS // PAGE_FIELDS) + -(-PRUNE_WALK_FIELDS // PRUNE_BATCH)
        assert commands["hscan"] <= pages, commands  # each HSCAN has COUNT <= 1000
        assert commands.get("hdel", 0) <= pages + 2  # batches of PRUNE_BATCH, per group (read, walk)
        slack = 1.02  # HSCAN's COUNT is a hint: a page may hold a few more fields (one bucket's worth)
        assert view.scanned <= READ_MAX_FIELDS * slack
        assert view.pruned <= per_read_limit * slack
        assert all(w.state == "gone" or (w.worker_id.startswith("h:") and w.state == "calm") for w in view.workers)
        assert view.counts["calm"] + view.counts["gone"] == len(view.workers)  # the future-dated are not workers
        sizes.append(flooded.hlen("brain:workers"))
        if view.complete:
            break
        assert reads < 2 * GARBAGE // per_read_limit, "the garbage survives reads"
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] <= READ_MAX_FIELDS
    assert reads >= GARBAGE // per_read_limit, "work per read is bounded: it took several reads"
    # Once the hash fits one read: gone beats are deleted, garbage and future-dated fields listed as invalid
    # (never counted) and given a 60 s field expiry; the live workers are all there, with no expiry.
    view = read_fleet(clock)
    assert view.complete and view.counts["calm"] == LIVE and not view.counts["gone"]
    assert sum(view.counts.values()) == len(view.workers) == LIVE
    rest = [name for name in flooded.hkeys("brain:workers") if not name.startswith(b"h:")]
    assert len(rest) == len(view.invalid)
    assert all(0 < ttl <= 60 for ttl in (flooded.httl("brain:workers", *rest) if rest else []))
    live = [f"h:{i}:abcd" for i in range(LIVE)]
    assert set(flooded.httl("brain:workers", *live)) == {-1}


def test_a_future_dated_beat_is_invalid_and_pruned(real_redis):
    """A beat `seen` an hour ahead of the server is listed as invalid, not counted, and removed by the server 60 s
    after a read saw it (a field expiry: the console shows it meanwhile)."""
    now = _now(real_redis)
    real_redis.hset("brain:workers", mapping={"h:1:aaaa": _beat(now), "h:2:bbbb": _beat(now + 3600)})
    view = read_fleet(PanicClock(real_redis), prune=False)
    assert [w.worker_id for w in view.workers] == ["h:1:aaaa"] and "future" in view.invalid["h:2:bbbb"]
    assert sum(view.counts.values()) == 1
    read_fleet(PanicClock(real_redis))
    assert real_redis.httl("brain:workers", "h:1:aaaa", "h:2:bbbb")[0] == -1  # listed a minute more, then gone
    assert 0 < real_redis.httl("brain:workers", "h:2:bbbb")[0] <= 60


def test_a_recent_beat_of_another_format_version_is_kept(real_redis):
    """A newer writer's beat (v 2) is invalid to this reader but kept while recent; gone, it is pruned."""
    now = _now(real_redis)
    real_redis.hset("brain:workers", mapping={
        "new:1:aaaa": json.dumps({"v": 2, "seen": now, "interval": 1.0}),
        "new:2:bbbb": json.dumps({"v": 2, "seen": now - 7200, "interval": 1.0}),
    })
    view = read_fleet(PanicClock(real_redis))
    assert set(view.invalid) == {"new:1:aaaa", "new:2:bbbb"} and view.pruned == 1
    assert real_redis.hkeys("brain:workers") == [b"new:1:aaaa"]


def test_the_walk_remembers_its_cursor(flooded):
    """When the read does not cover the hash, the prune walk continues from a cursor kept in a small key."""
    read_fleet(PanicClock(flooded))
    cursor = flooded.get(prune_cursor_key("brain:"))
    assert cursor is not None and int(cursor) != 0 and 0 < flooded.ttl(prune_cursor_key("brain:")) <= 3600


def test_garbage_is_removed_on_servers_with_and_without_field_expiry(server_redis, server_kind):
    """Valkey 9: garbage in a small hash gets a 60 s field expiry (HEXPIRE NX); Redis 7 has no HEXPIRE: HDEL."""
    now = _now(server_redis)
    server_redis.hset("brain:workers", mapping={"h:1:aaaa": _beat(now), "junk": "not json"})
    view = read_fleet(PanicClock(server_redis))
    assert set(view.invalid) == {"junk"} and view.pruned == 1
    if server_kind == "redis7":
        assert server_redis.hkeys("brain:workers") == [b"h:1:aaaa"]
    else:
        assert 0 < server_redis.httl("brain:workers", "junk")[0] <= 60


@pytest.mark.parametrize("stored", [b"1" + b"0" * 30, b"18446744073709551616"])
def test_a_stored_cursor_the_server_refuses_restarts_the_walk(real_redis, stored):
    """Review (ops): a cursor key holding a number HSCAN refuses (2**64 or more: "invalid cursor", written by hand
    or by another tool) failed every read's walk, silently (pruning is housekeeping), until the key expired an hour
    later: garbage beyond one read was not reached meanwhile. Such a cursor restarts the walk from 0."""
    from breaker.ops.fleet_prune import walk_and_prune

    real_redis.hset("brain:workers", mapping={f"junk:{i}": "not json" for i in range(50)})
    real_redis.set(prune_cursor_key("brain:"), stored, ex=3600)
    assert walk_and_prune(real_redis, "brain:", _now(real_redis), lambda name, raw: "garbage") == 50
    assert real_redis.hlen("brain:workers") == 0


def test_summary_reads_walk_the_hash_in_a_fleet_that_writes_aggregates(real_redis):
    """The scrape, `status`, Live and Fleet read the aggregates, not the heartbeats (issue 24): each such read
    also walks one page of the hash, so dead beats (no per-field expiry: servers before 7.4, or written by hand),
    garbage and future-dated fields go in a fleet whose summaries never fall back to the beats. One HSCAN of
    PRUNE_BATCH per read; the live workers stay."""
    from breaker import VIXCircuitBreaker
    from breaker.ops.fleet_summary import read_summary

    now = _now(real_redis)
    junk = 12_000  # larger than one read: deleted at once; once it fits one read, the rest get their grace
    kinds = ("not json", _beat(now - 7200), _beat(now + 3600))
    real_redis.hset("brain:workers", mapping={f"junk:{i}": kinds[i % 3] for i in range(junk)})
    worker = VIXCircuitBreaker(real_redis)
    worker.get_ttl(60, "normal")  # a live worker that writes the aggregates (no fallback to the beats)
    clock = PanicClock(real_redis)
    from breaker.ops.fleet_prune import GRACE_S

    def left() -> list[bytes]:  # fields still to be dealt with: neither deleted nor on their grace expiry
        names = [name for name in real_redis.hkeys("brain:workers") if name.startswith(b"junk:")]
        return [name for name, ttl in zip(names, real_redis.httl("brain:workers", *names) if names else [])
                if not 0 < ttl <= GRACE_S]

    reads = 0
    while left() and reads < 40:
        real_redis.config_resetstat()
        summary = read_summary(clock, fallback=False)
        reads += 1
        commands = _commands(real_redis)
        assert commands.get("hscan", 0) == 1 and "hvals" not in commands and "hkeys" not in commands
        assert summary.pruned <= 2 * PRUNE_BATCH  # HSCAN's COUNT is a hint: a page may hold a little more
    assert reads <= 2 * junk // PRUNE_BATCH + 2, reads
    assert not left() and worker.worker_id.encode() in real_redis.hkeys("brain:workers")
    assert real_redis.hlen("brain:workers") < junk  # the dead beats, and what came before the hash fit one read


def test_a_summary_read_gives_garbage_its_grace_while_the_hash_fits_one_read(real_redis):
    """A small hash: garbage and future-dated fields stay listed for GRACE_S (the console shows them as invalid),
    then the server removes them; a dead beat is deleted at once."""
    from breaker.ops.fleet_prune import GRACE_S
    from breaker.ops.fleet_summary import read_summary

    now = _now(real_redis)
    real_redis.hset("brain:workers", mapping={"junk:g": "not json", "junk:f": _beat(now + 3600),
                                              "junk:d": _beat(now - 7200), "h:1:abcd": _beat(now, 1, 60.0)})
    summary = read_summary(PanicClock(real_redis))
    assert summary.pruned == 3
    assert set(real_redis.hkeys("brain:workers")) == {b"junk:g", b"junk:f", b"h:1:abcd"}
    assert all(0 < ttl <= GRACE_S for ttl in real_redis.httl("brain:workers", "junk:g", "junk:f"))
    assert real_redis.httl("brain:workers", "h:1:abcd") == [-1]
