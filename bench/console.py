"""Figure 6: what the console costs: round trips for one Live refresh, render time per page (AppTest), and the
Fleet page's read and render with 1000 workers' heartbeats."""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redis.connection import AbstractConnection

from breaker import AdaptivePanicQuota, PanicClock
from breaker.ops.fleet import read_fleet
from breaker.ops.status import class_statuses

from .harness import BenchServer, server_commands
from .table import Row

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
RENDER_RUNS = 5
FLEET_WORKERS = 1000
FLEET_READS = 20
FLEET_PAGE = "pages/fleet.py"


class RoundTrips:
    """Requests sent by every redis-py connection of this process (a pipeline is one request)."""

    def __init__(self) -> None:
        self.count = 0


@contextlib.contextmanager
def counting_round_trips() -> Iterator[RoundTrips]:
    counter = RoundTrips()
    original = AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        counter.count += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = send_packed_command
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original


def live_refresh(bench: BenchServer) -> Row:
    """The Live panel's data, computed through breaker functions as the page does."""
    bench.client.flushall()
    clock = PanicClock(bench.client)
    clock.observe(time.time() - 3600)
    quota = AdaptivePanicQuota()
    try:
        from breaker.ops import zombie_verdict
    except ImportError:  # built by the console change; without it the refresh is the read and the tiers
        zombie_verdict = None
    before = server_commands(bench.client)
    with counting_round_trips() as trips:
        reading = clock.read(time.time())
        class_statuses(reading, 60, quota)
        if zombie_verdict is not None:
            zombie_verdict(reading, 900.0)
    commands = server_commands(bench.client) - before
    return Row("6", "console: Redis round trips for one Live refresh (`PanicClock.read` + tiers + zombie verdict)",
               f"{trips.count} ({commands} commands: MULTI … EXEC)", goal="1 pipeline", met=trips.count == 1)


def page_paths() -> list[str]:
    """The page scripts the console registers with ``st.Page`` (in app.py or its helpers), in order."""
    sources = [APP, ROOT / "console" / "page.py", *sorted((ROOT / "pages").glob("*.py"))]
    found = [path for source in sources for path in re.findall(r'st\.Page\(\s*"([^"]+\.py)"', source.read_text())]
    return list(dict.fromkeys(found))


def render_times(bench: BenchServer) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    os.environ["REDIS_URL"] = bench.url
    os.environ["BREAKER_LOG_LEVEL"] = "WARNING"
    rows = []
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    if not page_paths():
        return [Row("6", "console: AppTest render per page", "no st.Page found in app.py or pages/: no number")]
    for path in page_paths():
        label = f"console: AppTest render, `{path}` in `app.py` (median of {RENDER_RUNS} warm runs)"
        if not (ROOT / path).exists():
            rows.append(Row("6", label, "page not built yet: no number"))
            continue
        timings, trips = [], []
        try:
            at.switch_page(path)
            at.run()
            for _ in range(RENDER_RUNS):
                with counting_round_trips() as counter:
                    began = time.perf_counter()
                    at.run()
                    timings.append((time.perf_counter() - began) * 1000)
                trips.append(counter.count)
        except Exception as exc:  # a page under construction: say so, keep the rest of the table
            rows.append(Row("6", label, f"did not run: {type(exc).__name__}: {str(exc)[:60]}"))
            continue
        if at.exception:
            rows.append(Row("6", label, f"error: {at.exception[0].message[:60]}"))
            continue
        titles = [title.value for title in at.title]
        if Path(path).stem.capitalize() not in titles:  # a number for another page would be no number
            rows.append(Row("6", label, f"rendered {titles or 'no title'} instead: no number"))
            continue
        trip_count = round(statistics.median(trips))
        rendered = f"{statistics.median(timings):,.0f} ms, {trip_count} round trip{'s' if trip_count != 1 else ''}"
        rows.append(Row("6", label, rendered))
    return rows


def write_heartbeats(client: Any, count: int = FLEET_WORKERS, prefix: str = "brain:") -> None:
    """``count`` workers' beats in the SPEC 7 format, seen just now (server time): a tenth stale, one in 25
    failing over, half in panic."""
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        stale, failing = i % 10 == 0, i % 25 == 1
        beat = {"v": 1, "host": f"host{i // 8}", "pid": 1000 + i, "started": now - 900,
                "seen": now - (15 if stale else 0.2), "interval": 1.0,
                "calls": {"PANIC_FULL": 40} if i % 2 else {"NORMAL": 40}, "fail_safe": 40 if failing else 0,
                "tiers": {"high_stakes": 1, "medium_stakes": 1, "low_stakes": 1} if i % 2 else {},
                "override": None, "error": "ConnectionError: reset by peer" if failing else None,
                "version": "0.1.0"}
        pipe.hset(f"{prefix}workers", f"host{i // 8}:{1000 + i}:{i:04x}", json.dumps(beat))
    pipe.execute()


def fleet_read(bench: BenchServer) -> Row:
    """``read_fleet`` with 1000 workers: round trips (client side), commands (server side), median time."""
    bench.client.flushall()
    write_heartbeats(bench.client)
    clock = PanicClock(bench.client)
    clock.observe(time.time() - 600)
    read_fleet(clock)  # warm
    before = server_commands(bench.client)
    with counting_round_trips() as trips:
        view = read_fleet(clock)
    commands = server_commands(bench.client) - before
    timings = []
    for _ in range(FLEET_READS):
        began = time.perf_counter()
        read_fleet(clock)
        timings.append((time.perf_counter() - began) * 1000)
    return Row("6", f"console: `read_fleet` with {len(view.workers)} workers (heartbeats + clock + override), "
                    f"median of {FLEET_READS}",
               f"{statistics.median(timings):.1f} ms, {trips.count} round trip ({commands} commands)",
               goal="1 round trip", met=trips.count == 1)


def fleet_render(bench: BenchServer) -> Row:
    """The Fleet page in AppTest with 1000 workers: a full run (banner, fleet panel, table of 1000 rows, chart,
    override controls), median of warm runs, and the round trips of one run."""
    from streamlit.testing.v1 import AppTest

    os.environ["REDIS_URL"] = bench.url
    os.environ["BREAKER_LOG_LEVEL"] = "WARNING"
    bench.client.flushall()
    write_heartbeats(bench.client)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page(FLEET_PAGE)
    at.run()
    label = f"console: Fleet page with {FLEET_WORKERS} workers, AppTest full run (median of {RENDER_RUNS} warm runs)"
    timings, trips = [], []
    for _ in range(RENDER_RUNS):
        write_heartbeats(bench.client)  # fresh beats: none turns stale or gone while the runs go on
        with counting_round_trips() as counter:
            began = time.perf_counter()
            at.run()
            timings.append((time.perf_counter() - began) * 1000)
        trips.append(counter.count)
    if at.exception:
        return Row("6", label, f"error: {at.exception[0].message[:60]}", goal="< 1 s", met=False)
    workers = next((m.value for m in at.metric if m.label == "Workers"), "?")
    median = statistics.median(timings)
    trip_count = round(statistics.median(trips))
    shown = workers == str(FLEET_WORKERS)
    return Row("6", label, f"{median:,.0f} ms, {trip_count} round trips (override key, then `read_fleet`); "
                           f"{workers} workers shown", goal="< 1 s", met=median < 1000 and shown)
