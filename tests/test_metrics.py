"""Worker metrics on the host's prometheus_client registry: answers, fail-safe answers, round trips, latency."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from breaker import PanicClock, VIXCircuitBreaker, redis_client
from breaker.metrics import BreakerMetrics

ROOT = Path(__file__).resolve().parents[1]


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_answers_are_counted_by_mode_and_stakes_class(real_redis, fake_clock):
    """Panic answers land under their mode and stakes class; calm ones (never classified) under unclassified."""
    registry = CollectorRegistry()
    PanicClock(real_redis).observe(fake_clock() - 40 * 60)  # medium: tier 2, low: tier 2
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False, metrics=registry)
    for _ in range(3):  # panic first: a calm worker meeting a panic observes it at its turn (the spread)
        breaker.get_ttl(60, "panic", {"league": "Ligue 1"})
        breaker.get_ttl(60, "normal", {"league": "Ligue 1"})
    breaker.get_ttl(60, "panic", {"league": "Champions League"})
    assert value(registry, "vix_breaker_answers_total", mode="NORMAL", stakes="unclassified") == 3
    assert value(registry, "vix_breaker_answers_total", mode="PANIC_PARTIAL", stakes="medium_stakes") == 3
    assert value(registry, "vix_breaker_answers_total", mode="PANIC_FULL", stakes="high_stakes") == 1
    assert value(registry, "vix_breaker_fail_safe_answers_total") == 0


def test_only_fail_safe_answers_count_as_fail_safe(real_redis, fake_clock):
    """A real tier-1 PANIC_FULL is an answer, not a fail-safe one; a panic without Redis and bad input are."""
    registry = CollectorRegistry()
    VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False, metrics=registry).get_ttl(60, "panic")
    assert value(registry, "vix_breaker_answers_total", mode="PANIC_FULL", stakes="low_stakes") == 1
    assert value(registry, "vix_breaker_fail_safe_answers_total") == 0
    no_redis = VIXCircuitBreaker(None, clock=fake_clock, server_time=False, metrics=registry)
    assert no_redis.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert no_redis.get_ttl(60, "panik") == (0, "PANIC_FULL")
    assert no_redis.get_ttl(-1, "normal") == (0, "PANIC_FULL")
    assert value(registry, "vix_breaker_fail_safe_answers_total") == 3
    assert value(registry, "vix_breaker_answers_total", mode="PANIC_FULL", stakes="low_stakes") == 2
    assert value(registry, "vix_breaker_answers_total", mode="PANIC_FULL", stakes="unclassified") == 2


def test_round_trips_and_latency_follow_the_refresh_interval(real_redis, fake_clock):
    """1000 panic calls within one refresh interval are one timed round trip; the next interval adds one."""
    registry = CollectorRegistry()
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False, metrics=registry)
    for _ in range(1000):
        breaker.get_ttl(60, "panic")
    fake_clock.advance(1.0)
    breaker.get_ttl(60, "panic")
    assert value(registry, "vix_breaker_redis_round_trips_total") == 2
    assert value(registry, "vix_breaker_redis_round_trip_seconds_count") == 2
    assert 0 < value(registry, "vix_breaker_redis_round_trip_seconds_sum") < 2
    assert value(registry, "vix_breaker_redis_errors_total") == 0


def test_a_refused_round_trip_is_an_error(fake_clock):
    """A refused connection counts one round trip and one error; the back-off window adds none."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = CollectorRegistry()
    breaker = VIXCircuitBreaker(redis_client(f"redis://127.0.0.1:{port}/0"), clock=fake_clock, server_time=False,
                                metrics=registry)
    for _ in range(100):
        breaker.get_ttl(60, "panic")
    assert value(registry, "vix_breaker_redis_round_trips_total") == 1
    assert value(registry, "vix_breaker_redis_errors_total") == 1
    assert value(registry, "vix_breaker_fail_safe_answers_total") == 100


def test_breakers_share_one_registry_and_start_no_thread(real_redis, fake_clock):
    """Two breakers on one registry register the metrics once and share them; no server thread is started."""
    registry = CollectorRegistry()
    threads = threading.active_count()
    first = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False, metrics=registry)
    second = VIXCircuitBreaker(real_redis, key_prefix="other:", clock=fake_clock, server_time=False,
                               metrics=registry)
    first.get_ttl(60, "normal")
    second.get_ttl(60, "normal")
    assert first.metrics is second.metrics is BreakerMetrics.on(registry)
    assert value(registry, "vix_breaker_answers_total", mode="NORMAL", stakes="unclassified") == 2
    assert threading.active_count() == threads
    kinds = {metric.type for metric in registry.collect()}
    assert kinds <= {"counter", "histogram"}  # no gauge, Enum or Info: multiprocess mode works


def test_without_metrics_get_ttl_is_the_plain_method(real_redis):
    """metrics=None adds nothing to the call path; a registry of the wrong type is refused at construction."""
    plain = VIXCircuitBreaker(real_redis)
    assert plain.get_ttl.__func__ is VIXCircuitBreaker.get_ttl and "count" not in vars(plain._answers)
    with pytest.raises(TypeError, match="CollectorRegistry"):
        VIXCircuitBreaker(real_redis, metrics="registry")


def test_multiprocess_mode_collects_the_workers_counts(tmp_path):
    """Under PROMETHEUS_MULTIPROC_DIR two worker processes' answers add up in the multiprocess collector."""
    code = textwrap.dedent("""
        import sys
        from prometheus_client import REGISTRY
        from breaker import VIXCircuitBreaker
        breaker = VIXCircuitBreaker(None, metrics=REGISTRY)
        for _ in range(5):
            breaker.get_ttl(60, "panic")
    """)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    collect = textwrap.dedent("""
        from prometheus_client import CollectorRegistry, multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        print(registry.get_sample_value("vix_breaker_fail_safe_answers_total"))
    """)
    out = subprocess.run([sys.executable, "-c", collect], cwd=ROOT, env=env, check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert float(out) == 10.0


def test_import_breaker_loads_neither_prometheus_nor_click():
    """A worker that passes no registry never imports prometheus_client; the CLI's click stays out too."""
    code = ("import sys, breaker; breaker.VIXCircuitBreaker(None).get_ttl(60, 'panic'); "
            "print(sorted(m for m in ('prometheus_client', 'click', 'breaker.metrics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
