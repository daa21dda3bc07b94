"""The breaker, the operator actions and the console on a real three-master Valkey cluster."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time

import pytest

from breaker import PanicClock, PanicMode, VIXCircuitBreaker, redis_client
from breaker.ops import AuditTrail
from breaker.ops.fleet import read_fleet
from breaker.ops.overrides import clear_override, read_override, set_override
from breaker.ops.roles import Principal
from tests.console.conftest import PASSWORD, login, open_console

from .cluster_workers import panic_at_barrier
from .valkey_cluster import PROJECT_SLOT

PREFIX = "{brain}:"
STAKES = ({"stakes": "high"}, {"stakes": "medium"}, {"stakes": "low"})


def test_project_keys_share_one_slot(cluster_redis, valkey_cluster):
    """Clock, last observation, override, heartbeats and audit all hash to the slot of {brain}."""
    from redis.cluster import key_slot

    names = ("panic_start_ts", "panic_last_seen_ts", "panic_override", "workers", "audit", "drill:ab12:panic_start_ts")
    assert {key_slot(f"{PREFIX}{name}".encode()) for name in names} == {PROJECT_SLOT}


def test_cluster_client_has_no_retries(cluster_redis):
    """The RedisCluster built from the URL retries nothing and refreshes its slot map after every failure."""
    cluster = cluster_redis.cluster
    assert cluster.retry.get_retries() == 0 and cluster.reinitialize_steps == 1
    assert cluster.nodes_manager.connection_kwargs["socket_timeout"] == 1.0


def test_first_writer_wins_among_20_threads(cluster_url):
    """20 threads observing at once through their own cluster clients agree on the first writer's start."""
    barrier = threading.Barrier(20)
    results = []

    def worker(i):
        client = redis_client(cluster_url, timeout_ms=2000)
        clock = PanicClock(client, key_prefix=PREFIX)
        client.cluster.ping()  # connect before the race: the race is about the write, not the slot map
        barrier.wait()
        results.append(clock.observe(1_800_000_000.0 + i))
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 20
    assert len({r.start for r in results}) == 1 and sum(r.initialized for r in results) == 1


def test_first_writer_wins_among_8_processes(cluster_url, cluster_redis):
    """8 worker processes released at a barrier agree on one start, stored once in the {brain} slot."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    procs = [ctx.Process(target=panic_at_barrier, args=(cluster_url, barrier, 1_800_000_000.0 + i, results))
             for i in range(8)]
    for proc in procs:
        proc.start()
    try:
        got = [results.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    starts = {start for _, _, start in got}
    assert len(starts) == 1 and starts.pop() in {now for now, _, _ in got}
    assert all(answer == (0, "PANIC_FULL") for _, answer, _ in got)
    assert float(cluster_redis.get(f"{PREFIX}panic_start_ts")) in {now for now, _, _ in got}


def test_panic_46_minutes_back_gives_each_class_its_tier(cluster_redis):
    """A panic back-dated 46 min: high PANIC_FULL, medium PANIC_PARTIAL, low DEGRADED, through the cluster."""
    now = time.time()
    assert PanicClock(cluster_redis, key_prefix=PREFIX).start_drill(now, backdate_s=46 * 60, hold_s=900)
    breaker = VIXCircuitBreaker(cluster_redis, refresh_interval_s=0)
    answers = [breaker.get_ttl(60, "panic", context) for context in STAKES]
    assert answers == [(0, PanicMode.PANIC_FULL), (5, PanicMode.PANIC_PARTIAL), (20, PanicMode.DEGRADED)]
    assert breaker.last_error is None


def test_unusable_value_is_replaced_in_one_slot(cluster_redis):
    """Garbage at the clock key is replaced by a WATCH/MULTI inside the slot; the call answers tier 1."""
    cluster_redis.set(f"{PREFIX}panic_start_ts", "garbage")
    breaker = VIXCircuitBreaker(cluster_redis, refresh_interval_s=0)
    assert breaker.get_ttl(60, "panic", {"stakes": "medium"}) == (0, PanicMode.PANIC_FULL)
    assert breaker.last_error is None
    assert PanicClock(cluster_redis, key_prefix=PREFIX).read(time.time()).parses


def test_override_and_fleet_read_in_one_slot(cluster_redis):
    """Setting and clearing an override (each with its audit entry) and the one-round-trip fleet read work."""
    clock = PanicClock(cluster_redis, key_prefix=PREFIX)
    trail = AuditTrail(cluster_redis, key_prefix=PREFIX)
    access = Principal.of("alice")
    override = set_override(clock, trail, access, mode="force_full", minutes=5, why="feed incident")
    assert read_override(clock).override == override
    assert read_fleet(clock).override.override == override
    assert clear_override(clock, trail, access, why="feed fixed")
    assert [e.action for e in trail.entries()] == ["override_set", "override_clear"]


@pytest.fixture
def cluster_console(monkeypatch, cluster_url, cluster_redis):
    """The console against the cluster: REDIS_URL is the cluster URL, the default (tagged) prefix."""
    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("BREAKER_OPERATOR_PASSWORD", PASSWORD)
    monkeypatch.delenv("BREAKER_KEY_PREFIX", raising=False)
    return cluster_redis


def test_console_live_on_the_cluster(cluster_console):
    """Live on the cluster: {brain}: is production (no drill badge), and 46 min back shows each class's tier."""
    PanicClock(cluster_console, key_prefix=PREFIX).start_drill(time.time(), backdate_s=46 * 60, hold_s=900)
    at = open_console()
    assert not at.exception and not at.error
    assert [m.value for m in at.metric if m.label == "Mode"] == ["PANIC_FULL", "PANIC_PARTIAL", "DEGRADED"]
    sidebar = " ".join(m.value for m in at.sidebar.markdown)  # badges are markdown in AppTest
    assert "`{brain}:`" in sidebar and "drill namespace" not in sidebar
    assert "redis+cluster://127.0.0.1:" in sidebar and "Redis OK" in sidebar


def test_console_drill_and_force_clear_on_the_cluster(cluster_console):
    """A drill and a force-clear from the console's Drills page write the cluster's clock, each audited."""
    at = login(open_console("pages/drills.py"))
    at.number_input(key="drills_backdate").set_value(46.0)
    at.text_input(key="drills_reason").input("cluster game day")
    at.button(key="drills_start").click().run()
    assert not at.exception and not at.error
    clock = PanicClock(cluster_console, key_prefix=PREFIX)
    assert 46 * 60 - 5 < clock.read(time.time()).duration_s < 46 * 60 + 30
    cluster_console.set(f"{PREFIX}panic_start_ts", "garbage")
    at = login(open_console("pages/drills.py"))
    at.button(key="drills_clear_open_button").click().run()
    at.text_input(key="drills_clear_reason").input("garbage left by a cluster migration")
    at.button(key="drills_clear_confirm").click().run()
    assert not at.exception
    assert not clock.read(time.time()).exists
    entries = [(e.who, e.action) for e in AuditTrail(cluster_console, key_prefix=PREFIX).entries()]
    who = "alice (self-declared)"  # logged in with the shared password (see docs/access.md)
    assert (who, "panic_start") in entries and entries[-1] == (who, "zombie_clear")


def test_worker_round_trip_beats_and_honours_the_override_on_the_cluster(cluster_redis):
    """The v2 round trip on the cluster: the worker's heartbeat lands in {brain}:workers (read back by the
    one-round-trip fleet view) and a force_full override set by an operator is honoured on the next call."""
    clock = PanicClock(cluster_redis, key_prefix=PREFIX)
    trail = AuditTrail(cluster_redis, key_prefix=PREFIX)
    breaker = VIXCircuitBreaker(cluster_redis, refresh_interval_s=0)
    assert breaker.get_ttl(60, "normal") == (60, PanicMode.NORMAL)
    set_override(clock, trail, Principal.of("alice"), mode="force_full", minutes=5,
                 why="bad feed")
    assert breaker.get_ttl(60, "normal") == (0, PanicMode.PANIC_FULL)
    assert breaker.last_error is None
    fleet = read_fleet(clock)
    assert [beat.worker_id for beat in fleet.workers] == [breaker.worker_id]
    assert fleet.override.override is not None and fleet.override.override.mode == "force_full"


def test_cli_with_a_cluster_url_option_uses_the_cluster_prefix(cluster_url, cluster_redis, monkeypatch):
    """`vix-breaker --redis-url redis+cluster://…` (no REDIS_URL) writes and reads under {brain}:, as with REDIS_URL."""
    from click.testing import CliRunner

    from breaker.ops.cli import cli

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BREAKER_KEY_PREFIX", raising=False)
    from breaker.ops.tokens import TokenStore

    token, _ = TokenStore(cluster_redis, key_prefix=PREFIX).create(
        AuditTrail(cluster_redis, key_prefix=PREFIX), Principal.of("root", "admin"), name="alice", role="operator",
        expires_s=None, why="cluster test")
    monkeypatch.setenv("VIX_BREAKER_TOKEN", token)
    runner = CliRunner()
    written = runner.invoke(cli, ["--redis-url", cluster_url, "override", "set", "force_full", "--minutes", "5",
                                  "--why", "cluster drill", "--yes"])
    assert written.exit_code == 0, written.output
    assert read_override(PanicClock(cluster_redis, key_prefix=PREFIX)).override.who == "alice"
    status = runner.invoke(cli, ["--redis-url", cluster_url, "--json", "status"])
    assert status.exit_code == 0 and "(prefix {brain}:)" in json.loads(status.stdout)["target"]


def test_defaults_follow_the_cluster_client(cluster_redis):
    """PanicClock and AuditTrail built on a cluster client without a prefix use {brain}: as the breaker does, so
    a worker's state-change listener (docs/console.md's example) lands where the console reads History."""
    from breaker.ops import state_change_listener

    breaker = VIXCircuitBreaker(cluster_redis, refresh_interval_s=0,
                                on_state_change=state_change_listener(AuditTrail(cluster_redis)))
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert any(e.kind == "state_change" for e in AuditTrail(cluster_redis, key_prefix=PREFIX).entries())
    clock = PanicClock(cluster_redis)
    assert clock.key_prefix == PREFIX and clock.read(time.time()).exists


def test_approvals_login_throttle_and_exporter_on_the_cluster(cluster_redis):
    """The operator tools that had only standalone tests: the two-person flow, the Redis-kept login delays and
    the exporter's one-round-trip scrape, all under {brain}: on the cluster."""
    from prometheus_client import generate_latest

    from breaker.ops import LoginThrottle
    from breaker.ops.approvals import approve_force_calm, pending_request, request_force_calm
    from breaker.ops.exporter import exporter_registry

    clock, trail = PanicClock(cluster_redis, key_prefix=PREFIX), AuditTrail(cluster_redis, key_prefix=PREFIX)
    alice, bob = Principal.of("alice"), Principal.of("bob", "approver", "oidc")
    request = request_force_calm(clock, trail, alice, minutes=5, why="signal stuck")
    assert pending_request(clock).id == request.id
    assert approve_force_calm(clock, trail, bob, request_id=request.id,
                              digest=request.digest).who == "alice, approved by bob"
    throttle = LoginThrottle(cluster_redis, key_prefix=PREFIX)
    assert [throttle.begin("10.0.0.1", "mallory") is None for _ in range(5)] == [True] * 4 + [False]
    scraped = generate_latest(exporter_registry(clock)).decode()
    assert "vix_breaker_up 1.0" in scraped and 'vix_breaker_override{mode="force_calm"} 1.0' in scraped


def test_paged_fleet_read_on_the_cluster(cluster_redis):
    """The fleet list in HSCAN pages (a cluster pipeline hands HSCAN's reply over unparsed) and the host view."""
    from breaker.ops.fleet_pages import iter_workers, read_hosts

    clock = PanicClock(cluster_redis, key_prefix=PREFIX)
    breaker = VIXCircuitBreaker(cluster_redis, refresh_interval_s=0)
    assert breaker.get_ttl(60, "normal") == (60, PanicMode.NORMAL)
    host = breaker.worker_id.split(":", 1)[0]
    assert [beat.worker_id for beat in iter_workers(clock, host=host)] == [breaker.worker_id]
    assert read_hosts(clock).hosts[host]["calm"] == 1
