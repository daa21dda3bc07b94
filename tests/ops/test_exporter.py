"""The exporter: the fleet's state scraped over HTTP, one round trip per scrape, every series present."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from breaker import PanicClock
from breaker.heartbeat import WORKERS_KEY_NAME, beat_json
from breaker.metrics import BreakerMetrics
from breaker.ops.exporter import EXPORTED, serve_exporter
from breaker.override import Override, OverrideMode

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scrape(real_redis):
    """An exporter on a free loopback port for the test server; returns a function that scrapes it."""
    server, thread = serve_exporter(PanicClock(real_redis), host="127.0.0.1", port=0)

    def fetch() -> dict[tuple[str, tuple], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    yield fetch
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_every_series_is_present_at_zero_without_a_panic(scrape):
    """No clock, no override, no worker: every metric is served, with 0 values (and up = 1)."""
    samples = scrape()
    assert {name for name, _ in samples} == set(EXPORTED)
    assert samples[("vix_breaker_up", ())] == 1
    assert samples[("vix_breaker_panic_start_timestamp_seconds", ())] == 0
    assert samples[("vix_breaker_tier", (("stakes", "high_stakes"),))] == 0
    assert samples[("vix_breaker_override", (("mode", "force_calm"),))] == 0
    assert samples[("vix_breaker_workers", (("state", "stale"),))] == 0
    assert samples[("vix_breaker_mode", (("mode", "NORMAL"), ("stakes", "low_stakes")))] == 1


def test_panic_override_and_workers_are_exported(scrape, real_redis):
    """A 50-minute panic, a force_full override and one panicking worker show up as timestamps, tiers, 1/0s."""
    now = float(real_redis.time()[0])
    PanicClock(real_redis).observe(now - 50 * 60)
    override = Override(OverrideMode.FORCE_FULL, "a", "b", now, now + 600)
    real_redis.set("brain:panic_override", override.to_json(), ex=600)
    beat = beat_json(host="w", pid=1, started=now, interval_s=1.0, calls={"PANIC_FULL": 4}, fail_safe=2,
                     tiers={"low_stakes": 1}, override="force_full", error=None, version="x", seen=now)
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", "w:1:0001", beat)
    samples = scrape()
    assert samples[("vix_breaker_panic_start_timestamp_seconds", ())] == pytest.approx(now - 3000)
    assert samples[("vix_breaker_tier", (("stakes", "low_stakes"),))] == 3
    assert samples[("vix_breaker_tier", (("stakes", "medium_stakes"),))] == 2
    assert samples[("vix_breaker_override", (("mode", "force_full"),))] == 1
    assert samples[("vix_breaker_override_end_timestamp_seconds", ())] == pytest.approx(now + 600)
    assert samples[("vix_breaker_workers", (("state", "fail_safe"),))] == 1
    assert samples[("vix_breaker_fleet_fail_safe_answers_per_second", ())] == 2


def test_one_round_trip_per_scrape(scrape, real_redis):
    """Each scrape is one MULTI/EXEC on the server, whatever it exports."""
    def execs():
        return real_redis.info("commandstats").get("cmdstat_exec", {}).get("calls", 0)

    before = execs()
    scrape()
    scrape()
    assert execs() - before == 2


def test_redis_down_exports_up_zero():
    """When Redis cannot be read the exporter says up 0 and serves no stale values."""
    from breaker import redis_client

    server, thread = serve_exporter(PanicClock(redis_client("redis://127.0.0.1:1/0")), port=0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    assert names == {"vix_breaker_up"} and "vix_breaker_up 0.0" in text


def test_cli_exporter_serves_over_http(redis_url, real_redis):
    """`vix-breaker exporter --port 0` in a real process serves /metrics on loopback until stopped."""
    proc = subprocess.Popen([sys.executable, "-m", "breaker", "exporter", "--port", "0"], cwd=ROOT,
                            env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert "vix_breaker_up 1.0" in response.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_docs_list_every_metric_name():
    """docs/metrics.md names every exported and every worker metric."""
    from prometheus_client import CollectorRegistry

    text = (ROOT / "docs" / "metrics.md").read_text()
    worker = {family.name for family in BreakerMetrics(CollectorRegistry()).registry.collect()}
    names = set(EXPORTED) | {f"{name}_total" if not name.endswith("_seconds") else name for name in worker}
    assert not [name for name in names if f"`{name}`" not in text]


def test_example_alerts_use_only_metrics_that_exist():
    """docs/alerts.yml parses, and every vix_breaker_* name in its expressions is a metric we serve."""
    import yaml
    from prometheus_client import CollectorRegistry

    rules = yaml.safe_load((ROOT / "docs" / "alerts.yml").read_text())["groups"][0]["rules"]
    worker = {family.name for family in BreakerMetrics(CollectorRegistry()).registry.collect()}
    known = set(EXPORTED) | {f"{name}_total" for name in worker} | {
        f"vix_breaker_redis_round_trip_seconds{suffix}" for suffix in ("", "_bucket", "_count", "_sum")}
    used = {name for rule in rules for name in re.findall(r"vix_breaker_[a-z_]+", rule["expr"])}
    assert used and used <= known, used - known
    assert {"VixBreakerTier3Reached", "VixBreakerZombieClock", "VixBreakerFailSafeRatioHigh",
            "VixBreakerWorkersStale"} <= {rule["alert"] for rule in rules}
    assert all(rule["alert"] in (ROOT / "docs" / "metrics.md").read_text() for rule in rules)


def test_cli_exporter_on_a_taken_port_names_the_address_not_redis(redis_url, real_redis):
    """A port already in use fails with exit 1 and says it cannot listen there, not that Redis failed."""
    import socket

    from click.testing import CliRunner

    from breaker.ops.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["exporter", "--port", str(port)], env={"REDIS_URL": redis_url})
    assert result.exit_code == 1, (result.output, result.exception)
    assert f"127.0.0.1:{port}" in result.stderr and "Redis at" not in result.stderr
