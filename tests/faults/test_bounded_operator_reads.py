"""Operator reads are bounded as a whole (issue 21, finding 11): a server trickling its reply a byte every few ms
(each recv well inside the 1 s socket timeout) cannot hold a scrape, `vix-breaker status`, the console's clock
read or its fleet read past the operator-read deadline. Uses the trickling proxy of the round-trip tests."""

from __future__ import annotations

import time

import pytest
import redis
from click.testing import CliRunner

from breaker import PanicClock, redis_client
from breaker.heartbeat import beat_json
from breaker.ops import read_fleet
from breaker.ops.cli import cli
from breaker.ops.exporter import FleetCollector
from breaker.ops.read_deadline import operator_deadline

from .test_bounded_round_trip import TrickleProxy

DEADLINE_S = 0.3
SLACK_S = 0.5  # a loaded 2-core machine: scheduling, connection set-up


@pytest.fixture
def trickling(valkey_server, real_redis):
    """A fleet of 20 workers behind a proxy that trickles every reply one byte per 5 ms once armed."""
    now = float(real_redis.time()[0])
    real_redis.set("brain:panic_start_ts", repr(now - 60), ex=900)
    real_redis.hset("brain:workers", mapping={
        f"h:{i}:abcd": beat_json(host="h", pid=i, started=now, interval_s=1.0, calls={"NORMAL": 1}, fail_safe=0,
                                 tiers={}, override=None, error=None, version="0", seen=now)
        for i in range(20)
    })
    proxy = TrickleProxy(valkey_server.port, byte_every_s=0.005)
    yield proxy
    proxy.close()


def _client(proxy):
    client = redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout_ms=1000)
    client.ping()  # a connection in the pool before the trickle starts
    proxy.trickle.set()
    return client


def test_read_fleet_stops_at_its_deadline(trickling):
    """The fleet read used by the console, the CLI and the exporter raises a timeout at its deadline."""
    client = _client(trickling)
    began = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        read_fleet(PanicClock(client), deadline_s=DEADLINE_S)
    assert time.monotonic() - began < DEADLINE_S + SLACK_S
    client.close()


def test_the_consoles_clock_read_stops_at_its_deadline(trickling):
    """console.shared.read_clock's read (PanicClock.read_now inside operator_deadline)."""
    client = _client(trickling)
    began = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError), operator_deadline(DEADLINE_S):
        PanicClock(client).read_now()
    assert time.monotonic() - began < DEADLINE_S + SLACK_S
    client.close()


def test_a_scrape_reports_down_within_the_default_deadline(trickling):
    """The exporter's collect() (read_fleet with the default 2 s deadline) answers vix_breaker_up 0 in time."""
    client = _client(trickling)
    began = time.monotonic()
    families = list(FleetCollector(PanicClock(client)).collect())
    assert time.monotonic() - began < 2.0 + SLACK_S
    assert [(f.name, f.samples[0].value) for f in families] == [("vix_breaker_up", 0)]
    client.close()


def test_cli_status_fails_at_the_configured_deadline(trickling):
    """`vix-breaker status` exits 1 with a timeout after BREAKER_OPERATOR_READ_TIMEOUT_S, not after the trickle."""
    trickling.trickle.set()
    began = time.monotonic()
    result = CliRunner().invoke(cli, ["status", "--json"], env={
        "REDIS_URL": f"redis://127.0.0.1:{trickling.port}/0", "BREAKER_OPERATOR_READ_TIMEOUT_S": str(DEADLINE_S)})
    assert time.monotonic() - began < DEADLINE_S + SLACK_S
    assert result.exit_code == 1 and "Timeout" in result.stdout + result.stderr


@pytest.mark.parametrize("options", [["fleet", "--json"], ["fleet", "--hosts", "--json"]])
def test_cli_fleet_connecting_check_is_inside_the_deadline(valkey_server, real_redis, options):
    """`vix-breaker fleet` connects (the cluster-node check reads INFO) inside the operator-read deadline, as
    `status` does: a reply trickled a byte every 50 ms (INFO alone then takes ~2 s) ends the command at the
    deadline of its summary read, not seconds later."""
    proxy = TrickleProxy(valkey_server.port, byte_every_s=0.05)
    proxy.trickle.set()
    try:
        began = time.monotonic()
        result = CliRunner().invoke(cli, options, env={
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0", "BREAKER_OPERATOR_READ_TIMEOUT_S": str(DEADLINE_S)})
        took = time.monotonic() - began
    finally:
        proxy.close()
    assert result.exit_code == 1 and "Timeout" in result.stdout + result.stderr
    assert took < DEADLINE_S + SLACK_S
