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


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Exposition text as {(name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def scrape_once(clock: PanicClock, **options) -> str:
    """Start an exporter on a free loopback port, scrape it once, stop it."""
    server, thread = serve_exporter(clock, host="127.0.0.1", port=0, **options)
    try:
        return get_metrics(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def scrape(real_redis):
    """An exporter on a free loopback port for the test server; returns a function that scrapes it."""
    server, thread = serve_exporter(PanicClock(real_redis), host="127.0.0.1", port=0)

    def fetch() -> dict[tuple[str, tuple], float]:
        return samples(get_metrics(server.server_port))

    fetch.port = server.server_port
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
    assert samples[("vix_breaker_redis_time_timestamp_seconds", ())] == pytest.approx(now, abs=5)


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

    text = scrape_once(PanicClock(redis_client("redis://127.0.0.1:1/0")))
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    assert names == {"vix_breaker_up"} and "vix_breaker_up 0.0" in text


def test_cli_exporter_serves_over_http(redis_url, real_redis):
    """`vix-breaker exporter --port 0` in a real process serves /metrics on loopback until stopped."""
    proc = subprocess.Popen([sys.executable, "-m", "breaker", "exporter", "--port", "0"], cwd=ROOT,
                            env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line).group(1)
        assert "vix_breaker_up 1.0" in get_metrics(port)
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


def beat(now: float, seen: float, *, calls: dict, tiers: dict | None = None, fail_safe: int = 0,
         override: str | None = None) -> str:
    return beat_json(host="w", pid=1, started=now - 60, interval_s=1.0, calls=calls, fail_safe=fail_safe,
                     tiers=tiers or {}, override=override, error=None, version="x", seen=seen)


def test_no_per_second_gauges_and_timestamps_named_as_such(scrape):
    """Issue 21 #8: rates come from counters (no `*_per_second` gauge), the server clock is a `_timestamp_seconds`."""
    names = {name for name, _ in scrape()}
    assert "vix_breaker_redis_time_timestamp_seconds" in names
    assert not [name for name in names if name.endswith("_per_second") or name == "vix_breaker_redis_time_seconds"]


def test_heartbeats_answering_from_the_clock_count_as_observations(scrape, real_redis):
    """Issue 21 #9 (exporter side): a fleet that cannot write the last-observed mark (no scripting) still
    observes the clock every interval; its heartbeats say so, so the clock is neither a zombie nor unobserved."""
    now = float(real_redis.time()[0])
    real_redis.set("brain:panic_start_ts", repr(now - 30 * 60), ex=900)  # the fallback's SET NX EX: no mark
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", "w:1:0001",
                    beat(now, now, calls={"PANIC_PARTIAL": 7}, tiers={"low_stakes": 2}))
    samples = scrape()
    assert samples[("vix_breaker_panic_clock_zombie", ())] == 0
    assert samples[("vix_breaker_panic_last_observed_timestamp_seconds", ())] == pytest.approx(now)


def test_without_a_mark_or_a_panicking_worker_the_clock_is_still_a_zombie(scrape, real_redis):
    """The evidence is a worker answering panic from the clock: calm, failing-safe or force_full beats (every
    call answers PANIC_FULL then, calm ones too) do not make a clock look fed."""
    now = float(real_redis.time()[0])
    real_redis.set("brain:panic_start_ts", repr(now - 30 * 60), ex=900)
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", "w:1:0001", beat(now, now, calls={"NORMAL": 3}))
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", "w:1:0002", beat(now, now, calls={"PANIC_FULL": 3}, fail_safe=3))
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", "w:1:0003", beat(now, now, calls={"PANIC_FULL": 3},
                                                                  override="force_full"))
    samples = scrape()
    assert samples[("vix_breaker_panic_clock_zombie", ())] == 1
    assert samples[("vix_breaker_panic_last_observed_timestamp_seconds", ())] == 0


def test_a_disagreeing_worker_still_counts_while_the_clock_crosses_a_tier_boundary(scrape, real_redis):
    """Issue 21 #4 (exporter side): at a tier boundary only the neighbouring tiers are excused; a worker
    answering tier 4 while the clock crosses 1 -> 2 disagrees there as everywhere (the count used to drop to 0)."""
    now = float(real_redis.time()[0])
    PanicClock(real_redis).observe(now - 15 * 60)  # low stakes: the 1 -> 2 boundary is now
    workers = f"brain:{WORKERS_KEY_NAME}"
    real_redis.hset(workers, "w:1:0001", beat(now, now, calls={"NEW_NORMAL": 5}, tiers={"low_stakes": 4}))
    real_redis.hset(workers, "w:1:0002", beat(now, now, calls={"PANIC_FULL": 5}, tiers={"low_stakes": 1}))
    assert scrape()[("vix_breaker_workers_disagreeing", ())] == 1  # the tier-1 worker is in transition


def _closed_by_server(sockets: list, deadline_s: float) -> int:
    """How many of ``sockets`` the server has closed (EOF or reset), polling up to ``deadline_s``."""
    import time

    deadline = time.monotonic() + deadline_s
    closed: set[int] = set()
    while time.monotonic() < deadline and len(closed) < len(sockets):
        for index, sock in enumerate(sockets):
            if index in closed:
                continue
            sock.settimeout(0.001)
            try:
                if sock.recv(1) == b"":
                    closed.add(index)
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed.add(index)
        time.sleep(0.05)
    return len(closed)


@pytest.fixture
def idle_sockets():
    import socket

    opened: list[socket.socket] = []

    def open_idle(port: int, count: int, partial: bytes = b"") -> list[socket.socket]:
        batch = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        for sock in batch:
            if partial:
                sock.sendall(partial)
        opened.extend(batch)
        return batch

    yield open_idle
    for sock in opened:
        sock.close()


def test_idle_connections_hold_no_threads_and_a_scrape_still_answers(real_redis, idle_sockets):
    """Issue 21 #10: 400 idle half-open connections (some with half a request line) hold no thread each, and a
    real scrape answers while all of them are still open (not by closing them: no timeout, no eviction here)."""
    import threading

    server, thread = serve_exporter(PanicClock(real_redis), port=0, max_connections=1000, request_timeout_s=120)
    try:
        before = threading.active_count()
        idle = idle_sockets(server.server_port, 350) + idle_sockets(server.server_port, 50, partial=b"GET /metr")
        assert "vix_breaker_up 1.0" in get_metrics(server.server_port)
        assert threading.active_count() <= before + 1  # one scrape worker thread, whatever the connections
        assert _closed_by_server(idle, 0.2) == 0  # all 400 still open: the scrape did not need their places
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_idle_connections_are_closed_after_the_request_timeout_or_for_a_newcomer(real_redis, idle_sockets):
    """Issue 21 #10: a connection that sends no whole request is closed after ``request_timeout_s``; at
    ``max_connections`` the oldest one still waiting makes room, so a scrape is never locked out."""
    server, thread = serve_exporter(PanicClock(real_redis), port=0, max_connections=20, request_timeout_s=0.5)
    try:
        assert _closed_by_server(idle_sockets(server.server_port, 5, partial=b"GET /"), 10) == 5
        server.request_timeout_s = 120.0  # from here on only eviction can close a connection
        waiting = idle_sockets(server.server_port, 20)  # every place taken
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as response:
            assert response.status == 200
        assert _closed_by_server(waiting[:1], 5) == 1  # the oldest idle one made room for the scrape
        assert _closed_by_server(waiting[1:], 0.2) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_only_get_metrics_is_served(scrape):
    """A request other than GET /metrics gets a clear status, not a hang or a traceback."""
    import socket

    for request, status in ((b"POST /metrics HTTP/1.1", b"405"), (b"GET /secret HTTP/1.1", b"404")):
        with socket.create_connection(("127.0.0.1", scrape.port), timeout=5) as sock:
            sock.sendall(request + b"\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 " + status)


def test_a_collector_that_raises_answers_500_and_the_server_keeps_serving():
    """A page that cannot be built is a 500 for that scrape, not a dropped connection or a dead server."""
    import urllib.error

    from prometheus_client import CollectorRegistry

    from breaker.ops.metrics_server import MetricsServer

    class Broken:
        calls = 0

        def collect(self):
            Broken.calls += 1
            if Broken.calls == 1:
                raise RuntimeError("boom")
            return iter(())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Broken())
    server = MetricsServer(registry, port=0)
    try:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
        assert failed.value.code == 500
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_starts_while_the_callers_thread_runs_an_event_loop(real_redis):
    """A host (or Playwright's sync API in a test run) may run an event loop in the caller's thread."""
    import asyncio
    import threading

    async def start_inside_a_running_loop():
        return serve_exporter(PanicClock(real_redis), port=0)

    started = []  # in a thread of its own: the test's thread may run a loop already (Playwright's, in a full run)
    runner = threading.Thread(target=lambda: started.append(asyncio.run(start_inside_a_running_loop())))
    runner.start()
    runner.join(timeout=30)
    server, _thread = started[0]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as reply:
            assert b"vix_breaker_up" in reply.read()
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_scrapes_share_one_collection_rather_than_queue_one_each():
    """Twenty requests arriving while a page is being built (a slow Redis: up to the 2 s read deadline) wait for
    that one build, not for twenty in a row on the single scrape thread: queued, the last would be answered
    after 20 builds (40 s at the deadline), each holding a connection place that eviction cannot free."""
    import socket
    import threading
    import time

    from prometheus_client import CollectorRegistry

    from breaker.ops.metrics_server import MetricsServer

    gate, started = threading.Event(), threading.Event()

    class Slow:
        calls = 0

        def collect(self):
            Slow.calls += 1
            started.set()
            gate.wait(10)  # the page is being built until the test says so
            return iter(())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Slow())
    server = MetricsServer(registry, port=0)
    socks = []
    try:
        first = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
        first.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert started.wait(10)
        socks = [socket.create_connection(("127.0.0.1", server.server_port), timeout=10) for _ in range(20)]
        for sock in socks:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)  # the requests reach the server while the first page is still being built
        gate.set()
        for sock in [first, *socks]:
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        assert Slow.calls <= 2  # the one in flight, and at most one more for the requests that came after it
    finally:
        gate.set()
        for sock in socks:
            sock.close()
        server.shutdown()
        server.server_close()


def test_an_override_past_the_workers_cap_is_not_exported_as_in_force(real_redis):
    """A ten-hour force_full written by hand an hour ago: workers (cap 30 min) answer from the clock again, so
    vix_breaker_override{mode="force_full"} is 0 and the value is flagged as one they ignore."""
    import json as _json

    now = float(real_redis.time()[0])
    real_redis.set("brain:panic_override", _json.dumps({"mode": "force_full", "who": "hand", "why": "x",
                                                        "since": now - 3600, "until": now + 36_000}))
    exported = samples(scrape_once(PanicClock(real_redis), max_override_s=1800))
    assert exported[("vix_breaker_override", (("mode", "force_full"),))] == 0
    assert exported[("vix_breaker_override_invalid", ())] == 1
